// SPDX-License-Identifier: Apache-2.0
// The control-plane state file of a pinned edge (docs/ARCHITECTURE.md,
// Pinning and restart): what the Edge knows that the maps do not say (ports
// and who made their clsact qdisc, processes by name, clone targets by name
// with their policies, the QoC table).
//
// The file is YAML, written whole and renamed into place after every change,
// and sealed: its last line is `checksum: 0x<FNV-1a 64 of every byte before
// that line>`. parse_state() is pure (no kernel, no root, no files) and checks
// the file as strictly as the API checks a request, with the same functions
// (check_process_spec, check_target_count, validate(Policy), stream_key_of,
// QocTable::parse_yaml), so a restored edge can hold nothing a running one
// would have refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet::detail {

// Format 1 (before qocnet sealed the file) is refused: it cannot tell a
// whole file from a cut one.
inline constexpr int kStateFormat = 2;
// No state file of a real edge comes near this: 1024 processes and 4096
// (stream, process) subscriptions, the datapath's most, take about 1 MiB;
// 1024 streams of 128 targets each (more subscriptions than the datapath
// holds) about 10 MiB.
inline constexpr std::size_t kMaxStateBytes = 32u << 20;
// The most streams any edge can hold (EdgeOptions::max_streams at most); an
// Edge checks the file against its own qoc_subs map's size.
inline constexpr std::size_t kMaxStateStreams = 1u << 20;

struct SavedPort {
  std::string name;
  unsigned ifindex = 0;
  bool created_clsact = false;
};
struct SavedProcess {
  ProcessSpec spec;
  std::uint32_t slot = 0;
  unsigned ifindex = 0;
};
struct SavedTarget {
  std::string process;
  Policy policy;
};
struct SavedStream {
  StreamId id;
  std::vector<SavedTarget> targets;  // 1..QOC_MAX_TARGETS
};
struct SavedState {
  std::string pin_dir;
  std::uint64_t netns_inode = 0;
  std::uint64_t source_hash = 0;
  std::vector<SavedPort> ports;
  std::vector<SavedProcess> processes;
  std::vector<SavedStream> streams;
  QocTable qoc_table = QocTable::paper_default();
};

// The whole file, sealed with its checksum line.
std::string format_state(const SavedState& state);
// `body` followed by its checksum line (what format_state ends with).
std::string seal_state(const std::string& body);
// Parses and checks a state file's text. Any error is failed_precondition
// and says what is wrong (not which file: the caller adds that); it never
// throws and never trusts a count, a range or a shape.
Result<SavedState> parse_state(std::string_view text);

// The checks add_process makes of a spec (name, interface name, MAC, IPv4),
// without resolving the interface.
Status check_process_spec(const ProcessSpec& spec);
// At most QOC_MAX_TARGETS clone targets per stream.
Status check_target_count(const StreamId& stream, std::size_t n);

}  // namespace qocnet::detail
