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

#endif /* QOC_MAPS_H */
