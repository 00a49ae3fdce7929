// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
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

/* Branch-free helpers for qoc_deliver's target loop: BPF has no conditional
 * set or move, so a comparison is a jump, and every jump in the loop splits
 * the verifier's states at every target (docs/REPLICATION.md, Verifier).
 * The empty asm hides a value from the compiler, which would otherwise turn
 * the arithmetic back into a comparison or a select. All values < 2^63. */
static __always_inline __u64 qoc_hide(__u64 x)
{
	asm volatile("" : "+r"(x));
	return x;
}

/* 1 if a == b, else 0. */
static __always_inline __u64 qoc_is_eq(__u64 a, __u64 b)
{
	__u64 x = qoc_hide(a ^ b);

	return qoc_hide(((x | -x) >> 63) ^ 1);
}

/* 1 if a < b, else 0. */
static __always_inline __u64 qoc_is_lt(__u64 a, __u64 b)
{
	return qoc_hide((qoc_hide(a) - b) >> 63);
}

/* THIN while p is within the disp share, or before a whole GOP was seen
 * (docs/REPLICATION.md, Drop orders): 1, else 0 (another order, or THIN
 * beyond the disp share, which then counts as DISP does). *q: the share of
 * the disp frames to drop then, in ppm: the bytes p asks for over the disp
 * bytes, from the stream's recent mix, at most all of them. Without a
 * branch. */
static __always_inline __u64 qoc_fa_thin(struct qoc_target *t, struct qoc_stream *st, __u64 *q)
{
	__u64 disp = st->win[QOC_CLASS_DISP];
	__u64 total = st->win[QOC_CLASS_OTHER] + disp + st->win[QOC_CLASS_DIFF] + st->win[QOC_CLASS_REF];
	__u64 want = total * t->drop_ppm / QOC_PPM;
	__u64 share = want * QOC_PPM / (disp | 1);
	__u64 over = qoc_is_lt(QOC_PPM, share);
	__u64 within = 1 - qoc_is_lt(disp, want) * (1 - qoc_is_lt(st->ref_frames, 2));

	*q = share * (1 - over) + QOC_PPM * over; /* min(share, 10^6) */
	return qoc_is_eq(t->order, QOC_ORDER_THIN) * within;
}

/* TAIL: whether the GOP's tail starts at this non-ref frame. The tail is
 * every frame from here to the next ref frame (the GOP taken as long as the
 * one before it, else as the stream's mean; f the mean non-ref frame's
 * bytes); it starts here when that leaves the debt expected at the GOP's end
 * nearer zero than starting at the next frame would:
 * debt + p x tail - 10^6 x tail >= -10^6 x f / 2. */
static __always_inline int qoc_fa_tail_starts(struct qoc_fstate *fs, struct qoc_stream *st, __u32 drop_ppm)
{
	__u32 refs = st->class_frames[QOC_CLASS_REF];
	__u32 gop = fs->gop_len;
	if (!gop)
		gop = refs ? st->frames / refs : 1;
	__u32 left = gop > fs->pos ? gop - fs->pos : 1;
	__u32 n = st->class_frames[QOC_CLASS_DISP] + st->class_frames[QOC_CLASS_DIFF];
	__u64 f = n ? (st->bytes[QOC_CLASS_DISP] + st->bytes[QOC_CLASS_DIFF]) / n : 0;
	__u32 keep_ppm = drop_ppm < QOC_PPM ? QOC_PPM - drop_ppm : 0;
	__s64 need = (__s64)((__u64)keep_ppm * left * f) - (__s64)(QOC_PPM / 2) * (__s64)f;

	return fs->debt >= need;
}

/* frame_aware: the decision for a frame of class c, taken at its first
 * datagram. Error diffusion in whole frames: a unit is dropped when the debt
 * reaches half its expected size. `order` (enum qoc_order) says which frames
 * go first; THIN decides as DISP (its evenness comes from its debt rate,
 * qoc_fa_rate), TAIL starts a GOP's tail at any non-ref frame. Until a whole
 * GOP was seen, every order drops disp frames only. */
static __always_inline __u8 qoc_fa_decide(struct qoc_fstate *fs, struct qoc_stream *st, __u8 c,
					  __u32 drop_ppm, __u8 order)
{
	int level = qoc_fa_level(st, drop_ppm);
	__s64 half = QOC_PPM / 2;

	if (c == QOC_CLASS_REF) {
		fs->gop_len = fs->pos < 255 ? fs->pos + 1 : 255;
		fs->pos = 0;
		fs->tail_drop = 0;
		fs->gop_drop = level == 2 && fs->debt >= half * (__s64)qoc_frame_bytes(st, QOC_CLASS_REF);
		return fs->gop_drop;
	}
	fs->pos++;
	if (fs->gop_drop || fs->tail_drop)
		return 1; /* it may depend on a dropped frame */
	if (order == QOC_ORDER_TAIL && st->ref_frames >= 2) {
		/* Beyond the non-ref share every non-ref frame goes (level 2). */
		if (level == 2 || qoc_fa_tail_starts(fs, st, drop_ppm)) {
			fs->tail_drop = 1;
			return 1;
		}
		return 0;
	}
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
	/* THIN within the disp share counts in disp frames, not bytes: each
	 * disp frame adds q of a mean disp frame m at its start, each dropped
	 * one takes m; so the drops are spread evenly over the disp frames
	 * whatever their sizes and the bytes of the frames around them (a
	 * debt in bytes would drop the disp frames after a large ref frame in
	 * a run). Branch-free: `thin` is 0 or 1. */
	__u64 q = 0;
	__u64 thin = qoc_fa_thin(t, st, &q);
	__s64 per_byte = (__s64)(1 - thin);
	fs->debt += per_byte * (__s64)t->drop_ppm * len;
	__u32 flags = skb->cb[QOC_CB_FLAGS];
	if (!(flags & QOC_F_VIDEO) || (flags & QOC_F_UNPARSED))
		return 0; /* no frame, or packets of frames not known (its debt stays) */
	__u32 frame = skb->cb[QOC_CB_FRAMES];
	if ((flags & QOC_F_NEW_FRAME) && frame != fs->cur_frame) {
		__u8 c = skb->cb[QOC_CB_HISTORY] & 3;
		__s64 m = (__s64)(st->bytes[QOC_CLASS_DISP] / (st->class_frames[QOC_CLASS_DISP] | 1));
		/* THIN: this frame, if disp, adds q x m; the frame before it, if
		 * it was dropped, takes m (here, before the next decision, so
		 * that the decisions follow no branch of their own). */
		__s64 frames = (__s64)(qoc_is_eq(c, QOC_CLASS_DISP) * q) - (__s64)fs->cur_drop * QOC_PPM;
		fs->debt += (__s64)thin * frames * m;
		fs->prev_drop = fs->cur_drop;
		fs->cur_frame = frame;
		fs->cur_drop = qoc_fa_decide(fs, st, c, t->drop_ppm, t->order);
	}
	int drop = fs->cur_drop;
	if (flags & QOC_F_MISALIGNED) {
		if (drop != fs->prev_drop && ts)
			ts->partial++;
		drop = drop && fs->prev_drop;
	}
	if (drop)
		fs->debt -= per_byte * (__s64)QOC_PPM * len;
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
