// SPDX-License-Identifier: Apache-2.0
#include "qoc_model.hpp"

#include <algorithm>
#include <cmath>

namespace qocnet::control {

namespace {

// Exponentially forgetting mean over the last `memory` samples.
void learn(double& n, double& mean, double x, int memory) {
  n = std::min(n + 1, static_cast<double>(std::max(memory, 1)));
  mean += (x - mean) / n;
}

// The same, with the spread around the mean.
void learn(double& n, double& mean, double& var, double x, int memory) {
  n = std::min(n + 1, static_cast<double>(std::max(memory, 1)));
  const double d = x - mean;
  mean += d / n;
  var = (1 - 1 / n) * (var + d * d / n);
}

}  // namespace

QocModel::QocModel(const QocTable& table, const ModelConfig& config) : config_(config), lossless_(table.lossless()) {
  const int bins = std::max(config_.bins, 1);
  for (const auto& [kind, curve] : table.curves()) {
    if (curve.loss.empty()) continue;
    Curve c;
    const double last = curve.loss.back();
    for (int i = 0; i <= bins; ++i) {
      Point p;
      p.drop = last * i / bins;
      p.prior = i == 0 ? lossless_ : table.qoc_at(kind, p.drop);
      c.points.push_back(p);
    }
    if (kind == PolicyKind::frame_aware)
      for (DropOrder o : {DropOrder::disp, DropOrder::tail, DropOrder::thin}) curves_[{kind, o}] = c;
    else
      curves_[{kind, DropOrder::disp}] = std::move(c);
  }
}

std::size_t QocModel::nearest(const Curve& c, double drop) const {
  std::size_t best = 0;
  for (std::size_t i = 1; i < c.points.size(); ++i)
    if (std::abs(c.points[i].drop - drop) < std::abs(c.points[best].drop - drop)) best = i;
  return best;
}

void QocModel::observe(const Policy& applied, double measured, const Policy* before, double required) {
  const bool lossless = applied.kind == PolicyKind::keep || applied.drop <= 0;
  const double was = !before || before->kind == PolicyKind::keep ? 0.0 : before->drop;
  ++reports_;
  if (before && measured >= required && was < (lossless ? 0.0 : applied.drop)) return;
  double resid = 0;
  for (auto& [key, c] : curves_) {
    if (!lossless && key != key_of(applied)) continue;
    if (!lossless) c.last = reports_;
    Point& p = c.points[lossless ? 0 : nearest(c, applied.drop)];
    const double table_loss = lossless_ - p.prior;
    learn(p.n, p.mean, p.var, measured, config_.memory);
    // The scale, where the table expects a loss large enough to learn it
    // from (a window's noise over a tiny loss says nothing of the scale).
    if (table_loss > 0.02 * lossless_)
      learn(c.ns, c.scale, std::clamp((lossless_ - measured) / table_loss, 0.0, 20.0), config_.memory);
    // How far the report falls from the curve as now learnt.
    resid = measured - (lossless_ - scale_of(c) * table_loss);
  }
  learn(nv_, var_, resid * resid, config_.memory);
}

double QocModel::scale_of(const Curve& c) const {
  // The prior: the table's 1 as one report, with what the other curves learnt.
  double n = 1, sum = 1;
  for (const auto& [key, o] : curves_)
    if (&o != &c) {
      n += o.ns;
      sum += o.ns * o.scale;
    }
  return (sum / n + c.ns * c.scale) / (1 + c.ns);
}

double QocModel::window_var() const {
  const double sd_prior = config_.sd_prior * lossless_;
  return (sd_prior * sd_prior + nv_ * var_) / (1 + nv_);
}

std::vector<QocModel::Estimate> QocModel::estimates(const Curve& c) const {
  const double curve_var = window_var();
  const double s = scale_of(c);
  std::vector<Estimate> out;
  for (const Point& p : c.points) {
    Estimate e;
    const double predicted = std::clamp(lossless_ - s * (lossless_ - p.prior), 0.0, lossless_);
    e.expected = (predicted + p.n * p.mean) / (1 + p.n);
    const double var = (curve_var + p.n * p.var) / (1 + p.n);
    e.sd = std::max(std::sqrt(var), config_.sd_floor * lossless_);
    e.lower = e.expected - config_.z * e.sd;
    e.reports = p.n;
    if (!out.empty()) {  // QoC never rises with the drop: what one point lacks, those above lack too
      e.expected = std::min(e.expected, out.back().expected);
      e.lower = std::min(e.lower, out.back().lower);
    }
    out.push_back(e);
  }
  return out;
}

std::size_t QocModel::points(PolicyKind kind, DropOrder order) const {
  auto it = curves_.find(key_of(Policy{kind, 0, order}));
  return it == curves_.end() ? 0 : it->second.points.size();
}

double QocModel::drop_at(PolicyKind kind, std::size_t i, DropOrder order) const {
  return curves_.at(key_of(Policy{kind, 0, order})).points.at(i).drop;
}

QocModel::Estimate QocModel::estimate(PolicyKind kind, std::size_t i, DropOrder order) const {
  return estimates(curves_.at(key_of(Policy{kind, 0, order}))).at(i);
}

std::optional<Policy> QocModel::probe(double required, const Policy& current) {
  if (config_.probe_every <= 0 || current.kind != PolicyKind::frame_aware || current.drop <= 0 ||
      reports_ - last_probe_ < config_.probe_every)
    return std::nullopt;
  const Curve* cur = &curves_.at(key_of(current));
  const Curve* pick = nullptr;
  DropOrder order = current.order;
  for (const auto& [key, c] : curves_)
    if (key.first == PolicyKind::frame_aware && key != key_of(current) &&
        (c.last < 0 || reports_ - c.last > 6L * config_.probe_every) && (!pick || c.last < pick->last)) {
      pick = &c;
      order = key.second;
    }
  if (!pick) return std::nullopt;
  last_probe_ = reports_;
  // The largest drop, a grid point or more below the current one, where the
  // probed order's own estimate (its scale, or the others' before it has
  // one) meets the requirement.
  const auto est = estimates(*pick);
  const double step = cur->points.size() > 1 ? cur->points[1].drop : 0.0;
  double drop = 0;
  for (std::size_t i = 1; i < est.size(); ++i)
    if (pick->points[i].drop <= current.drop - step + 1e-12 && est[i].lower >= required) drop = pick->points[i].drop;
  if (drop <= 0) return std::nullopt;
  return Policy{PolicyKind::frame_aware, drop, order};
}

QocModel::Choice QocModel::choose(double required, const Policy& current, std::optional<DropOrder> share) const {
  Choice best{Policy::keep(), lossless_, lossless_};
  Choice shared = best;  // the best in the shared order
  const double now = current.kind == PolicyKind::keep ? 0.0 : current.drop;
  bool first = true;
  for (const auto& [key, c] : curves_) {
    const auto est = estimates(c);
    if (first) {  // no loss: the same point on every curve
      best.expected = est[0].expected;
      best.lower = est[0].lower;
      first = false;
    }
    const double step = c.points.size() > 1 ? c.points[1].drop : 0.0;
    const double cap = now + config_.climb * step + 1e-12;
    for (std::size_t i = est.size(); i-- > 1;) {
      if (est[i].lower < required || c.points[i].drop > cap) continue;
      const double drop = c.points[i].drop;
      const bool better = drop > best.policy.drop + 1e-12 ||
                          (std::abs(drop - best.policy.drop) <= 1e-12 && key == key_of(current));
      if (best.policy.kind == PolicyKind::keep || better)
        best = Choice{Policy{key.first, drop, key.second}, est[i].expected, est[i].lower};
      if (share && key == Key{PolicyKind::frame_aware, *share})
        shared = Choice{Policy{key.first, drop, key.second}, est[i].expected, est[i].lower};
      break;
    }
  }
  if (share && best.policy.kind == PolicyKind::frame_aware && best.policy.order != *share &&
      shared.policy.kind == PolicyKind::frame_aware) {
    const Curve& c = curves_.at({PolicyKind::frame_aware, *share});
    const double step = c.points.size() > 1 ? c.points[1].drop : 0.0;
    if (shared.policy.drop >= best.policy.drop - config_.share_slack * step - 1e-12) return shared;
  }
  return best;
}

}  // namespace qocnet::control
