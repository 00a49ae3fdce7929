// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Static L2 forwarding along port pairs, with per-port counters. */
#ifndef QOC_FORWARD_H
#define QOC_FORWARD_H

#include "qoc_maps.h"

static __always_inline struct qoc_port_stats *qoc_port_stats_of(__u32 ifindex)
{
	struct qoc_port_stats zero = {};

	return qoc_port_stats.lookup_or_try_init(&ifindex, &zero);
}

/* Counts the frame at its ingress port and sends it along the port's pair, if
 * it has one; otherwise lets it continue on the normal stack path. */
static __always_inline int qoc_forward_port_pair(struct __sk_buff *skb)
{
	__u32 in = skb->ifindex;
	__u64 len = skb->len;
	struct qoc_port_stats *in_stats = qoc_port_stats_of(in);
	struct qoc_port_pair *pair = qoc_port_pairs.lookup(&in);

	if (in_stats) {
		in_stats->rx_packets++;
		in_stats->rx_bytes += len;
	}
	if (!pair) {
		if (in_stats) {
			in_stats->pass_packets++;
			in_stats->pass_bytes += len;
		}
		return TC_ACT_OK;
	}

	__u32 out = pair->egress_ifindex;
	struct qoc_port_stats *out_stats = qoc_port_stats_of(out);

	if (in_stats) {
		in_stats->fwd_packets++;
		in_stats->fwd_bytes += len;
	}
	if (out_stats) {
		out_stats->tx_packets++;
		out_stats->tx_bytes += len;
	}
	return bpf_redirect(out, 0);
}

#endif /* QOC_FORWARD_H */
