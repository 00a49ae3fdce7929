/* The drop policies (DESIGN.md, Policies): whether one target drops a
 * datagram, from its policy, the datagram's class and the stream's state.
 * One decision for both ends of the uplink: the edge asks it for every clone
 * target of a stream (qoc_replicate.h), the sensor for its one uplink
 * (qoc_sensor.h). A target's state on a stream lives in qoc_tstats
 * (error-diffusion credit, counted per CPU) and qoc_fstate (frame_aware's
 * held decision), keyed by (target slot, stream): the edge's slots are its
 * processes, the sensor's uplink is slot QOC_SENSOR_SLOT. */
#ifndef QOC_POLICY_H
#define QOC_POLICY_H

#include "qoc_abi.h"

/* differential(p): the share of class `cls` to drop, in ppm, so that p of the
 * stream's bytes go, taken from disp, then diff, then ref (never other). The
 * shares come from the stream's recent mix (qoc_stream.win). Until the
 * stream has shown a whole GOP (two ref frames), its byte counts say nothing
 * of its mix, so only disp is dropped: no diff or ref datagram is lost to a
 * stream's first key frame being counted before its B-frames. */
static __always_inline __u64 qoc_differential_share(struct qoc_stream *st, __u8 cls, __u32 drop_ppm)
{
	__u64 disp = st->win[QOC_CLASS_DISP];
	__u64 diff = st->win[QOC_CLASS_DIFF];
	__u64 ref = st->win[QOC_CLASS_REF];
	__u64 total = st->win[QOC_CLASS_OTHER] + disp + diff + ref;
	__u64 want = total * drop_ppm / QOC_PPM; /* bytes to drop so far */
	__u64 below = 0, mine = 0;

	if (cls != QOC_CLASS_DISP && st->ref_frames < 2)
		return 0;
	if (cls == QOC_CLASS_DISP) {
		mine = disp;
	} else if (cls == QOC_CLASS_DIFF) {
		below = disp;
		mine = diff;
	} else if (cls == QOC_CLASS_REF) {
		below = disp + diff;
		mine = ref;
	} else {
		return 0;
	}
	if (want <= below)
		return 0;
	if (!mine || want - below >= mine)
		return QOC_PPM;
	return (want - below) * QOC_PPM / mine;
}

/* frame_aware's level for p (docs/REPLICATION.md): 0 drops some disp
 * frames, 1 all disp frames and the tails of GOPs, 2 all but the ref frames
 * and whole GOPs. Until a whole GOP was seen (two ref frames), 0. */
static __always_inline int qoc_fa_level(struct qoc_stream *st, __u32 drop_ppm)
{
	__u64 disp = st->win[QOC_CLASS_DISP];
	__u64 diff = st->win[QOC_CLASS_DIFF];
	__u64 total = st->win[QOC_CLASS_OTHER] + disp + diff + st->win[QOC_CLASS_REF];
	__u64 want = total * drop_ppm / QOC_PPM;

	if (st->ref_frames < 2 || want <= disp)
		return 0;
	return want <= disp + diff ? 1 : 2;
}

/* Mean bytes of a frame of class c (its datagrams' bytes over its frames). */
static __always_inline __u64 qoc_frame_bytes(struct qoc_stream *st, int c)
{
	__u32 n = st->class_frames[c & 3];

	return n ? st->bytes[c & 3] / n : 0;
}

/* frame_aware: the decision for a frame of class c, taken at its first
 * datagram. Error diffusion in whole frames: a unit is dropped when the debt
 * reaches half its expected size. */
static __always_inline __u8 qoc_fa_decide(struct qoc_fstate *fs, struct qoc_stream *st, __u8 c,
					  __u32 drop_ppm)
{
	int level = qoc_fa_level(st, drop_ppm);
	__s64 half = QOC_PPM / 2;

	if (c == QOC_CLASS_REF) {
		fs->pos = 0;
		fs->tail_drop = 0;
		fs->gop_drop = level == 2 && fs->debt >= half * (__s64)qoc_frame_bytes(st, QOC_CLASS_REF);
		return fs->gop_drop;
	}
	fs->pos++;
	if (fs->gop_drop || fs->tail_drop)
		return 1; /* it may depend on a dropped frame */
	if (c == QOC_CLASS_DISP)
		return level >= 1 || fs->debt >= half * (__s64)qoc_frame_bytes(st, QOC_CLASS_DISP);
	if (level == 0)
		return 0;
	if (level == 2) {
		fs->tail_drop = 1;
		return 1;
	}
	/* Level 1: start dropping the GOP's tail here if the debt covers half of
	 * the diff frames expected from here to the next ref frame. */
	__u32 frames = st->frames;
	__u32 refs = st->class_frames[QOC_CLASS_REF];
	__u32 gop = refs ? frames / refs : 1;
	__u32 left = gop > fs->pos ? gop - fs->pos + 1 : 1;
	__u32 nonref = frames > refs ? frames - refs : 1;
	__u64 left_diff = (__u64)left * st->class_frames[QOC_CLASS_DIFF] / nonref;
	if (!left_diff)
		left_diff = 1;
	if (fs->debt >= half * (__s64)(left_diff * qoc_frame_bytes(st, QOC_CLASS_DIFF))) {
		fs->tail_drop = 1;
		return 1;
	}
	return 0;
}

/* frame_aware: whether this datagram goes. Video datagrams follow their
 * frame's decision; a datagram holding packets of two frames (misaligned
 * sender) goes only if both frames go, and is counted when it is delivered
 * with a dropped frame's packets in it. PSI-only and other datagrams stay, and
 * so do datagrams with packets the DPI did not inspect (QOC_F_UNPARSED: a GSO
 * super-packet may hold the next ref frame); their bytes still add to the
 * debt, so the frames around them go instead. */
static __always_inline int qoc_fa_drops(struct qoc_target *t, struct qoc_stream *st,
					struct qoc_tstats *ts, struct qoc_fstate *fs,
					struct __sk_buff *skb, __u32 len)
{
	if (!fs)
		return 0;
	fs->debt += (__s64)t->drop_ppm * len;
	__u32 flags = skb->cb[QOC_CB_FLAGS];
	if (!(flags & QOC_F_VIDEO) || (flags & QOC_F_UNPARSED))
		return 0; /* no frame, or packets of frames not known (its debt stays) */
	__u32 frame = skb->cb[QOC_CB_FRAMES];
	if ((flags & QOC_F_NEW_FRAME) && frame != fs->cur_frame) {
		fs->prev_drop = fs->cur_drop;
		fs->cur_frame = frame;
		fs->cur_drop = qoc_fa_decide(fs, st, skb->cb[QOC_CB_HISTORY] & 3, t->drop_ppm);
	}
	int drop = fs->cur_drop;
	if (flags & QOC_F_MISALIGNED) {
		if (drop != fs->prev_drop && ts)
			ts->partial++;
		drop = drop && fs->prev_drop;
	}
	if (drop)
		fs->debt -= (__s64)QOC_PPM * len;
	return drop;
}

/* Whether target t drops this datagram. `ts` and `fs` are the target's state
 * on the stream (NULL when there is none: it then keeps what needs it);
 * `fs` is read only by frame_aware. */
static __always_inline int qoc_target_drops(struct qoc_target *t, struct qoc_stream *st,
					    struct qoc_tstats *ts, struct qoc_fstate *fs,
					    struct __sk_buff *skb, __u8 cls, __u32 len)
{
	__u32 ppm = t->drop_ppm;

	if (t->policy == QOC_POLICY_UNIFORM)
		return ppm && (bpf_get_prandom_u32() % QOC_PPM) < ppm;
	if (t->policy == QOC_POLICY_FRAME_AWARE && st)
		return qoc_fa_drops(t, st, ts, fs, skb, len);
	if (t->policy != QOC_POLICY_DIFFERENTIAL || !st || !ts || cls == QOC_CLASS_OTHER)
		return 0; /* keep */
	/* Error diffusion per class: exact long-run shares, no randomness. */
	__u64 share = qoc_differential_share(st, cls, ppm);
	__u64 acc = ts->acc[cls & 3] + share * len;
	int drop = acc >= (__u64)QOC_PPM * len;
	if (drop)
		acc -= (__u64)QOC_PPM * len;
	ts->acc[cls & 3] = acc;
	return drop;
}

#endif /* QOC_POLICY_H */
