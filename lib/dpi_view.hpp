// SPDX-License-Identifier: Apache-2.0
// Reading the DPI's maps into the public types, for every datapath that runs
// the DPI (the edge's and the sensor's programs share qoc_streams and
// qoc_counters, bpf_src/qoc_dpi.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bpf_objects.hpp"
#include "qoc_abi.h"
#include "qocnet/edge.hpp"

namespace qocnet::detail {

// The map key of a stream; invalid_argument names a bad address or port.
Result<qoc_stream_key> stream_key_of(const StreamId& stream);
// StreamKey <-> the datapath's key (ports in network order, padding zero).
qoc_stream_key kernel_key(const StreamKey& key);
StreamKey stream_key_of(const qoc_stream_key& key);
// The stream a key stands for (IPv4-mapped addresses as dotted quads).
StreamId stream_id_of(const qoc_stream_key& key);
// The key's raw bytes (for ordered containers).
std::string key_bytes_of(const qoc_stream_key& key);
// What the DPI learnt of one stream.
StreamStats stream_stats_of(const qoc_stream_key& key, const qoc_stream& st);
// qoc_counters summed over CPUs.
DpiCounters sum_dpi_counters(const std::vector<qoc_counters>& per_cpu);
// A loaded program as the kernel reports it.
Result<ProgramInfo> program_info_of(const Program& p);
// Runs a DPI program (the edge's or the sensor's) on one Ethernet frame with
// BPF_PROG_TEST_RUN as if it came through `ifindex`, and reads its verdict
// from skb->cb[] (enum qoc_cb_slot). The caller is in the program's netns.
Result<Verdict> test_run_dpi(const Program& prog, std::span<const std::uint8_t> frame,
                             std::uint32_t ifindex);

}  // namespace qocnet::detail
