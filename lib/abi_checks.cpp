// SPDX-License-Identifier: Apache-2.0
// The C++ side of the shared ABI: every struct in bpf_src/qoc_abi.h has the
// size and layout the BPF programs give it.
#include <cstddef>

#include "qoc_abi.h"

static_assert(sizeof(qoc_port_pair) == 8);
static_assert(offsetof(qoc_port_pair, egress_ifindex) == 0);
static_assert(sizeof(qoc_port_stats) == 8 * 8);
static_assert(offsetof(qoc_port_stats, tx_bytes) == 7 * 8);
static_assert(sizeof(qoc_port_stats) % 8 == 0, "per-CPU values need 8-byte slots");
static_assert(sizeof(qoc_stream_key) == 24);
static_assert(sizeof(qoc_stream) == 200);
static_assert(offsetof(qoc_stream, frame_rap) == 192);
static_assert(offsetof(qoc_stream, hevc_pps_seen) == 11);
static_assert(offsetof(qoc_stream, hevc_pps) == 184);
static_assert(offsetof(qoc_stream, history) == 20);
static_assert(offsetof(qoc_stream, ref_frames) == 22);
static_assert(offsetof(qoc_stream, dgrams) == 24);
static_assert(sizeof(qoc_counters) == QOC_NUM_COUNTERS * 8);
static_assert(sizeof(qoc_walk) == 112);
static_assert(sizeof(qoc_proc) == 20);
static_assert(sizeof(qoc_target) == 16);
static_assert(sizeof(qoc_targets) == 8 + 16 * QOC_MAX_TARGETS);
static_assert(sizeof(qoc_tkey) == 28);
static_assert(sizeof(qoc_tstats) == 24 * 8);
static_assert(sizeof(qoc_fstate) == 24);
static_assert(QOC_CLASS_REF == 3 && QOC_NUM_CLASSES == 4);
