// SPDX-License-Identifier: Apache-2.0
#include "policy_engine.hpp"

#include <algorithm>

namespace qocnet::control {

Result<Policy> choose_policy(const QocTable& table, double required) {
  if (!(required <= table.lossless()))
    return make_error(Errc::failed_precondition,
                      "no policy meets " + table.metric() + " >= " + std::to_string(required) +
                          ": the best achievable is " + std::to_string(table.lossless()) + " with keep (no loss)",
                      "ask for at most " + std::to_string(table.lossless()));
  Policy best = Policy::keep();
  for (const auto& [kind, curve] : table.curves()) {
    const double loss = table.max_loss(kind, required);
    if (loss > best.drop) best = Policy{kind, loss};
  }
  return best;
}

Result<Policy> policy_for(const QocTable& table, double target) {
  if (target <= 0 || target >= table.lossless()) return Policy::keep();
  return control::choose_policy(table, target);
}

Policy effective_policy(std::span<const Policy> policies) {
  if (policies.empty()) return Policy::keep();
  Policy eff = policies.front();
  for (const auto& p : policies) {
    // Another kind, or frame_aware with another drop order (other frames go
    // first): nothing common to drop at the sensor.
    if (p.kind == PolicyKind::keep || p.kind != eff.kind || p.order != eff.order) return Policy::keep();
    if (p.drop < eff.drop) eff = p;
  }
  return eff.drop > 0 ? eff : Policy::keep();
}

Policy edge_share(const Policy& wanted, const Policy& sensor) {
  if (sensor.kind == PolicyKind::keep || sensor.drop <= 0) return wanted;
  if (wanted.kind != sensor.kind || wanted.order != sensor.order || wanted.drop <= sensor.drop ||
      sensor.drop >= 1)
    return Policy::keep();
  const double p = 1.0 - (1.0 - wanted.drop) / (1.0 - sensor.drop);
  return Policy{wanted.kind, std::clamp(p, 0.0, 1.0), wanted.order};
}

const char* to_string(LoopAction a) noexcept {
  switch (a) {
    case LoopAction::held: return "held";
    case LoopAction::tightened: return "tightened";
    case LoopAction::loosened: return "loosened";
  }
  return "?";
}

LoopAction action_of(const Policy& from, const Policy& to) {
  const double a = from.kind == PolicyKind::keep ? 0.0 : from.drop;
  const double b = to.kind == PolicyKind::keep ? 0.0 : to.drop;
  return b < a ? LoopAction::tightened : b > a ? LoopAction::loosened : LoopAction::held;
}

}  // namespace qocnet::control
