/* Selective replication: a datagram of a stream with clone targets goes to
 * every target whose policy keeps it, each copy rewritten to the target's
 * addresses; `bpf_clone_redirect` for every kept target but the last,
 * `bpf_redirect` for the last, no copy for a target that drops it, and one
 * drop when every target drops it. Streams without targets follow the port
 * pairs (qoc_forward.h). */
#ifndef QOC_REPLICATE_H
#define QOC_REPLICATE_H

#include "qoc_maps.h"
#include "qoc_forward.h"

#define QOC_IP4_CSUM_OFF 10
#define QOC_IP4_DADDR_OFF 16
#define QOC_UDP_DPORT_OFF 2
#define QOC_UDP_CSUM_OFF 6

/* The key of one process's state on one stream (qoc_tstats, qoc_fstate). */
static __always_inline struct qoc_tkey qoc_tkey_of(__u32 proc, struct qoc_stream_key *stream)
{
	struct qoc_tkey key = {.proc = proc};

	__builtin_memcpy(&key.stream, stream, sizeof(key.stream));
	return key;
}

/* differential(p): the share of class `cls` to drop, in ppm, so that p of the
 * stream's bytes go, taken from disp, then diff, then ref (never other). The
 * shares come from the stream's byte counts so far (the long run). Until the
 * stream has shown a whole GOP (two ref frames), its byte counts say nothing
 * of its mix, so only disp is dropped: no diff or ref datagram is lost to a
 * stream's first key frame being counted before its B-frames. */
static __always_inline __u64 qoc_differential_share(struct qoc_stream *st, __u8 cls, __u32 drop_ppm)
{
	__u64 disp = st->bytes[QOC_CLASS_DISP];
	__u64 diff = st->bytes[QOC_CLASS_DIFF];
	__u64 ref = st->bytes[QOC_CLASS_REF];
	__u64 total = st->bytes[QOC_CLASS_OTHER] + disp + diff + ref;
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
	__u64 disp = st->bytes[QOC_CLASS_DISP];
	__u64 diff = st->bytes[QOC_CLASS_DIFF];
	__u64 total = st->bytes[QOC_CLASS_OTHER] + disp + diff + st->bytes[QOC_CLASS_REF];
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
 * with a dropped frame's packets in it. PSI-only and other datagrams stay. */
static __always_inline int qoc_fa_drops(struct qoc_target *t, struct qoc_stream *st,
					struct qoc_tstats *ts, struct __sk_buff *skb,
					struct qoc_stream_key *stream, __u32 len)
{
	struct qoc_tkey key = qoc_tkey_of(t->proc, stream);
	struct qoc_fstate zero = {};
	struct qoc_fstate *fs = qoc_fstate.lookup_or_try_init(&key, &zero);
	if (!fs)
		return 0;
	fs->debt += (__s64)t->drop_ppm * len;
	__u32 flags = skb->cb[QOC_CB_FLAGS];
	if (!(flags & QOC_F_VIDEO))
		return 0;
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

/* Whether target t drops this datagram. */
static __always_inline int qoc_target_drops(struct qoc_target *t, struct qoc_stream *st,
					    struct qoc_tstats *ts, struct __sk_buff *skb,
					    struct qoc_stream_key *stream, __u8 cls, __u32 len)
{
	__u32 ppm = t->drop_ppm;

	if (t->policy == QOC_POLICY_UNIFORM)
		return ppm && (bpf_get_prandom_u32() % QOC_PPM) < ppm;
	if (t->policy == QOC_POLICY_FRAME_AWARE && st)
		return qoc_fa_drops(t, st, ts, skb, stream, len);
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

/* Rewrites the frame's destination to process p's (IPv4): MAC, address, UDP
 * port, with the IP and UDP checksums updated incrementally (a zero UDP
 * checksum stays zero). */
static __always_inline void qoc_rewrite(struct __sk_buff *skb, struct qoc_walk *w, struct qoc_proc *p)
{
	__u32 l3 = w->l3_off & 0x3ff;
	__u32 l4 = w->l4_off & 0x3ff;

	bpf_skb_store_bytes(skb, 0, p->mac, 6, 0);
	if (w->ipv6)
		return; /* IPv6 streams: MAC only (see docs/REPLICATION.md) */
	if (p->ip4) {
		__be32 old = 0, new = p->ip4;
		bpf_skb_load_bytes(skb, l3 + QOC_IP4_DADDR_OFF, &old, 4);
		if (old != new) {
			bpf_l4_csum_replace(skb, l4 + QOC_UDP_CSUM_OFF, old, new,
					    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
			bpf_l3_csum_replace(skb, l3 + QOC_IP4_CSUM_OFF, old, new, 4);
			bpf_skb_store_bytes(skb, l3 + QOC_IP4_DADDR_OFF, &new, 4, 0);
		}
	}
	if (p->port) {
		__be16 old = 0, new = p->port;
		bpf_skb_load_bytes(skb, l4 + QOC_UDP_DPORT_OFF, &old, 2);
		if (old != new) {
			bpf_l4_csum_replace(skb, l4 + QOC_UDP_CSUM_OFF, old, new,
					    BPF_F_MARK_MANGLED_0 | 2);
			bpf_skb_store_bytes(skb, l4 + QOC_UDP_DPORT_OFF, &new, 2, 0);
		}
	}
}

static __always_inline struct qoc_tstats *qoc_tstats_of(__u32 proc, struct qoc_stream_key *k)
{
	struct qoc_tkey key = qoc_tkey_of(proc, k);
	struct qoc_tstats zero = {};

	return qoc_tstats.lookup_or_try_init(&key, &zero);
}

/* The qoc_deliver program: replicate a subscribed stream's datagram, or
 * follow the port pairs. */
static __always_inline int qoc_replicate(struct __sk_buff *skb)
{
	__u32 zero_idx = 0;
	struct qoc_walk *w = qoc_walk_state();

	if (!w || !(skb->cb[QOC_CB_FLAGS] & QOC_F_TS))
		return qoc_forward_port_pair(skb);
	struct qoc_targets *tg = qoc_subs.lookup(&w->key);
	if (!tg)
		return qoc_forward_port_pair(skb);

	struct qoc_counters *cnt = qoc_counters.lookup(&zero_idx);
	struct qoc_stream *st = qoc_streams.lookup(&w->key);
	__u8 cls = skb->cb[QOC_CB_CLASS] & 3;
	__u32 len = skb->len;
	__u32 n = tg->n;
	/* The keep mask lives in the scratch value, read and written through a
	 * volatile pointer: in a register the verifier would track each of its
	 * 2^n values apart. */
	volatile __u32 *keep = &w->keep;
	volatile __u32 *last = &w->last;

	*keep = 0;
	*last = 0;

	if (cnt)
		cnt->c[QOC_CNT_REPLICATED]++;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < QOC_MAX_TARGETS; i++) {
		if (i >= n)
			break;
		struct qoc_target *t = &tg->t[i];
		struct qoc_tstats *ts = qoc_tstats_of(t->proc, &w->key);
		if (qoc_target_drops(t, st, ts, skb, &w->key, cls, len)) {
			if (ts) {
				ts->drop_dgrams[cls]++;
				ts->drop_bytes[cls] += len;
			}
			continue;
		}
		/* Booked here, so the sending loop needs no second lookup: every
		 * kept target is counted as cloned, the last one is corrected below. */
		if (ts) {
			ts->dlv_dgrams[cls]++;
			ts->dlv_bytes[cls] += len;
			ts->clones++;
		}
		*keep |= 1u << i;
		*last = i;
	}
	if (!*keep) {
		if (cnt)
			cnt->c[QOC_CNT_ALL_DROPPED]++;
		return TC_ACT_SHOT;
	}
	__u32 last_idx = *last;
	if (last_idx >= QOC_MAX_TARGETS)
		last_idx = 0;
	struct qoc_tstats *last_ts = qoc_tstats_of(tg->t[last_idx].proc, &w->key);
	if (last_ts)
		last_ts->clones--; /* it gets the frame itself, not a copy */

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < QOC_MAX_TARGETS; i++) {
		if (!(*keep & (1u << i)))
			continue;
		__u32 slot = tg->t[i].proc;
		struct qoc_proc *p = qoc_procs.lookup(&slot);
		if (!p || !p->ifindex)
			continue; /* removed meanwhile */
		qoc_rewrite(skb, w, p);
		if (i == *last)
			return bpf_redirect(p->ifindex, 0);
		if (cnt)
			cnt->c[QOC_CNT_CLONES]++;
		bpf_clone_redirect(skb, p->ifindex, 0);
	}
	return TC_ACT_SHOT; /* the last kept target was removed meanwhile */
}

/* The end of the DPI programs: a datagram of a stream with clone targets
 * goes on by tail call to qoc_deliver (verified once, not once per DPI
 * program and path); anything else follows the port pairs here. */
static __always_inline int qoc_end(struct __sk_buff *skb)
{
	struct qoc_walk *w = qoc_walk_state();

	if (w && (skb->cb[QOC_CB_FLAGS] & QOC_F_TS) && qoc_subs.lookup(&w->key))
		qoc_progs.call(skb, QOC_PROG_DELIVER);
	/* No targets, or no qoc_deliver loaded: the port pairs decide. */
	return qoc_forward_port_pair(skb);
}

#endif /* QOC_REPLICATE_H */
