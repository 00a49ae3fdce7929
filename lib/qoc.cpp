// SPDX-License-Identifier: Apache-2.0
#include "qocnet/qoc.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "control/policy_engine.hpp"

namespace qocnet {

const char* to_string(PolicyKind k) noexcept {
  switch (k) {
    case PolicyKind::keep: return "keep";
    case PolicyKind::uniform: return "uniform";
    case PolicyKind::differential: return "differential";
    case PolicyKind::frame_aware: return "frame_aware";
  }
  return "?";
}

Result<PolicyKind> parse_policy_kind(const std::string& name) {
  for (PolicyKind k : {PolicyKind::keep, PolicyKind::uniform, PolicyKind::differential,
                       PolicyKind::frame_aware})
    if (name == to_string(k)) return k;
  return make_error(Errc::invalid_argument, "unknown policy '" + name + "'",
                    "use keep, uniform, differential or frame_aware");
}

const char* to_string(DropOrder o) noexcept {
  switch (o) {
    case DropOrder::disp: return "disp";
    case DropOrder::tail: return "tail";
    case DropOrder::thin: return "thin";
  }
  return "?";
}

Result<DropOrder> parse_drop_order(const std::string& name) {
  for (DropOrder o : {DropOrder::disp, DropOrder::tail, DropOrder::thin})
    if (name == to_string(o)) return o;
  return make_error(Errc::invalid_argument, "unknown drop order '" + name + "'",
                    "use disp, tail or thin");
}

std::string to_string(const Policy& p) {
  if (p.kind == PolicyKind::keep) return "keep";
  char buf[80];
  if (p.order == DropOrder::disp)
    std::snprintf(buf, sizeof buf, "%s(%g)", to_string(p.kind), p.drop);
  else
    std::snprintf(buf, sizeof buf, "%s(%g,%s)", to_string(p.kind), p.drop, to_string(p.order));
  return buf;
}

Status validate(const Policy& p) {
  if (!(p.drop >= 0.0 && p.drop <= 1.0))
    return make_error(Errc::invalid_argument,
                      "drop rate p = " + std::to_string(p.drop) + " of " + to_string(p.kind) +
                          " is outside [0, 1]",
                      "give p as a fraction of the stream's bytes, e.g. differential(0.25)");
  if (p.kind == PolicyKind::keep && p.drop != 0.0)
    return make_error(Errc::invalid_argument, "keep drops nothing but p = " + std::to_string(p.drop),
                      "use keep without a rate, or another policy");
  const auto order = static_cast<unsigned>(p.order);
  if (order > static_cast<unsigned>(DropOrder::thin))
    return make_error(Errc::invalid_argument, "drop order " + std::to_string(order) + " is not an order",
                      "use disp, tail or thin");
  if (p.order != DropOrder::disp && p.kind != PolicyKind::frame_aware)
    return make_error(Errc::invalid_argument,
                      std::string("drop order ") + to_string(p.order) + " is frame_aware's, not " +
                          to_string(p.kind) + "'s",
                      std::string("give an order only with frame_aware, e.g. frame_aware(0.2,") +
                          to_string(p.order) + ")");
  return {};
}

Result<Policy> parse_policy(const std::string& text) {
  if (text == "keep") return Policy::keep();
  const auto open = text.find('(');
  if (open == std::string::npos || text.back() != ')')
    return make_error(Errc::invalid_argument, "'" + text + "' is not a policy",
                      "write keep, uniform(P), differential(P), frame_aware(P) or frame_aware(P,ORDER) "
                      "with P in [0, 1] and ORDER disp, tail or thin");
  QOCNET_ASSIGN(kind, parse_policy_kind(text.substr(0, open)));
  const std::string args = text.substr(open + 1, text.size() - open - 2);
  const auto comma = args.find(',');
  const std::string num = args.substr(0, comma);
  char* end = nullptr;
  const double p = std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size())
    return make_error(Errc::invalid_argument, "'" + num + "' in '" + text + "' is not a number",
                      "write the drop rate as a decimal fraction, e.g. 0.25");
  DropOrder order = DropOrder::disp;
  if (comma != std::string::npos) {
    const auto first = args.find_first_not_of(' ', comma + 1);
    const std::string name = first == std::string::npos ? "" : args.substr(first);
    auto o = parse_drop_order(name);
    if (!o) return std::move(o).error().context("'" + text + "'");
    order = *o;
  }
  Policy pol{kind, p, order};
  QOCNET_TRY(validate(pol));
  return pol;
}

namespace {

// QoC values are any metric (a rate, dB, ...), but interpolation takes
// differences of two of them: bounded so that none overflows.
constexpr double kQocLimit = 1e300;

Status check_qoc_value(double v, const std::string& what) {
  if (std::isfinite(v) && std::fabs(v) <= kQocLimit) return {};
  return make_error(Errc::invalid_argument, what + " " + std::to_string(v) + " is not a finite number within ±1e300",
                    "give QoC values as plain numbers, e.g. 0.95 (not .inf, .nan or huge values)");
}

Status check_curve(PolicyKind kind, const QocTable::Curve& c, double lossless, const std::string& origin) {
  const std::string where = origin + ": policy " + to_string(kind);
  QOCNET_TRY(check_qoc_value(lossless, origin + ": lossless QoC"));
  for (std::size_t i = 0; i < c.qoc.size(); ++i)
    QOCNET_TRY(check_qoc_value(c.qoc[i], where + ": QoC at position " + std::to_string(i)));
  if (kind == PolicyKind::keep)
    return make_error(Errc::invalid_argument, where + " needs no curve (it loses nothing)",
                      "give curves for uniform, differential or frame_aware only");
  if (c.loss.empty() || c.loss.size() != c.qoc.size())
    return make_error(Errc::invalid_argument,
                      where + " has " + std::to_string(c.loss.size()) + " loss values and " +
                          std::to_string(c.qoc.size()) + " QoC values",
                      "give as many QoC values as loss values, at least one");
  double prev_loss = 0.0, prev_qoc = lossless;
  for (std::size_t i = 0; i < c.loss.size(); ++i) {
    if (!(c.loss[i] > prev_loss && c.loss[i] <= 1.0))
      return make_error(Errc::invalid_argument,
                        where + ": loss " + std::to_string(c.loss[i]) + " at position " +
                            std::to_string(i) + " is not above the previous one or not in (0, 1]",
                        "list losses as increasing fractions, e.g. [0.005, 0.01, 0.02, 0.05]");
    if (!(c.qoc[i] <= prev_qoc))
      return make_error(Errc::invalid_argument,
                        where + " is not monotone: QoC " + std::to_string(c.qoc[i]) + " at loss " +
                            std::to_string(c.loss[i]) + " is above " + std::to_string(prev_qoc) +
                            (i ? " at the lower loss before it" : " at zero loss (lossless)"),
                        "QoC must not rise as loss grows; check the measurements or their order");
    prev_loss = c.loss[i];
    prev_qoc = c.qoc[i];
  }
  return {};
}

}  // namespace

Result<QocTable> QocTable::make(std::string metric, double lossless, std::map<PolicyKind, Curve> curves) {
  if (curves.empty())
    return make_error(Errc::invalid_argument, "a QoC table needs at least one policy curve",
                      "give uniform and/or differential curves");
  for (const auto& [k, c] : curves) QOCNET_TRY(check_curve(k, c, lossless, metric.empty() ? "table" : metric));
  QocTable t;
  t.metric_ = std::move(metric);
  t.lossless_ = lossless;
  t.curves_ = std::move(curves);
  return t;
}

QocTable QocTable::paper_default() {
  std::map<PolicyKind, Curve> c;
  c[PolicyKind::uniform] = {{0.005, 0.01, 0.02, 0.05}, {0.95, 0.84, 0.46, 0.10}};
  c[PolicyKind::differential] = {{0.005, 0.01, 0.02, 0.05}, {0.99, 0.96, 0.74, 0.40}};
  return make("object detection rate", 1.0, std::move(c)).value();
}

Result<QocTable> QocTable::parse_yaml(const std::string& text, const std::string& origin) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["policies"] || !root["policies"].IsMap())
      return make_error(Errc::invalid_argument, origin + " has no 'policies' map",
                        "see docs/QOC.md for the table format");
    const std::string metric = root["metric"] ? root["metric"].as<std::string>() : "QoC";
    const double lossless = root["lossless"] ? root["lossless"].as<double>() : 1.0;
    std::map<PolicyKind, Curve> curves;
    for (const auto& it : root["policies"]) {
      const std::string name = it.first.as<std::string>();
      auto kind = parse_policy_kind(name);
      if (!kind) return std::move(kind).error().context(origin);
      const YAML::Node& n = it.second;
      if (!n["loss"] || !n["qoc"])
        return make_error(Errc::invalid_argument, origin + ": policy " + name + " lacks loss or qoc",
                          "give both lists: {loss: [...], qoc: [...]}");
      curves[*kind] = {n["loss"].as<std::vector<double>>(), n["qoc"].as<std::vector<double>>()};
    }
    return make(metric, lossless, std::move(curves));
  } catch (const YAML::Exception& e) {
    return make_error(Errc::invalid_argument, origin + " is not a valid QoC table: " + e.what(),
                      "see docs/QOC.md for the table format");
  }
}

Result<QocTable> QocTable::load(const std::filesystem::path& file) {
  std::ifstream f(file);
  if (!f) return make_error(Errc::not_found, "cannot read QoC table " + file.string(), "check the path", errno);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_yaml(ss.str(), file.string());
}

double QocTable::qoc_at(PolicyKind kind, double loss, bool* known) const {
  if (known) *known = true;
  if (kind == PolicyKind::keep || loss <= 0.0) return lossless_;
  auto it = curves_.find(kind);
  if (it == curves_.end()) {
    if (known) *known = false;
    return lossless_;
  }
  const Curve& c = it->second;
  double x0 = 0.0, y0 = lossless_;
  for (std::size_t i = 0; i < c.loss.size(); ++i) {
    if (loss <= c.loss[i]) return y0 + (c.qoc[i] - y0) * (loss - x0) / (c.loss[i] - x0);
    x0 = c.loss[i];
    y0 = c.qoc[i];
  }
  if (known) *known = false;
  return y0;
}

double QocTable::max_loss(PolicyKind kind, double required) const {
  auto it = curves_.find(kind);
  if (kind == PolicyKind::keep || it == curves_.end() || required > lossless_) return 0.0;
  const Curve& c = it->second;
  double x0 = 0.0, y0 = lossless_;
  for (std::size_t i = 0; i < c.loss.size(); ++i) {
    const double x1 = c.loss[i], y1 = c.qoc[i];
    if (y1 < required) {
      // Crosses inside (x0, x1]: interpolate; a flat segment cannot cross.
      return y0 == y1 ? x0 : x0 + (x1 - x0) * (y0 - required) / (y0 - y1);
    }
    x0 = x1;
    y0 = y1;
  }
  return x0;  // met at every sample: not extrapolated past the last one
}

// The decisions live in the policy engine (lib/control/policy_engine.hpp),
// shared by the Edge and qocnetd's control core.
Result<Policy> choose_policy(const QocTable& table, double required) {
  return control::choose_policy(table, required);
}

Policy effective_policy(const std::vector<Policy>& policies) { return control::effective_policy(policies); }

Bandwidth bandwidth(double stream_bytes, std::size_t processes, const Policy& effective) {
  Bandwidth b;
  b.stream_bytes = stream_bytes;
  b.naive_bytes = stream_bytes * static_cast<double>(processes);
  b.replication_bytes = processes ? stream_bytes : 0.0;
  b.qocnet_bytes = processes ? stream_bytes * (1.0 - effective.drop) : 0.0;
  b.reduction = b.naive_bytes > 0 ? 1.0 - b.qocnet_bytes / b.naive_bytes : 0.0;
  return b;
}

}  // namespace qocnet
