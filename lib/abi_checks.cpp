// The C++ side of the shared ABI: every struct in bpf_src/qoc_abi.h has the
// size and layout the BPF programs give it.
#include <cstddef>

#include "qoc_abi.h"

static_assert(sizeof(qoc_port_pair) == 8);
static_assert(offsetof(qoc_port_pair, egress_ifindex) == 0);
static_assert(sizeof(qoc_port_stats) == 8 * 8);
static_assert(offsetof(qoc_port_stats, tx_bytes) == 7 * 8);
static_assert(sizeof(qoc_port_stats) % 8 == 0, "per-CPU values need 8-byte slots");
