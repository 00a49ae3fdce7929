/* The one definition of every struct shared by qocnet's BPF programs and its
 * C++ control plane. Plain C, fixed-width kernel types only, no padding holes:
 * the C++ side static_asserts every size (lib/abi_checks.cpp). */
#ifndef QOC_ABI_H
#define QOC_ABI_H

#include <linux/types.h>

/* qoc_port_pairs value: where frames arriving on the key port go. */
struct qoc_port_pair {
	__u32 egress_ifindex;
	__u32 flags; /* reserved, 0 */
};

/* qoc_port_stats value (per CPU), keyed by ifindex. A port counts what it
 * receives (rx), what of that followed a port pair (fwd) or went on to the
 * normal stack path (pass), and what port pairs sent out through it (tx). */
struct qoc_port_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 fwd_packets;
	__u64 fwd_bytes;
	__u64 pass_packets;
	__u64 pass_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
};

#endif /* QOC_ABI_H */
