// SPDX-License-Identifier: Apache-2.0
// Quality of Computing: drop policies, the QoC table that maps a policy's
// packet loss to a process's QoC metric, the choice of policy for a required
// QoC, a stream's effective quality (paper Eq. 3) and the bandwidth
// accounting of the naive scheme (Eq. 1) against qocnet (Eq. 4).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet {

// DESIGN.md, Policies.
enum class PolicyKind : std::uint8_t { keep = 0, uniform = 1, differential = 2, frame_aware = 3 };
const char* to_string(PolicyKind k) noexcept;
Result<PolicyKind> parse_policy_kind(const std::string& name);

// frame_aware's drop order: which whole frames go first (docs/REPLICATION.md,
// Drop orders). disp: disp frames, then GOP tails, then whole GOPs (the
// default); tail: GOP tails first, disp and diff frames alike, as one run
// ending at the next ref frame; thin: disp frames spread evenly over the
// stream, then GOP tails, then whole GOPs.
enum class DropOrder : std::uint8_t { disp = 0, tail = 1, thin = 2 };
const char* to_string(DropOrder o) noexcept;
// "disp", "tail" or "thin"; the error names the problem.
Result<DropOrder> parse_drop_order(const std::string& name);

struct Policy {
  PolicyKind kind = PolicyKind::keep;
  double drop = 0.0;  // long-run fraction p of the stream's bytes, in [0, 1]
  DropOrder order = DropOrder::disp;  // frame_aware only (validate refuses another on other kinds)

  static Policy keep() { return {PolicyKind::keep, 0.0}; }
  static Policy uniform(double p) { return {PolicyKind::uniform, p}; }
  static Policy differential(double p) { return {PolicyKind::differential, p}; }
  static Policy frame_aware(double p, DropOrder o = DropOrder::disp) {
    return {PolicyKind::frame_aware, p, o};
  }
  bool operator==(const Policy&) const = default;
};

// "keep", "uniform(0.05)", "frame_aware(0.2)" (order disp),
// "frame_aware(0.2,tail)", ...
std::string to_string(const Policy& p);
// Parses what to_string prints (spaces allowed after the comma); the error
// names the problem.
Result<Policy> parse_policy(const std::string& text);
// p inside [0, 1], keep with p = 0, an order other than disp on frame_aware
// only.
Status validate(const Policy& p);

// Per policy kind, QoC as a function of packet loss, given at sample points
// (non-increasing in loss). Loss 0 gives `lossless` (the metric on a loss-free
// stream; 1.0 for rates such as the detection rate).
class QocTable {
 public:
  struct Curve {
    std::vector<double> loss;  // increasing, in (0, 1]
    std::vector<double> qoc;   // non-increasing
  };

  // The paper's Table 1: object detection rate at 0.5 / 1 / 2 / 5 % loss.
  static QocTable paper_default();
  // Reads a YAML file:
  //   metric: object detection rate
  //   lossless: 1.0
  //   policies:
  //     uniform:      {loss: [0.005, 0.01, 0.02, 0.05], qoc: [0.95, 0.84, 0.46, 0.10]}
  //     differential: {loss: [...], qoc: [...]}
  static Result<QocTable> load(const std::filesystem::path& file);
  static Result<QocTable> parse_yaml(const std::string& text, const std::string& origin = "table");
  // Checks a table built in code (what load() checks too).
  static Result<QocTable> make(std::string metric, double lossless, std::map<PolicyKind, Curve> curves);

  const std::string& metric() const { return metric_; }
  double lossless() const { return lossless_; }
  const std::map<PolicyKind, Curve>& curves() const { return curves_; }

  // The metric expected under `policy` (interpolated; beyond the last sample
  // the curve is not extrapolated: returns the last sample's value, and
  // `known` says whether the loss was inside the table).
  double qoc_at(PolicyKind kind, double loss, bool* known = nullptr) const;
  // The largest loss under `kind` whose QoC still meets `required`, by
  // monotone (piecewise linear) interpolation; 0 if even the first sample
  // misses it. Never beyond the table's last sample.
  double max_loss(PolicyKind kind, double required) const;

 private:
  std::string metric_;
  double lossless_ = 1.0;
  std::map<PolicyKind, Curve> curves_;
};

// The policy that meets `required` with the least bandwidth: the kind whose
// curve allows the largest loss (keep when none allows any). Error when the
// requirement is above what a loss-free stream gives (the message says the
// best achievable).
Result<Policy> choose_policy(const QocTable& table, double required);

// Effective quality of a stream (paper Eq. 3): what the sensor must still
// send so every process consuming it gets what its policy keeps: the least
// lossy of the processes' policies (keep if any process keeps everything or
// the kinds differ in what they drop first).
Policy effective_policy(const std::vector<Policy>& policies);

// Bandwidth of one stream under the three schemes, from measured bytes.
struct Bandwidth {
  double stream_bytes = 0;      // what the sensor's full stream carried
  double naive_bytes = 0;       // Eq. 1: every process its own full stream
  double replication_bytes = 0; // one full stream, replicated at the edge
  double qocnet_bytes = 0;      // the sensor sends only the effective quality
  double reduction = 0;         // Eq. 4: 1 - qocnet / naive
};
Bandwidth bandwidth(double stream_bytes, std::size_t processes, const Policy& effective);

}  // namespace qocnet
