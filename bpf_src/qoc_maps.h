// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Maps of the edge datapath. Everything that changes while running lives here;
 * user space owns the entries (lib/edge.cpp). */
#ifndef QOC_MAPS_H
#define QOC_MAPS_H

#include "qoc_consts.h"
#include "qoc_abi.h"

/* ingress ifindex -> port pair */
BPF_HASH(qoc_port_pairs, __u32, struct qoc_port_pair, QOC_MAX_PORTS);

/* ifindex -> counters, one copy per CPU */
BPF_PERCPU_HASH(qoc_port_stats, __u32, struct qoc_port_stats, QOC_MAX_PORTS);

/* stream -> what the DPI learnt of it, and its counters */
BPF_TABLE("lru_hash", struct qoc_stream_key, struct qoc_stream, qoc_streams, QOC_MAX_STREAMS);

/* one datagram's walk, across tail calls (scratch, per CPU) */
BPF_PERCPU_ARRAY(qoc_scratch, struct qoc_walk, 1);

static __always_inline struct qoc_walk *qoc_walk_state(void)
{
	__u32 zero_idx = 0;

	return qoc_scratch.lookup(&zero_idx);
}

/* tail calls: the walk's slow path (qoc_dpi.h), replication (qoc_replicate.h) */
#define QOC_PROG_SLOW QOC_PROG_SLOW_SLOT
#define QOC_PROG_DELIVER QOC_PROG_DELIVER_SLOT
BPF_PROG_ARRAY(qoc_progs, 2);

/* parser outcomes and reasons, one entry, per CPU */
BPF_PERCPU_ARRAY(qoc_counters, struct qoc_counters, 1);

#endif /* QOC_MAPS_H */
