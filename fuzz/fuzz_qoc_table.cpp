// SPDX-License-Identifier: Apache-2.0
// fuzz_qoc_table: the QoC table loader (QocTable::parse_yaml, what
// QocTable::load, qocnetd's --qoc-table and qocnetctl read) on arbitrary
// text, then what a loaded table is used for: qoc_at, max_loss,
// choose_policy, and parse_policy on the same text. A table the loader
// accepts must keep the promises of include/qocnet/qoc.hpp; any broken one
// aborts (a finding), as do crashes, leaks and undefined behaviour.
//   - max_loss(kind, q) is in [0, the curve's last loss] and the curve
//     meets q there: qoc_at(kind, max_loss) >= q (up to rounding);
//   - qoc_at is non-increasing in loss and never above lossless;
//   - choose_policy's policy validates and meets the requirement;
//   - a policy parse_policy accepts prints (to_string) to text that parses
//     back to the same kind.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "qocnet/qoc.hpp"

namespace {

[[noreturn]] void fail(const char* what, double a, double b) {
  std::fprintf(stderr, "fuzz_qoc_table: promise broken: %s (%.17g, %.17g)\n", what, a, b);
  std::abort();
}

// Rounding allowance: relative to the table's largest magnitude.
double tolerance(const qocnet::QocTable& t) {
  double scale = std::max(1.0, std::fabs(t.lossless()));
  for (const auto& [kind, curve] : t.curves())
    for (double q : curve.qoc) scale = std::max(scale, std::fabs(q));
  return 1e-9 * scale;
}

void check_table(const qocnet::QocTable& t) {
  const double eps = tolerance(t);
  const double required[] = {0.0, 0.1, 0.5, 0.84, 0.95, 0.99, 1.0, t.lossless(), t.lossless() - 1e-6};
  for (const auto& [kind, curve] : t.curves()) {
    if (curve.loss.empty() || curve.loss.size() != curve.qoc.size()) fail("curve sizes", 0, 0);
    const double last = curve.loss.back();
    double prev = t.lossless();
    for (int i = 0; i <= 40; ++i) {
      const double loss = last * i / 40.0;
      const double q = t.qoc_at(kind, loss);
      if (std::isnan(q)) fail("qoc_at is NaN", loss, q);
      if (q > prev + eps) fail("qoc_at increases with loss", loss, q);
      prev = q;
    }
    for (double r : required) {
      const double m = t.max_loss(kind, r);
      if (std::isnan(m) || m < 0.0 || m > last + 1e-12) fail("max_loss outside [0, last loss]", r, m);
      if (m > 0.0 && t.qoc_at(kind, m) < r - eps) fail("qoc_at(max_loss(q)) below q", r, t.qoc_at(kind, m));
    }
  }
  for (double r : required) {
    auto p = qocnet::choose_policy(t, r);
    if (!p) continue;
    if (!qocnet::validate(*p)) fail("choose_policy's policy does not validate", r, p->drop);
    if (p->kind != qocnet::PolicyKind::keep && t.qoc_at(p->kind, p->drop) < r - eps)
      fail("choose_policy's policy misses the requirement", r, t.qoc_at(p->kind, p->drop));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto t = qocnet::QocTable::parse_yaml(text, "fuzz input")) {
    check_table(*t);
  } else if (t.error().message.empty()) {
    fail("an error without a message", 0, 0);
  }
  if (auto p = qocnet::parse_policy(text)) {
    const std::string printed = qocnet::to_string(*p);
    auto again = qocnet::parse_policy(printed);
    if (!again || again->kind != p->kind) fail("to_string(parse_policy(x)) does not parse back", p->drop, 0);
  }
  return 0;
}
