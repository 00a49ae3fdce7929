/* qocnet datapath limits. Every limit is overridable with -D at compile time;
 * the control plane passes the values it was configured with. */
#ifndef QOC_CONSTS_H
#define QOC_CONSTS_H

/* Interfaces the edge program may see as ingress or egress ports (map sizes). */
#ifndef QOC_MAX_PORTS
#define QOC_MAX_PORTS 256
#endif

/* Version of the map layouts in qoc_abi.h; bumped on any layout change so a
 * pinned map of another layout is refused instead of silently reused. */
#ifndef QOC_ABI_VERSION
#define QOC_ABI_VERSION 1
#endif

#endif /* QOC_CONSTS_H */
