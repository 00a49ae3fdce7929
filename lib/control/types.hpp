// SPDX-License-Identifier: Apache-2.0
// The control core's results, as domain types (no gRPC, no protobuf): what
// ControlCore's completions hand back and its watch hubs publish. The wire
// layer (lib/grpc/convert.hpp) maps them to their messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/policy_engine.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet::control {

// What a process gets of one stream, and why.
struct StreamPolicy {
  StreamKey stream;
  Policy policy;          // wanted: what it gets end to end
  double required = 0;    // 0: no requirement (operator policy or none)
  double target = 0;      // the closed loop's target
  std::optional<double> measured;  // the QoC it last reported (none yet: empty)
};

struct Registration {
  std::string token;  // handed out once; only its hash is kept
  std::vector<StreamPolicy> policies;
};

struct Measurement {
  StreamPolicy policy;
  LoopAction action = LoopAction::held;
};

struct PolicyChange {
  StreamPolicy policy;
  std::string reason;  // "current", "registered", "requirement", "measured", "operator", ...
  std::uint64_t generation = 0;
};

struct SensorView {
  std::string name, address;
  std::vector<StreamId> streams;
  std::optional<Policy> applied;  // what it last acknowledged for its first stream
  std::string last_error;
};

// One stream as WatchStats and the metrics show it.
struct StreamReport {
  StreamStats stream;
  std::vector<TargetStats> targets;
  std::vector<StreamPolicy> requirements;  // one per target, in target order
  Policy effective;                        // Eq. 3 over what the targets want
  Bandwidth bandwidth;
};

struct StatsSnapshot {
  double monotonic_seconds = 0;
  std::uint64_t generation = 0;
  std::uint64_t sequence = 0;  // per subscriber (WatchStats), 0 for a one-off
  std::vector<StreamReport> streams;
  std::vector<PortCounters> ports;
  DpiCounters dpi;
};

struct CoreStatus {
  std::vector<std::string> ports;
  std::vector<ProgramInfo> programs;
  bool adopted = false;
  double compile_seconds = 0;
  std::uint64_t generation = 0;
  double uptime_seconds = 0;
};

struct StreamBandwidth {
  Bandwidth bandwidth;
  std::uint32_t processes = 0;
};

}  // namespace qocnet::control
