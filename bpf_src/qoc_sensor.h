// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The sensor's egress: every datagram of a stream leaves the sensor or is
 * dropped by the stream's policy, the same decision the edge takes for a
 * clone target (qoc_policy.h), so the uplink carries no more than the
 * stream's effective quality (docs/SENSOR.md). */
#ifndef QOC_SENSOR_H
#define QOC_SENSOR_H

#include "qoc_maps.h"
#include "qoc_policy.h"

/* (uplink slot, stream) -> what the uplink sent and dropped of it, per CPU.
 * LRU: every stream that leaves gets an entry, and under flow churn the
 * oldest go instead of new streams finding the table full. */
BPF_TABLE("lru_percpu_hash", struct qoc_tkey, struct qoc_tstats, qoc_tstats, QOC_MAX_STREAMS * 4);

/* (uplink slot, stream) -> frame_aware's decisions (LRU, as qoc_tstats) */
BPF_TABLE("lru_hash", struct qoc_tkey, struct qoc_fstate, qoc_fstate, QOC_MAX_STREAMS * 4);

/* stream -> its own policy (a qoc_target whose proc is QOC_SENSOR_SLOT) */
BPF_HASH(qoc_spolicy, struct qoc_stream_key, struct qoc_target, QOC_MAX_STREAMS);

/* the policy of streams without their own (one entry; zero: keep) */
BPF_ARRAY(qoc_sdefault, struct qoc_target, 1);

/* The end of the sensor's DPI programs: a TS datagram is sent (TC_ACT_OK) or
 * dropped (TC_ACT_SHOT) under its stream's policy, and counted as either in
 * qoc_tstats; anything else (not TS; a stream the DPI holds no state for,
 * counted as stream_table_full) leaves untouched. `st` is the stream's
 * state as the DPI found it (no second lookup). */
static __always_inline int qoc_sensor_end(struct __sk_buff *skb, struct qoc_stream *st)
{
	__u32 zero_idx = 0;
	struct qoc_walk *w = qoc_walk_state();

	if (!w || !(skb->cb[QOC_CB_FLAGS] & QOC_F_STATE))
		return TC_ACT_OK; /* not TS, or no stream state: leaves untouched */
	struct qoc_target *pol = qoc_spolicy.lookup(&w->key);
	if (!pol)
		pol = qoc_sdefault.lookup(&zero_idx);
	if (!pol)
		return TC_ACT_OK;
	/* A copy: user space may rewrite the entry meanwhile, and the state's
	 * slot is always the uplink's. */
	struct qoc_target t = {.proc = QOC_SENSOR_SLOT, .policy = pol->policy,
			       .order = pol->order, .join = pol->join,
			       .drop_ppm = pol->drop_ppm};
	struct qoc_tkey key = {.proc = QOC_SENSOR_SLOT};
	__builtin_memcpy(&key.stream, &w->key, sizeof(key.stream));
	struct qoc_tstats tzero = {};
	struct qoc_tstats *ts = qoc_tstats.lookup_or_try_init(&key, &tzero);
	struct qoc_fstate *fs = 0;
	__u32 flags = skb->cb[QOC_CB_FLAGS];
	__u8 cls = skb->cb[QOC_CB_CLASS] & 3;
	__u32 len = skb->len;
	if (t.policy == QOC_POLICY_FRAME_AWARE) {
		struct qoc_fstate fzero = {};
		fs = qoc_fstate.lookup_or_try_init(&key, &fzero);
	}
	/* The uplink restarts a stream that everything was dropped of at its
	 * next random access point (a datagram that starts a frame the DPI
	 * knows is one, QOC_F_RAP): before it the edge's decoders could only
	 * fail.
	 * Held datagrams are counted as held and as dropped. The outcome is
	 * kept in the walk and read back through a volatile pointer: a branch
	 * on a register would double the verifier's states of every path
	 * through the DPI that ends here. */
	volatile __u8 *held = &w->rap;
	*held = 0;
	if (t.join && (flags & QOC_F_VIDEO)) {
		struct qoc_fstate jzero = {};
		struct qoc_fstate *js = fs ? fs : qoc_fstate.lookup_or_try_init(&key, &jzero);
		if (js && js->join_epoch != t.join) {
			if ((flags & QOC_F_RAP) && (flags & QOC_F_NEW_FRAME) && !(flags & QOC_F_PENDING))
				js->join_epoch = t.join;
			else if (!(flags & QOC_F_UNPARSED)) /* uninspected packets may hold one: they go */
				*held = 1;
		}
	}

	if (*held || qoc_target_drops(&t, st, ts, fs, skb, cls, len)) {
		if (ts && *held) {
			ts->held++;
			ts->held_bytes += len;
		}
		if (ts) {
			ts->drop_dgrams[cls]++;
			ts->drop_bytes[cls] += len;
		}
		return TC_ACT_SHOT;
	}
	if (ts) {
		ts->dlv_dgrams[cls]++;
		ts->dlv_bytes[cls] += len;
	}
	return TC_ACT_OK;
}

#endif /* QOC_SENSOR_H */
