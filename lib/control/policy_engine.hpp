// SPDX-License-Identifier: Apache-2.0
// qocnet::control policy engine: every decision that turns requirements and
// measurements into drop policies, as pure functions (no datapath, no I/O,
// no locks). The library's Edge (report_qoc, effective_policy) and qocnetd's
// control core both call these; there is no second implementation.
//
// Policies in three places (docs/SERVICE.md, Feedback):
//   wanted    what a process needs of a stream (from its requirement through
//             the QoC table, or set by an operator);
//   sensor    the stream's effective policy (Eq. 3 over the wanted ones),
//             applied on the sensor's uplink when a sensor agent serves it;
//   edge      what the edge still drops for the process out of what arrives:
//             1 - (1 - wanted) / (1 - sensor), so wanted = sensor then edge.
#pragma once

#include <span>

#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet::control {

// The policy that meets `required` with the least bandwidth: the kind whose
// curve allows the largest loss (keep when none allows any). failed_precondition
// when `required` is above what a loss-free stream gives.
Result<Policy> choose_policy(const QocTable& table, double required);

// What a process with closed-loop target `target` gets: keep for no target
// (0 or less: nothing reported) and for a target at or above the loss-free
// QoC; otherwise choose_policy.
Result<Policy> policy_for(const QocTable& table, double target);

// Eq. 3: the stream's effective policy over its processes' policies: the
// least lossy one, or keep if any process keeps everything, the kinds differ
// (they drop different datagrams first) or there are none.
Policy effective_policy(std::span<const Policy> policies);

// The edge's share of `wanted` once the sensor already applied `sensor`:
// wanted = sensor then share. keep when the sensor drops nothing (share =
// wanted), when the kinds differ, when the sensor already drops as much or
// more, or when it drops everything.
Policy edge_share(const Policy& wanted, const Policy& sensor);

// What a report did to a process's policy: less loss (tightened), more
// (loosened), or the same (held). The closed loop itself is the QoC model
// (control/qoc_model.hpp; docs/SERVICE.md, Closed loop).
enum class LoopAction { held, tightened, loosened };
const char* to_string(LoopAction a) noexcept;

// The action that moving from policy `from` to `to` is (by their drop rates;
// keep drops 0).
LoopAction action_of(const Policy& from, const Policy& to);

}  // namespace qocnet::control
