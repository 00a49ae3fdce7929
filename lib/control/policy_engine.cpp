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

LoopStep loop_step(const LoopConfig& loop, double lossless, double required, double target, double measured) {
  LoopStep step{target, LoopAction::held};
  if (required <= 0) return step;
  if (measured < required) {
    step.target = std::min(lossless, target + loop.gain * (required - measured) + 0.005);
    step.action = LoopAction::tightened;
  } else if (measured > required + loop.margin) {
    step.target = std::max(required - loop.floor, target - loop.gain * (measured - required - loop.margin));
    step.action = step.target < target ? LoopAction::loosened : LoopAction::held;
  }
  return step;
}

}  // namespace qocnet::control
