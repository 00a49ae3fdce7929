// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Classifies the frame in an skb: parse to UDP, walk the TS packets, update
 * the stream's state and counters, and leave the verdict in skb->cb[] (see
 * enum qoc_cb_slot). A non-linear frame is pulled linear up to the bytes
 * inspected. A GSO super-packet (UDP_SEGMENT) is one UDP datagram to the
 * parser (its UDP length is the super-packet's); its first
 * QOC_TS_MAX_PACKETS TS packets are inspected and, as for any datagram with
 * packets beyond those, the rest are not: it is classed ref (QOC_F_UNPARSED)
 * and one verdict covers every segment (docs/DPI.md, GSO).
 *
 * Only a datagram booked in its own stream's state (QOC_F_STATE) may read the
 * per-CPU scratch walk afterwards: anything else (no stream state, not TS)
 * leaves it as the previous datagram left it, and must not borrow its key.
 *
 * Two programs share the DPI, joined by a tail call through qoc_progs, so
 * that the verifier checks the slow path (PSI parsing, PES starts, the frame
 * scanner's byte loop) once instead of once per TS packet of the walk:
 *   qoc_edge_in  parse, find the stream, fast walk over the TS headers; at a
 *                packet that needs more -> tail call qoc_ts_slow
 *   qoc_ts_slow  that one packet in full, then the fast walk on from the
 *                next (-> qoc_ts_slow again for the next such packet)
 * Whichever program ends the walk books the verdict, then forwards the frame
 * along the port pairs or, for a stream with clone targets, tail-calls
 * qoc_deliver (qoc_replicate.h). Datagrams from a frame's middle (the most)
 * make no tail call in the DPI. */
#ifndef QOC_DPI_H
#define QOC_DPI_H

#include "qoc_maps.h"
#include "qoc_parse.h"
#include "qoc_ts.h"

/* Bytes made linear for inspection: headers plus QOC_TS_MAX_PACKETS packets. */
#define QOC_PULL_LEN (256 + QOC_TS_MAX_PACKETS * QOC_TS_SIZE)

static __always_inline void qoc_count(struct qoc_counters *c, int idx, __u64 n)
{
	if (c && idx >= 0 && idx < QOC_NUM_COUNTERS)
		c->c[idx] += n;
}

static __always_inline int qoc_reason_counter(int reason)
{
	switch (reason) {
	case QOC_P_TRUNCATED: return QOC_CNT_TRUNCATED;
	case QOC_P_VLAN_DEEP: return QOC_CNT_VLAN_DEEP;
	case QOC_P_IPV6_EXT_DEEP: return QOC_CNT_IPV6_EXT_DEEP;
	case QOC_P_FRAGMENT: return QOC_CNT_FRAGMENT;
	case QOC_P_UDP_LEN: return QOC_CNT_UDP_LEN_BAD;
	}
	return -1;
}

static __always_inline struct qoc_stream *qoc_stream_of(struct qoc_stream_key *k)
{
	struct qoc_stream *st = qoc_streams.lookup(k);
	if (st)
		return st;
	struct qoc_stream zero = {};
	zero.frame_class = QOC_CLASS_REF;
	zero.scan_phase = QOC_SCAN_DONE; /* no frame until a PES start */
	qoc_streams.update(k, &zero);
	return qoc_streams.lookup(k);
}

static __always_inline void qoc_set_cb(struct __sk_buff *skb, __u32 cls, __u32 frames,
				       __u32 history, __u32 flags, __u32 video)
{
	skb->cb[QOC_CB_CLASS] = cls;
	skb->cb[QOC_CB_FRAMES] = frames;
	skb->cb[QOC_CB_HISTORY] = history;
	skb->cb[QOC_CB_FLAGS] = flags;
	skb->cb[QOC_CB_VIDEO] = video;
}

/* Books the datagram's class in the stream's and the global counters and
 * leaves the verdict in skb->cb[]. A datagram with TS packets the walk did
 * not reach may hold any frame's packets, a ref frame's too: when the stream
 * has video it is ref, and the stream's current frame is ref until the next
 * PES start it sees (its state after the unseen packets is not known). */
static __always_inline void qoc_dpi_finish(struct __sk_buff *skb, struct qoc_stream *st,
					   struct qoc_walk *w)
{
	__u32 zero_idx = 0;
	struct qoc_counters *cnt = qoc_counters.lookup(&zero_idx);

	if (w->unparsed && st->video_pid) {
		w->vmax = QOC_CLASS_REF;
		st->frame_class = QOC_CLASS_REF;
		st->scan_phase = QOC_SCAN_DONE;
		st->history = (st->history & ~3) | QOC_CLASS_REF;
	}
	__u8 cls = qoc_walk_class(w);

	__sync_fetch_and_add(&st->dgrams[cls], 1);
	__sync_fetch_and_add(&st->bytes[cls], skb->len);
	__sync_fetch_and_add(&st->win[cls], skb->len);
	if (st->win[0] + st->win[1] + st->win[2] + st->win[3] > QOC_SHARE_WINDOW) {
		/* Racy across CPUs by design: a lost update only blurs the window. */
		st->win[0] >>= 1;
		st->win[1] >>= 1;
		st->win[2] >>= 1;
		st->win[3] >>= 1;
	}
	if (w->misaligned)
		__sync_fetch_and_add(&st->misaligned, 1);
	if (w->partial)
		__sync_fetch_and_add(&st->ts_partial, 1);
	if (w->bad_sync)
		__sync_fetch_and_add(&st->ts_bad_sync, 1);
	if (w->malformed)
		__sync_fetch_and_add(&st->ts_malformed, 1);
	if (w->unparsed)
		__sync_fetch_and_add(&st->ts_unparsed, 1);
	qoc_count(cnt, QOC_CNT_CLASS_OTHER + cls, 1);

	__u32 flags = QOC_F_TS | QOC_F_STATE;
	if (w->unparsed)
		flags |= QOC_F_UNPARSED;
	if (w->video_seen)
		flags |= QOC_F_VIDEO;
	if (w->psi)
		flags |= QOC_F_PSI;
	if (w->new_frame)
		flags |= QOC_F_NEW_FRAME;
	if (!qoc_class_known(st->scan_phase))
		flags |= QOC_F_PENDING;
	if (w->misaligned)
		flags |= QOC_F_MISALIGNED;
	if (st->frame_rap)
		flags |= QOC_F_RAP;
	qoc_set_cb(skb, cls, st->frames, st->history, flags,
		   st->video_pid | ((__u32)st->codec << 16));
}

/* Walks on from w->next; hands a packet that needs the slow path to the
 * qoc_ts_slow program (a tail call: it does not return when it works). */
static __always_inline void qoc_dpi_continue(struct __sk_buff *skb, struct qoc_stream *st,
					     struct qoc_walk *w, void *data, void *data_end)
{
	if (qoc_ts_walk(st, data, data_end, w) == QOC_WALK_SLOW) {
		qoc_progs.call(skb, QOC_PROG_SLOW);
		/* No slow path loaded (or 33 tail calls made): stop here, and keep
		 * the frame's datagram as ref. */
		w->vmax = QOC_CLASS_REF;
		w->unparsed = 1;
	}
	qoc_dpi_finish(skb, st, w);
}

/* The edge program's DPI: parse, find the stream, walk its TS packets.
 * Returns the stream's state when the datagram was booked in it
 * (QOC_F_STATE), so the caller needs no second lookup; else NULL. */
static __always_inline struct qoc_stream *qoc_dpi_start(struct __sk_buff *skb)
{
	__u32 zero_idx = 0;
	struct qoc_counters *cnt = qoc_counters.lookup(&zero_idx);
	__u32 len = skb->len;

	qoc_set_cb(skb, QOC_CLASS_OTHER, 0, 0, 0, 0);
	qoc_count(cnt, QOC_CNT_SEEN, 1);
	if (skb->gso_segs > 1) {
		qoc_count(cnt, QOC_CNT_GSO, 1);
		qoc_count(cnt, QOC_CNT_GSO_SEGS, skb->gso_segs);
	}
	if ((__u32)(skb->data_end - skb->data) < len) {
		bpf_skb_pull_data(skb, len < QOC_PULL_LEN ? len : QOC_PULL_LEN);
		qoc_count(cnt, QOC_CNT_PULLED, 1);
	}
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	/* The UDP length is checked against the frame's length, not its linear
	 * bytes: a GSO super-packet or a frame the pull could not make linear
	 * is still UDP (the walk marks the packets it cannot reach). */
	struct qoc_udp_info u = {};
	int rc = qoc_parse_udp_len(data, data_end, len, &u);
	if (rc < 0) {
		qoc_count(cnt, QOC_CNT_NOT_UDP, 1);
		qoc_count(cnt, qoc_reason_counter(rc), 1);
		return 0;
	}
	__u8 *first = u.payload;
	/* The walk starts from an offset, not from the parser's pointer: every
	 * parse path (VLAN depth, IPv4 options, IPv6 extensions) then reaches
	 * the walk in the same verifier state and it is verified once. */
	__u32 poff = (__u8 *)u.payload - (__u8 *)data;
	if (poff > QOC_MAX_HDR_LEN || u.payload_len == 0 || (void *)(first + 1) > data_end ||
	    first[0] != 0x47) {
		qoc_count(cnt, QOC_CNT_NOT_TS, 1);
		return 0;
	}
	qoc_count(cnt, QOC_CNT_TS, 1);

	struct qoc_stream *st = qoc_stream_of(&u.key);
	struct qoc_walk *w = qoc_walk_state();
	if (!st || !w) {
		/* No state for its stream: it is `other`, and without QOC_F_STATE it
		 * follows the port pairs or the stack untouched (the scratch walk
		 * still holds the previous datagram's key). */
		qoc_count(cnt, QOC_CNT_STREAM_FULL, 1);
		qoc_count(cnt, QOC_CNT_CLASS_OTHER, 1);
		qoc_set_cb(skb, QOC_CLASS_OTHER, 0, 0, QOC_F_TS, 0);
		return 0;
	}
	__builtin_memset(w, 0, sizeof(*w));
	__builtin_memcpy(&w->key, &u.key, sizeof(u.key));
	w->poff = poff;
	w->l3_off = (__u8 *)u.l3 - (__u8 *)data;
	w->l4_off = (__u8 *)u.l4 - (__u8 *)data;
	w->ipv6 = u.ipv6;
	w->len = u.payload_len;
	qoc_dpi_continue(skb, st, w, data, data_end);
	return st;
}

/* qoc_ts_slow: one packet through the slow path, then the fast walk on.
 * Returns the stream's state as qoc_dpi_start does. */
static __always_inline struct qoc_stream *qoc_dpi_slow(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct qoc_walk *w = qoc_walk_state();
	if (!w)
		return 0;
	struct qoc_stream *st = qoc_streams.lookup(&w->key);
	if (!st) {
		/* Evicted meanwhile: as a stream without state (see qoc_dpi_start). */
		__u32 zero_idx = 0;
		struct qoc_counters *cnt = qoc_counters.lookup(&zero_idx);
		qoc_count(cnt, QOC_CNT_STREAM_FULL, 1);
		qoc_count(cnt, QOC_CNT_CLASS_OTHER, 1);
		qoc_set_cb(skb, QOC_CLASS_OTHER, 0, 0, QOC_F_TS, 0);
		return 0;
	}
	int rc = qoc_ts_slow_packet(st, data, data_end, w);
	if (rc < 0) {
		w->next = QOC_TS_MAX_PACKETS;
		qoc_dpi_finish(skb, st, w);
		return st;
	}
	/* Fresh packet pointers before the byte loop and before the fast walk:
	 * whichever way the parsing went, each then starts from one verifier
	 * state and is checked once. */
	if (rc > 0) {
		asm volatile("" ::: "memory");
		qoc_ts_scan_packet(st, (void *)(long)skb->data, (void *)(long)skb->data_end, w);
	}
	w->next++;
	asm volatile("" ::: "memory");
	qoc_dpi_continue(skb, st, w, (void *)(long)skb->data, (void *)(long)skb->data_end);
	return st;
}

#endif /* QOC_DPI_H */
