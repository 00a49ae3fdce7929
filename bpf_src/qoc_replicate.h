// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Selective replication: a datagram of a stream with clone targets goes to
 * every target whose policy keeps it, each copy rewritten to the target's
 * addresses; `bpf_clone_redirect` for every kept target but the last, the
 * frame itself for the last (`bpf_redirect_peer` into a veth's other end when
 * the process sits there, else `bpf_redirect`), no copy for a target that
 * drops it, and one drop when every target drops it. Streams without targets
 * follow the port pairs (qoc_forward.h).
 *
 * One pass over the targets decides and sends: a target that keeps the
 * datagram becomes the pending one, and the previous pending target gets its
 * copy then, so the last kept target is known without a second pass and
 * takes the frame itself. The pass runs QOC_TARGET_CHUNK targets a program
 * run; a stream with more goes on by tail call into qoc_deliver again, its
 * place (next target, pending target, the sensor's destination) kept in the
 * per-CPU walk. A target's counters and frame_aware state are array elements
 * at the slot the control plane gave the (stream, process) pair: one hash
 * lookup a datagram (the stream's targets), none a target.
 * docs/REPLICATION.md, Datapath. */
#ifndef QOC_REPLICATE_H
#define QOC_REPLICATE_H

#include "qoc_maps.h"
#include "qoc_forward.h"
#include "qoc_policy.h"

/* process slot -> where its copies go */
BPF_ARRAY(qoc_procs, struct qoc_proc, QOC_MAX_PROCS);

/* stream -> its clone targets and their policies */
BPF_HASH(qoc_subs, struct qoc_stream_key, struct qoc_targets, QOC_MAX_STREAMS);

/* subscription slot -> what its process got of its stream (per CPU), and
 * frame_aware's decisions: one entry per (stream, process) pair, the slot
 * given by the control plane and named in the stream's qoc_targets entry. A
 * slot is zeroed by the control plane before it is given out. */
BPF_PERCPU_ARRAY(qoc_sub_stats, struct qoc_tstats, QOC_MAX_SUBS);
BPF_ARRAY(qoc_sub_fstate, struct qoc_fstate, QOC_MAX_SUBS);

/* qoc_deliver masks target indexes with QOC_MAX_TARGETS - 1. */
_Static_assert((QOC_MAX_TARGETS & (QOC_MAX_TARGETS - 1)) == 0, "QOC_MAX_TARGETS must be a power of 2");

#define QOC_IP4_CSUM_OFF 10
#define QOC_IP4_DADDR_OFF 16
#define QOC_UDP_DPORT_OFF 2
#define QOC_UDP_CSUM_OFF 6

/* Rewrites the frame's destination to process p's: MAC always; for IPv4 the
 * address and UDP port, p's or, where p keeps them (0), the sensor's as the
 * datagram came (w->orig_ip4, w->key.dport); the IP and UDP checksums
 * updated incrementally (a zero UDP checksum stays zero). The frame is
 * rewritten in place for each copy in turn, so each copy carries exactly its
 * own process's fields whatever the previous copy was rewritten to. The
 * checksum helpers, not a precomputed header, because only they know
 * whether the UDP checksum is still to be completed (CHECKSUM_PARTIAL from a
 * local sender) or final. */
static __always_inline void qoc_rewrite(struct __sk_buff *skb, struct qoc_walk *w, struct qoc_proc *p)
{
	__u32 l3 = w->l3_off & 0x3ff;
	__u32 l4 = w->l4_off & 0x3ff;

	bpf_skb_store_bytes(skb, 0, p->mac, 6, 0);
	if (w->ipv6)
		return; /* IPv6 streams: MAC only (see docs/REPLICATION.md) */
	__be32 ip_new = p->ip4 ? p->ip4 : w->orig_ip4;
	__be32 ip_old = 0;
	bpf_skb_load_bytes(skb, l3 + QOC_IP4_DADDR_OFF, &ip_old, 4);
	if (ip_old != ip_new) {
		bpf_l4_csum_replace(skb, l4 + QOC_UDP_CSUM_OFF, ip_old, ip_new,
				    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
		bpf_l3_csum_replace(skb, l3 + QOC_IP4_CSUM_OFF, ip_old, ip_new, 4);
		bpf_skb_store_bytes(skb, l3 + QOC_IP4_DADDR_OFF, &ip_new, 4, 0);
	}
	__be16 port_new = p->port ? p->port : w->key.dport;
	__be16 port_old = 0;
	bpf_skb_load_bytes(skb, l4 + QOC_UDP_DPORT_OFF, &port_old, 2);
	if (port_old != port_new) {
		bpf_l4_csum_replace(skb, l4 + QOC_UDP_CSUM_OFF, port_old, port_new,
				    BPF_F_MARK_MANGLED_0 | 2);
		bpf_skb_store_bytes(skb, l4 + QOC_UDP_DPORT_OFF, &port_new, 2, 0);
	}
}

/* The IPv4 header checksum after a 32-bit word of the header changed from
 * `from` to `to` (RFC 1624, one's complement; the words as they lie in the
 * frame, in any byte order as long as all three agree). */
static __always_inline __u16 qoc_csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~from + (__u16)~(from >> 16);
	sum += (to & 0xffff) + (to >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* qoc_rewrite for the common frame (w->hdr_fast: untagged Ethernet, IPv4
 * without options): the new Ethernet and IPv4 headers and UDP ports are
 * made in w->hdr, which holds the frame's first bytes as they are now, and
 * written with one store; the IPv4 checksum is computed here (it is always
 * final), the UDP checksum is left to the helper, as in qoc_rewrite.
 * Loads of the old fields and three of the four stores are saved. */
static __always_inline void qoc_rewrite_fast(struct __sk_buff *skb, struct qoc_walk *w, struct qoc_proc *p)
{
	__u8 *h = w->hdr;
	__u16 *ip_csum = (__u16 *)(h + 14 + QOC_IP4_CSUM_OFF);
	__be32 *daddr = (__be32 *)(h + 14 + QOC_IP4_DADDR_OFF);
	__be16 *dport = (__be16 *)(h + 34 + QOC_UDP_DPORT_OFF);
	__be32 ip_new = p->ip4 ? p->ip4 : w->orig_ip4;
	__be16 port_new = p->port ? p->port : w->key.dport;

	__builtin_memcpy(h, p->mac, 6);
	if (*daddr != ip_new) {
		bpf_l4_csum_replace(skb, 34 + QOC_UDP_CSUM_OFF, *daddr, ip_new,
				    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
		*ip_csum = qoc_csum_replace4(*ip_csum, *daddr, ip_new);
		*daddr = ip_new;
	}
	if (*dport != port_new) {
		bpf_l4_csum_replace(skb, 34 + QOC_UDP_CSUM_OFF, *dport, port_new, BPF_F_MARK_MANGLED_0 | 2);
		*dport = port_new;
	}
	bpf_skb_store_bytes(skb, 0, h, QOC_HDR_FAST_LEN, 0);
}

/* A copy's rewrite, by the fast way where the frame allows it. */
static __always_inline void qoc_rewrite_for(struct __sk_buff *skb, struct qoc_walk *w, struct qoc_proc *p)
{
	if (w->hdr_fast)
		qoc_rewrite_fast(skb, w, p);
	else
		qoc_rewrite(skb, w, p);
}

/* Sends a copy to the pending target (a clone; the frame stays here). */
static __always_inline void qoc_send_clone(struct __sk_buff *skb, struct qoc_walk *w, __u32 proc,
					   __u32 sub, struct qoc_counters *cnt)
{
	struct qoc_proc *p = qoc_procs.lookup(&proc);

	if (!p || !p->ifindex)
		return; /* removed meanwhile */
	qoc_rewrite_for(skb, w, p);
	if (bpf_clone_redirect(skb, p->ifindex, 0) != 0)
		return;
	if (cnt)
		cnt->c[QOC_CNT_CLONES]++;
	struct qoc_tstats *ts = qoc_sub_stats.lookup(&sub);
	if (ts)
		ts->clones++;
}

/* The end of the pass: the pending target takes the frame itself. */
static __always_inline int qoc_send_last(struct __sk_buff *skb, struct qoc_walk *w,
					 struct qoc_counters *cnt)
{
	__u32 proc = w->pending;

	if (proc == QOC_NO_PROC) {
		if (cnt)
			cnt->c[QOC_CNT_ALL_DROPPED]++;
		return TC_ACT_SHOT;
	}
	struct qoc_proc *p = qoc_procs.lookup(&proc);
	if (!p || !p->ifindex)
		return TC_ACT_SHOT; /* the last kept target was removed meanwhile */
	qoc_rewrite_for(skb, w, p);
	if (p->flags & QOC_PROC_F_PEER) {
		if (cnt)
			cnt->c[QOC_CNT_PEER]++;
		return bpf_redirect_peer(p->ifindex, 0);
	}
	return bpf_redirect(p->ifindex, 0);
}

/* The qoc_deliver program: replicate a subscribed stream's datagram, or
 * follow the port pairs. One run decides for up to QOC_TARGET_CHUNK targets
 * from w->tnext on (see the top of this file). */
static __always_inline int qoc_replicate(struct __sk_buff *skb)
{
	__u32 zero_idx = 0;
	struct qoc_walk *w = qoc_walk_state();

	if (!w || !(skb->cb[QOC_CB_FLAGS] & QOC_F_STATE))
		return qoc_forward_port_pair(skb);
	struct qoc_counters *cnt = qoc_counters.lookup(&zero_idx);
	struct qoc_targets *tg = qoc_subs.lookup(&w->key);
	/* The place in the pass lives in the scratch walk, read and written
	 * through volatile pointers: in registers the verifier would track each
	 * of their values apart. */
	volatile __u32 *tnext = &w->tnext;
	volatile __u32 *pending = &w->pending;
	volatile __u32 *pending_sub = &w->pending_sub;
	__u32 start = *tnext;

	if (!tg) {
		/* The stream lost its targets meanwhile: a pass not begun follows
		 * the port pairs, one under way sends what it has. */
		if (!start)
			return qoc_forward_port_pair(skb);
		return qoc_send_last(skb, w, cnt);
	}
	if (!start) {
		*pending = QOC_NO_PROC;
		*pending_sub = 0;
		w->orig_ip4 = 0;
		w->hdr_fast = 0;
		__u32 f = skb->cb[QOC_CB_FLAGS];
		w->video = !!(f & QOC_F_VIDEO);
		/* 1: a random access point starts in it; 2: packets the DPI did
		 * not inspect (a GSO super-packet), which may hold one. */
		w->rap = (f & QOC_F_RAP) && (f & QOC_F_NEW_FRAME) && !(f & QOC_F_PENDING) ? 1
			 : (f & QOC_F_UNPARSED)                                          ? 2
												  : 0;
		if (!w->ipv6 && w->l3_off == 14 && w->l4_off == 34 &&
		    !bpf_skb_load_bytes(skb, 0, w->hdr, QOC_HDR_FAST_LEN)) {
			w->hdr_fast = 1;
			w->orig_ip4 = *(__be32 *)(w->hdr + 14 + QOC_IP4_DADDR_OFF);
		} else if (!w->ipv6) {
			bpf_skb_load_bytes(skb, (w->l3_off & 0x3ff) + QOC_IP4_DADDR_OFF, &w->orig_ip4, 4);
		}
		if (cnt)
			cnt->c[QOC_CNT_REPLICATED]++;
	}

	/* Only differential and frame_aware read the stream's state. */
	struct qoc_stream *st = 0;
	if (tg->flags & QOC_TG_F_STREAM)
		st = qoc_streams.lookup(&w->key);
	__u8 cls = skb->cb[QOC_CB_CLASS] & 3;
	__u32 len = skb->len;
	/* Read through volatile pointers in the loop, as the place in the pass:
	 * a branch on a value kept in a register would split the verifier's
	 * states at every target. */
	volatile __u8 *video = &w->video;
	volatile __u8 *rap = &w->rap;
	__u32 n = tg->n;

	if (n > QOC_MAX_TARGETS)
		n = QOC_MAX_TARGETS;
#pragma clang loop unroll(disable)
	for (__u32 k = 0; k < QOC_TARGET_CHUNK; k++) {
		__u32 i = start + k;
		if (i >= n)
			break;
		/* The index masked where it is used: the compiler, knowing i < n,
		 * would drop a mask it could see through, and the verifier needs
		 * the bound on the register that makes the address. */
		asm volatile("" : "+r"(i));
		i &= QOC_MAX_TARGETS - 1;
		struct qoc_target *t = &tg->t[i];
		__u32 sub = t->sub;
		struct qoc_tstats *ts = qoc_sub_stats.lookup(&sub);
		struct qoc_fstate *fs = qoc_sub_fstate.lookup(&sub);
		/* A joining target: its video starts at a datagram that starts a
		 * random access point (QOC_F_RAP, known); before it a decoder
		 * could only fail, so it is held back, and its policy not asked.
		 * Packets the DPI did not inspect may hold one: they go, and the
		 * target still waits for a random access point it knows of. */
		int held = 0;
		if (fs && !fs->joined && *video) {
			if (*rap == 1)
				fs->joined = 1;
			else if (*rap == 0)
				held = 1;
		}
		if (held || qoc_target_drops(t, st, ts, t->policy == QOC_POLICY_FRAME_AWARE ? fs : 0,
					     skb, cls, len)) {
			if (ts) {
				ts->held += held;
				ts->held_bytes += held ? len : 0;
				ts->drop_dgrams[cls]++;
				ts->drop_bytes[cls] += len;
			}
			continue;
		}
		if (ts) {
			ts->dlv_dgrams[cls]++;
			ts->dlv_bytes[cls] += len;
		}
		__u32 prev = *pending;
		if (prev != QOC_NO_PROC)
			qoc_send_clone(skb, w, prev, *pending_sub, cnt);
		*pending = t->proc;
		*pending_sub = sub;
	}
	start += QOC_TARGET_CHUNK;
	if (start < n) {
		*tnext = start;
		qoc_progs.call(skb, QOC_PROG_DELIVER);
		/* The kernel's limit on tail calls: the targets left get nothing. */
		if (cnt)
			cnt->c[QOC_CNT_TARGETS_CUT]++;
	}
	return qoc_send_last(skb, w, cnt);
}

/* The end of the DPI programs: a datagram booked in its stream's state goes
 * on by tail call to qoc_deliver (verified once, not once per DPI program
 * and path), its pass starting at the first target; qoc_deliver looks up
 * the stream's targets (one lookup a datagram, not one here and one there)
 * and sends a stream without targets along the port pairs. Anything else
 * follows the port pairs here. */
static __always_inline int qoc_end(struct __sk_buff *skb)
{
	struct qoc_walk *w = qoc_walk_state();

	if (w && (skb->cb[QOC_CB_FLAGS] & QOC_F_STATE)) {
		w->tnext = 0;
		qoc_progs.call(skb, QOC_PROG_DELIVER);
	}
	/* Not booked in its stream's state, or no qoc_deliver loaded: the port
	 * pairs decide. */
	return qoc_forward_port_pair(skb);
}

#endif /* QOC_REPLICATE_H */
