// SPDX-License-Identifier: Apache-2.0
// qocnet::control QoC model: what one process's measured QoC does as its
// drop rate rises, learnt online from its reports (docs/SERVICE.md, Closed
// loop). One curve per policy kind of the QoC table, on a grid of drop
// rates; the table's curve is the prior, the process's reports correct it:
//
//   - a scale learnt over the whole curve: the process loses s times the
//     QoC the table says it loses (its content or metric suffers more or
//     less than the table's), so drop rates not tried yet are predicted
//     from the ones tried; no loss always gives the table's `lossless`;
//   - per grid point, the reports made there (their mean and spread),
//     remembered over the last `memory` reports at that point.
//
// The loop then picks the largest drop whose QoC, less z spreads, still
// meets the requirement: the requirement holds in 95 % or more of the
// process's windows (z = 2: the spread is estimated from few reports) at
// the least bandwidth the model knows of.
// frame_aware has one curve per drop order (disp, tail, thin), all with the
// table's frame_aware curve as prior; the loop probes an order it has not
// measured lately (probe()), and each process ends up on the order its own
// reports show loses least.
// Pure data and arithmetic: no clock, no I/O; unit-tested without root.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "qocnet/qoc.hpp"

namespace qocnet::control {

// The loop's settings (qocnetd's `loop:` configuration).
struct ModelConfig {
  double z = 2.0;          // spreads of margin below the expected QoC (t, 7 dof, one-sided 95 %: 1.89)
  int bins = 50;           // grid points over (0, the table's last loss] per kind
  int memory = 8;          // reports a grid point (and the curve's scale and spread) remember
  int climb = 2;           // grid points the drop may rise per report
  int probe_every = 6;     // reports between probes of another drop order (0: never)
  int share_slack = 3;     // grid points of drop given up to share the stream's drop order
  double sd_floor = 0.01;  // of `lossless`: the least spread ever assumed
  double sd_prior = 0.03;  // of `lossless`: the spread assumed before any report
};

class QocModel {
 public:
  QocModel() = default;
  QocModel(const QocTable& table, const ModelConfig& config);

  bool empty() const { return curves_.empty(); }

  // A report: the process measured `measured` over an interval that ended
  // now, under `applied`; `before` is the policy the interval began under
  // when it changed meanwhile (NULL: `applied` held throughout). A report
  // that meets `required` after a move to more loss is not learnt from
  // (the less lossy policy before may have flattered it); any other is.
  void observe(const Policy& applied, double measured, const Policy* before, double required);

  struct Estimate {
    double expected = 0;  // the QoC expected at the point
    double sd = 0;        // the spread of one window's QoC around it
    double lower = 0;     // expected - z sd, made non-increasing in the drop
    double reports = 0;   // reports remembered at the point
  };
  // The curve of `kind` (and drop order) at grid point i (0: no loss);
  // points() is 0 for a kind the table lacks.
  std::size_t points(PolicyKind kind, DropOrder order = DropOrder::disp) const;
  double drop_at(PolicyKind kind, std::size_t i, DropOrder order = DropOrder::disp) const;
  Estimate estimate(PolicyKind kind, std::size_t i, DropOrder order = DropOrder::disp) const;

  struct Choice {
    Policy policy;          // keep when no drop meets the requirement
    double expected = 0;    // the QoC expected under it
    double lower = 0;       // and the bound the choice was made on
  };
  // The policy meeting `required` at the least bandwidth: over every kind,
  // the largest grid drop whose lower bound meets it, rising at most
  // `climb` grid points above `current`'s drop (falling at once).
  // `share`: the drop order the stream's other frame_aware processes hold.
  // The sensor can drop for the stream only what every process drops
  // (Eq. 3), so a frame_aware choice in another order costs the uplink:
  // `share` is taken instead while it allows a drop no more than
  // `share_slack` grid points below the best.
  Choice choose(double required, const Policy& current, std::optional<DropOrder> share = std::nullopt) const;
  // When the loop holds `current` (a frame_aware policy) and a probe is due
  // (`probe_every` reports since the last): the drop order measured least
  // lately (never, or not in the last 6 x probe_every reports), at the
  // largest drop at least one grid point below `current`'s where that
  // order's own estimate meets `required` (an order known to be worse is
  // probed where it should still meet it). Nothing when no probe is due
  // or no such drop exists.
  std::optional<Policy> probe(double required, const Policy& current);

 private:
  struct Point {
    double drop = 0;
    double prior = 0;  // the table's QoC
    double n = 0, mean = 0, var = 0;
  };
  struct Curve {
    std::vector<Point> points;
    double ns = 0, scale = 1;  // the loss scale learnt from `ns` reports
    long last = -1;            // the report it last learnt from (-1: none)
  };
  using Key = std::pair<PolicyKind, DropOrder>;
  static Key key_of(const Policy& p) { return {p.kind, p.kind == PolicyKind::frame_aware ? p.order : DropOrder::disp}; }
  // The loss scale: the curve's reports, with one more of the prior, which
  // is the table's 1 pooled with what the other curves learnt (the
  // process's metric, not the kind, is what suffers more or less than the
  // table, until the curve's own reports say otherwise).
  double scale_of(const Curve& c) const;
  // The spread of one window's QoC around the curves, as a variance: the
  // process's, whatever the kind.
  double window_var() const;
  std::vector<Estimate> estimates(const Curve& c) const;
  std::size_t nearest(const Curve& c, double drop) const;

  ModelConfig config_;
  double lossless_ = 1.0;
  std::map<Key, Curve> curves_;
  double nv_ = 0, var_ = 0;  // the mean square of `nv_` reports around the curves
  long reports_ = 0, last_probe_ = 0;
};

using LoopConfig = ModelConfig;

}  // namespace qocnet::control
