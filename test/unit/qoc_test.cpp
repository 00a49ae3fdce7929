// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include "qocnet/qoc.hpp"

using namespace qocnet;
using Catch::Detail::Approx;

TEST_CASE("policies print and parse", "[unit][qoc]") {
  CHECK(to_string(Policy::keep()) == "keep");
  CHECK(to_string(Policy::differential(0.25)) == "differential(0.25)");
  auto p = parse_policy("frame_aware(0.1)");
  REQUIRE(p.ok());
  CHECK(*p == Policy::frame_aware(0.1));
  CHECK(parse_policy("keep")->kind == PolicyKind::keep);
  for (const char* bad : {"drop(0.1)", "uniform", "uniform()", "uniform(x)", "uniform(1.5)",
                          "differential(-0.1)", "uniform(0.1"}) {
    INFO(bad);
    auto r = parse_policy(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
  }
  auto out = parse_policy("uniform(1.5)");
  CHECK(out.error().message.find("outside [0, 1]") != std::string::npos);
}

TEST_CASE("the default table is the paper's Table 1", "[unit][qoc]") {
  const QocTable t = QocTable::paper_default();
  CHECK(t.qoc_at(PolicyKind::uniform, 0.005) == Approx(0.95));
  CHECK(t.qoc_at(PolicyKind::uniform, 0.05) == Approx(0.10));
  CHECK(t.qoc_at(PolicyKind::differential, 0.02) == Approx(0.74));
  CHECK(t.qoc_at(PolicyKind::differential, 0.0) == Approx(1.0));
  // Between samples: linear.
  CHECK(t.qoc_at(PolicyKind::uniform, 0.0075) == Approx((0.95 + 0.84) / 2));
  bool known = true;
  CHECK(t.qoc_at(PolicyKind::uniform, 0.2, &known) == Approx(0.10));
  CHECK_FALSE(known);
}

TEST_CASE("inverting the table gives the largest loss that meets a requirement", "[unit][qoc]") {
  const QocTable t = QocTable::paper_default();
  // Exactly at a sample.
  CHECK(t.max_loss(PolicyKind::uniform, 0.84) == Approx(0.01));
  CHECK(t.max_loss(PolicyKind::differential, 0.96) == Approx(0.01));
  // Between samples: differential 0.96 @1% .. 0.74 @2%; 0.85 is halfway.
  CHECK(t.max_loss(PolicyKind::differential, 0.85) == Approx(0.015));
  // Between lossless (1.0 @0) and the first sample.
  CHECK(t.max_loss(PolicyKind::uniform, 0.975) == Approx(0.0025));
  // Met at every sample: not extrapolated beyond the last.
  CHECK(t.max_loss(PolicyKind::differential, 0.30) == Approx(0.05));
  // Above lossless: nothing.
  CHECK(t.max_loss(PolicyKind::uniform, 1.01) == 0.0);
  // Round trip: the QoC at the inverted loss is the requirement.
  for (double q : {0.99, 0.9, 0.8, 0.6, 0.45}) {
    INFO(q);
    CHECK(t.qoc_at(PolicyKind::differential, t.max_loss(PolicyKind::differential, q)) == Approx(q));
  }
}

TEST_CASE("the chosen policy is the one with the lowest bandwidth", "[unit][qoc]") {
  const QocTable t = QocTable::paper_default();
  auto p = choose_policy(t, 0.9);
  REQUIRE(p.ok());
  CHECK(p->kind == PolicyKind::differential);  // allows more loss than uniform at 0.9
  CHECK(p->drop == Approx(0.01 + 0.01 * (0.96 - 0.9) / (0.96 - 0.74)));
  auto strict = choose_policy(t, 1.0);
  REQUIRE(strict.ok());
  CHECK(strict->kind == PolicyKind::keep);
  auto impossible = choose_policy(t, 1.2);
  REQUIRE_FALSE(impossible.ok());
  CHECK(impossible.error().code == Errc::failed_precondition);
  CHECK(impossible.error().message.find("best achievable is 1.0") != std::string::npos);
}

TEST_CASE("a table is loaded from YAML and checked", "[unit][qoc]") {
  auto t = QocTable::parse_yaml(R"(
metric: SIFT match rate
lossless: 1.0
policies:
  uniform: {loss: [0.01, 0.1], qoc: [0.8, 0.2]}
  frame_aware: {loss: [0.1, 0.3], qoc: [0.9, 0.6]}
)");
  REQUIRE(t.ok());
  CHECK(t->metric() == "SIFT match rate");
  CHECK(t->max_loss(PolicyKind::frame_aware, 0.75) == Approx(0.2));
  auto choice = choose_policy(*t, 0.75);
  REQUIRE(choice.ok());
  CHECK(choice->kind == PolicyKind::frame_aware);

  SECTION("not monotone") {
    auto bad = QocTable::parse_yaml("policies:\n  uniform: {loss: [0.01, 0.02], qoc: [0.5, 0.7]}\n");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("not monotone") != std::string::npos);
  }
  SECTION("losses out of order") {
    auto bad = QocTable::parse_yaml("policies:\n  uniform: {loss: [0.02, 0.01], qoc: [0.5, 0.4]}\n");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("not above the previous one") != std::string::npos);
  }
  SECTION("lengths differ") {
    auto bad = QocTable::parse_yaml("policies:\n  uniform: {loss: [0.01], qoc: [0.5, 0.4]}\n");
    REQUIRE_FALSE(bad.ok());
  }
  SECTION("infinite, NaN or overflowing values") {
    // Each made qoc_at return NaN or rise with loss (found by fuzz_qoc_table).
    for (const char* text : {"lossless: .inf\npolicies:\n  uniform: {loss: [0.1], qoc: [0.5]}\n",
                             "lossless: .nan\npolicies:\n  uniform: {loss: [0.1], qoc: [0.5]}\n",
                             "policies:\n  uniform: {loss: [0.1, 0.2], qoc: [-.inf, -.inf]}\n",
                             "lossless: 1e308\npolicies:\n  uniform: {loss: [0.1], qoc: [-1e308]}\n"}) {
      INFO(text);
      auto bad = QocTable::parse_yaml(text);
      REQUIRE_FALSE(bad.ok());
      CHECK(bad.error().message.find("not a finite number") != std::string::npos);
    }
    auto ok = QocTable::parse_yaml("lossless: 1e300\npolicies:\n  uniform: {loss: [0.1], qoc: [-1e300]}\n");
    REQUIRE(ok.ok());
    CHECK(ok->qoc_at(PolicyKind::uniform, 0.05) == Approx(0.0).margin(1e285));
  }
  SECTION("unknown policy") {
    auto bad = QocTable::parse_yaml("policies:\n  random: {loss: [0.01], qoc: [0.5]}\n");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("unknown policy 'random'") != std::string::npos);
  }
  SECTION("not YAML") {
    auto bad = QocTable::parse_yaml("policies: [unclosed");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Errc::invalid_argument);
  }
  SECTION("missing file") {
    auto bad = QocTable::load("/nonexistent/qoc.yaml");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Errc::not_found);
  }
}

TEST_CASE("effective quality is the least lossy policy of a stream's processes", "[unit][qoc]") {
  CHECK(effective_policy({}) == Policy::keep());
  CHECK(effective_policy({Policy::differential(0.2), Policy::differential(0.05)}) ==
        Policy::differential(0.05));
  CHECK(effective_policy({Policy::differential(0.2), Policy::keep()}) == Policy::keep());
  CHECK(effective_policy({Policy::uniform(0.1), Policy::differential(0.2)}) == Policy::keep());
}

TEST_CASE("bandwidth of naive, replication and qocnet (Eq. 1 and 4)", "[unit][qoc]") {
  const Bandwidth b = bandwidth(1000.0, 4, Policy::differential(0.25));
  CHECK(b.naive_bytes == Approx(4000.0));
  CHECK(b.replication_bytes == Approx(1000.0));
  CHECK(b.qocnet_bytes == Approx(750.0));
  CHECK(b.reduction == Approx(1.0 - 750.0 / 4000.0));
  CHECK(bandwidth(1000.0, 0, Policy::keep()).reduction == 0.0);
}
