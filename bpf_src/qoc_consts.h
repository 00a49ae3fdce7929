// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* qocnet datapath limits. Every limit is overridable with -D at compile time;
 * the control plane passes the values it was configured with. */
#ifndef QOC_CONSTS_H
#define QOC_CONSTS_H

/* Interfaces the edge program may see as ingress or egress ports (map sizes). */
#ifndef QOC_MAX_PORTS
#define QOC_MAX_PORTS 256
#endif

/* 802.1Q / 802.1ad tags walked before giving up (the frame is then `other`). */
#ifndef QOC_MAX_VLAN_DEPTH
#define QOC_MAX_VLAN_DEPTH 2
#endif

/* IPv6 extension headers walked before giving up (the frame is `other`). */
#ifndef QOC_MAX_IPV6_EXT
#define QOC_MAX_IPV6_EXT 4
#endif

/* Headers before the UDP payload beyond which a frame is not inspected. */
#ifndef QOC_MAX_HDR_LEN
#define QOC_MAX_HDR_LEN 512
#endif

/* MPEG-TS: packet size, and how many packets of one datagram are inspected
 * (7 x 188 = 1316 bytes is the usual payload; more are counted, not parsed). */
#define QOC_TS_SIZE 188
#ifndef QOC_TS_MAX_PACKETS
#define QOC_TS_MAX_PACKETS 7
#endif

/* Program entries of a PAT and elementary streams of a PMT looked at. */
#ifndef QOC_PAT_MAX_PROGRAMS
#define QOC_PAT_MAX_PROGRAMS 4
#endif
#ifndef QOC_PMT_MAX_STREAMS
#define QOC_PMT_MAX_STREAMS 8
#endif

/* Video streams whose state the edge keeps (LRU: the oldest goes first). */
#ifndef QOC_MAX_STREAMS
#define QOC_MAX_STREAMS 1024
#endif

/* Computation processes the edge knows (slots of qoc_procs). */
#ifndef QOC_MAX_PROCS
#define QOC_MAX_PROCS 1024
#endif

/* Clone targets (subscribed processes) of one stream. */
#ifndef QOC_MAX_TARGETS
#define QOC_MAX_TARGETS 128
#endif

/* Subscriptions, (stream, process) pairs, whose counters and frame_aware
 * state the edge keeps in arrays (qoc_sub_stats, qoc_sub_fstate). */
#ifndef QOC_MAX_SUBS
#define QOC_MAX_SUBS 4096
#endif

/* Targets qoc_deliver decides for in one program run; more go on in the next
 * run by tail call (up to 33 runs a datagram, DPI included: qoc_replicate.h). */
#ifndef QOC_TARGET_CHUNK
#define QOC_TARGET_CHUNK 8
#endif

/* Version of the map layouts in qoc_abi.h; bumped on any layout change so a
 * pinned map of another layout is refused instead of silently reused. */
#ifndef QOC_ABI_VERSION
#define QOC_ABI_VERSION 11
#endif

/* Bytes of a stream's recent window (struct qoc_stream.win): about 2 GOPs of
 * a 4 Mbit/s camera with 2 s GOPs. Smaller follows a changing mix sooner but
 * estimates it from fewer frames. */
#ifndef QOC_SHARE_WINDOW
#define QOC_SHARE_WINDOW (4u << 20)
#endif

#endif /* QOC_CONSTS_H */
