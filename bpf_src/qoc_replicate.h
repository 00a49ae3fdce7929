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
#include "qoc_policy.h"

#define QOC_IP4_CSUM_OFF 10
#define QOC_IP4_DADDR_OFF 16
#define QOC_UDP_DPORT_OFF 2
#define QOC_UDP_CSUM_OFF 6

/* The sensor's destination as the datagram arrived, read before any copy is
 * rewritten: the frame is rewritten in place for each target in turn, so a
 * target that keeps the sensor's address or port must get these back, not
 * the previous target's. */
struct qoc_orig_dst {
	__be32 ip4;
	__be16 port;
	__u16 pad;
};

/* Rewrites the frame's destination to process p's: MAC always; for IPv4 the
 * address and UDP port, p's or, where p keeps them (0), the sensor's from
 * `orig`; the IP and UDP checksums updated incrementally (a zero UDP
 * checksum stays zero). Each copy then carries exactly its own process's
 * fields whatever the previous copy was rewritten to. */
static __always_inline void qoc_rewrite(struct __sk_buff *skb, struct qoc_walk *w, struct qoc_proc *p,
					struct qoc_orig_dst *orig)
{
	__u32 l3 = w->l3_off & 0x3ff;
	__u32 l4 = w->l4_off & 0x3ff;

	bpf_skb_store_bytes(skb, 0, p->mac, 6, 0);
	if (w->ipv6)
		return; /* IPv6 streams: MAC only (see docs/REPLICATION.md) */
	__be32 ip_new = p->ip4 ? p->ip4 : orig->ip4;
	__be32 ip_old = 0;
	bpf_skb_load_bytes(skb, l3 + QOC_IP4_DADDR_OFF, &ip_old, 4);
	if (ip_old != ip_new) {
		bpf_l4_csum_replace(skb, l4 + QOC_UDP_CSUM_OFF, ip_old, ip_new,
				    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
		bpf_l3_csum_replace(skb, l3 + QOC_IP4_CSUM_OFF, ip_old, ip_new, 4);
		bpf_skb_store_bytes(skb, l3 + QOC_IP4_DADDR_OFF, &ip_new, 4, 0);
	}
	__be16 port_new = p->port ? p->port : orig->port;
	__be16 port_old = 0;
	bpf_skb_load_bytes(skb, l4 + QOC_UDP_DPORT_OFF, &port_old, 2);
	if (port_old != port_new) {
		bpf_l4_csum_replace(skb, l4 + QOC_UDP_CSUM_OFF, port_old, port_new,
				    BPF_F_MARK_MANGLED_0 | 2);
		bpf_skb_store_bytes(skb, l4 + QOC_UDP_DPORT_OFF, &port_new, 2, 0);
	}
}

/* The qoc_deliver program: replicate a subscribed stream's datagram, or
 * follow the port pairs. */
static __always_inline int qoc_replicate(struct __sk_buff *skb)
{
	__u32 zero_idx = 0;
	struct qoc_walk *w = qoc_walk_state();

	if (!w || !(skb->cb[QOC_CB_FLAGS] & QOC_F_STATE))
		return qoc_forward_port_pair(skb);
	struct qoc_targets *tg = qoc_subs.lookup(&w->key);
	if (!tg)
		return qoc_forward_port_pair(skb);
	struct qoc_orig_dst orig = {.port = w->key.dport};
	if (!w->ipv6)
		bpf_skb_load_bytes(skb, (w->l3_off & 0x3ff) + QOC_IP4_DADDR_OFF, &orig.ip4, 4);

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
		qoc_rewrite(skb, w, p, &orig);
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

	if (w && (skb->cb[QOC_CB_FLAGS] & QOC_F_STATE) && qoc_subs.lookup(&w->key))
		qoc_progs.call(skb, QOC_PROG_DELIVER);
	/* No targets, or no qoc_deliver loaded: the port pairs decide. */
	return qoc_forward_port_pair(skb);
}

#endif /* QOC_REPLICATE_H */
