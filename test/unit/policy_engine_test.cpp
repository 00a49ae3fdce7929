// The policy engine's pure functions (lib/control/policy_engine.hpp): the
// closed loop, Eq. 3 and the edge's share after the sensor. No root.
#include <catch2/catch.hpp>

#include <vector>

#include "control/policy_engine.hpp"

using namespace qocnet;
using namespace qocnet::control;
using Catch::Detail::Approx;

namespace {
const LoopConfig kLoop{};  // margin 0.03, gain 0.5, floor 0.2
}

TEST_CASE("the loop tightens when the measured QoC is below the requirement", "[unit][policy]") {
  const LoopStep s = loop_step(kLoop, 1.0, 0.9, 0.9, 0.8);
  CHECK(s.action == LoopAction::tightened);
  CHECK(s.target == Approx(0.9 + 0.5 * 0.1 + 0.005));
  // Each report moves it further while the process still misses.
  const LoopStep t = loop_step(kLoop, 1.0, 0.9, s.target, 0.85);
  CHECK(t.action == LoopAction::tightened);
  CHECK(t.target == Approx(s.target + 0.5 * 0.05 + 0.005));
}

TEST_CASE("the loop never asks for more than the loss-free QoC", "[unit][policy]") {
  const LoopStep s = loop_step(kLoop, 1.0, 0.95, 0.99, 0.2);
  CHECK(s.action == LoopAction::tightened);
  CHECK(s.target == 1.0);
  // Already at the cap: still tightened (the process misses), target stays.
  const LoopStep t = loop_step(kLoop, 1.0, 0.95, 1.0, 0.5);
  CHECK(t.action == LoopAction::tightened);
  CHECK(t.target == 1.0);
  // Another metric's loss-free value caps it (e.g. 40 dB).
  CHECK(loop_step(kLoop, 40.0, 30.0, 30.0, 0.0).target == 40.0);
}

TEST_CASE("the loop loosens only above the margin", "[unit][policy]") {
  // measured 0.95 > 0.9 + 0.03: loosen by gain * (0.95 - 0.9 - 0.03).
  const LoopStep s = loop_step(kLoop, 1.0, 0.9, 0.95, 0.95);
  CHECK(s.action == LoopAction::loosened);
  CHECK(s.target == Approx(0.95 - 0.5 * 0.02));
  // Inside [required, required + margin]: held, target unchanged.
  for (double measured : {0.9, 0.91, 0.929}) {
    INFO(measured);
    const LoopStep h = loop_step(kLoop, 1.0, 0.9, 0.95, measured);
    CHECK(h.action == LoopAction::held);
    CHECK(h.target == 0.95);
  }
}

TEST_CASE("the loop never loosens below required - floor", "[unit][policy]") {
  // 0.72 - 0.5 * (1.0 - 0.9 - 0.03) = 0.685: held at 0.9 - 0.2.
  const LoopStep s = loop_step(kLoop, 1.0, 0.9, 0.72, 1.0);
  CHECK(s.action == LoopAction::loosened);
  CHECK(s.target == Approx(0.7));
  // At the floor: held there.
  const LoopStep t = loop_step(kLoop, 1.0, 0.9, 0.7, 1.0);
  CHECK(t.action == LoopAction::held);
  CHECK(t.target == Approx(0.7));
  // A narrower floor from the configuration.
  LoopConfig narrow;
  narrow.floor = 0.05;
  CHECK(loop_step(narrow, 1.0, 0.9, 0.87, 1.0).target == Approx(0.85));
}

TEST_CASE("the loop holds for a process without a requirement", "[unit][policy]") {
  for (double measured : {0.0, 0.5, 1.0}) {
    const LoopStep s = loop_step(kLoop, 1.0, 0.0, 0.0, measured);
    CHECK(s.action == LoopAction::held);
    CHECK(s.target == 0.0);
  }
}

TEST_CASE("a target turns into the cheapest policy that meets it", "[unit][policy]") {
  const QocTable t = QocTable::paper_default();
  CHECK(*policy_for(t, 0) == Policy::keep());     // no requirement
  CHECK(*policy_for(t, 1.0) == Policy::keep());   // loss-free
  CHECK(*policy_for(t, 1.2) == Policy::keep());   // above loss-free (loop cap)
  auto p = policy_for(t, 0.96);
  REQUIRE(p.ok());
  CHECK(p->kind == PolicyKind::differential);
  CHECK(p->drop == Approx(0.01));
  // choose_policy itself refuses the impossible (the library's report_qoc).
  auto bad = control::choose_policy(t, 1.2);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::failed_precondition);
  // The public qocnet::choose_policy is the same function.
  CHECK(*qocnet::choose_policy(t, 0.9) == *control::choose_policy(t, 0.9));
}

TEST_CASE("Eq. 3: the effective policy is the least lossy of the stream's processes", "[unit][policy]") {
  using V = std::vector<Policy>;
  CHECK(control::effective_policy(V{}) == Policy::keep());
  CHECK(control::effective_policy(V{Policy::differential(0.02)}) == Policy::differential(0.02));
  CHECK(control::effective_policy(V{Policy::differential(0.04), Policy::differential(0.01), Policy::differential(0.03)}) ==
        Policy::differential(0.01));
  // One process keeps everything: the sensor must send everything.
  CHECK(control::effective_policy(V{Policy::differential(0.04), Policy::keep()}) == Policy::keep());
  // Kinds drop different datagrams first: nothing is common to drop.
  CHECK(control::effective_policy(V{Policy::differential(0.04), Policy::uniform(0.04)}) == Policy::keep());
  // A zero-rate policy drops nothing: keep.
  CHECK(control::effective_policy(V{Policy::frame_aware(0.0), Policy::frame_aware(0.2)}) == Policy::keep());
  // The library's Eq. 3 is this one.
  const V v{Policy::frame_aware(0.3), Policy::frame_aware(0.1)};
  CHECK(qocnet::effective_policy(v) == control::effective_policy(v));
}

TEST_CASE("the edge drops only what the sensor left to drop", "[unit][policy]") {
  // wanted 0.5 after the sensor dropped 0.2: the edge drops 1 - 0.5/0.8.
  const Policy share = edge_share(Policy::differential(0.5), Policy::differential(0.2));
  CHECK(share.kind == PolicyKind::differential);
  CHECK(share.drop == Approx(0.375));
  // End to end the process gets what it wants.
  CHECK((1 - 0.2) * (1 - share.drop) == Approx(1 - 0.5));
}

TEST_CASE("edge share: the sensor keeps everything", "[unit][policy]") {
  for (const Policy& wanted : {Policy::keep(), Policy::uniform(0.1), Policy::frame_aware(0.6)}) {
    CHECK(edge_share(wanted, Policy::keep()) == wanted);
    CHECK(edge_share(wanted, Policy::differential(0.0)) == wanted);
  }
}

TEST_CASE("edge share: other kinds, a sensor at or above the want, a sensor dropping all", "[unit][policy]") {
  // Another kind at the sensor: the edge adds nothing on top.
  CHECK(edge_share(Policy::uniform(0.3), Policy::differential(0.1)) == Policy::keep());
  CHECK(edge_share(Policy::keep(), Policy::differential(0.1)) == Policy::keep());
  // The sensor already drops as much as (or more than) the process wants.
  CHECK(edge_share(Policy::differential(0.1), Policy::differential(0.1)) == Policy::keep());
  CHECK(edge_share(Policy::differential(0.05), Policy::differential(0.1)) == Policy::keep());
  // The sensor drops everything: nothing is left for the edge to drop.
  CHECK(edge_share(Policy::differential(1.0), Policy::differential(1.0)) == Policy::keep());
  // Even a want of 1 against a sensor below 1 stays in [0, 1].
  const Policy all = edge_share(Policy::frame_aware(1.0), Policy::frame_aware(0.5));
  CHECK(all == Policy::frame_aware(1.0));
}
