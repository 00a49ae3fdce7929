// SPDX-License-Identifier: Apache-2.0
// frame_aware's drop order (DropOrder) through every layer that carries a
// policy without the kernel: its text form, validate(), the gRPC message, the
// pinned edge's state file and the composition of a stream's policies.
#include <catch2/catch.hpp>

#include "../support/check.hpp"
#include "control/policy_engine.hpp"
#include "convert.hpp"
#include "qocnet/qoc.hpp"
#include "state_file.hpp"

using namespace qocnet;
using namespace qocnet::detail;
using Catch::Detail::Approx;

TEST_CASE("drop orders print and parse", "[unit][qoc][order]") {
  for (DropOrder o : {DropOrder::disp, DropOrder::tail, DropOrder::thin}) {
    auto back = parse_drop_order(to_string(o));
    REQUIRE_OK(back);
    CHECK(*back == o);
  }
  CHECK(std::string(to_string(DropOrder::tail)) == "tail");
  auto bad = parse_drop_order("gop");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::invalid_argument);
  CHECK_THAT(bad.error().message, Catch::Contains("'gop'"));
  CHECK_THAT(bad.error().fix, Catch::Contains("disp, tail or thin"));
}

TEST_CASE("frame_aware's text form carries its order, disp as before", "[unit][qoc][order]") {
  CHECK(to_string(Policy::frame_aware(0.2)) == "frame_aware(0.2)");
  CHECK(to_string(Policy::frame_aware(0.2, DropOrder::disp)) == "frame_aware(0.2)");
  CHECK(to_string(Policy::frame_aware(0.2, DropOrder::tail)) == "frame_aware(0.2,tail)");
  CHECK(to_string(Policy::frame_aware(0.25, DropOrder::thin)) == "frame_aware(0.25,thin)");
  struct Case { const char* text; Policy want; };
  for (const auto& c : {Case{"frame_aware(0.2)", Policy::frame_aware(0.2)},
                        Case{"frame_aware(0.2,tail)", Policy::frame_aware(0.2, DropOrder::tail)},
                        Case{"frame_aware(0.2, thin)", Policy::frame_aware(0.2, DropOrder::thin)},
                        Case{"frame_aware(0.2,  tail)", Policy::frame_aware(0.2, DropOrder::tail)},
                        Case{"frame_aware(0.2,disp)", Policy::frame_aware(0.2)}}) {
    INFO(c.text);
    auto p = parse_policy(c.text);
    REQUIRE_OK(p);
    CHECK(*p == c.want);
    CHECK(parse_policy(to_string(*p)).value() == *p);
  }
  // The order is part of the policy.
  CHECK_FALSE(Policy::frame_aware(0.2, DropOrder::tail) == Policy::frame_aware(0.2));
  CHECK_FALSE(Policy::frame_aware(0.2, DropOrder::tail) == Policy::frame_aware(0.2, DropOrder::thin));
  struct Bad { const char* text; const char* says; };
  for (const auto& b : {Bad{"frame_aware(0.2,)", "unknown drop order ''"},
                        Bad{"frame_aware(0.2,gop)", "unknown drop order 'gop'"},
                        Bad{"frame_aware(0.2,tail,thin)", "unknown drop order 'tail,thin'"},
                        Bad{"frame_aware(,tail)", "is not a number"},
                        Bad{"frame_aware(1.5,tail)", "outside [0, 1]"},
                        Bad{"uniform(0.1,tail)", "frame_aware's, not uniform's"},
                        Bad{"differential(0.1,thin)", "frame_aware's, not differential's"}}) {
    INFO(b.text);
    auto r = parse_policy(b.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(b.says));
  }
}

TEST_CASE("validate refuses an order on another kind than frame_aware", "[unit][qoc][order]") {
  Policy p = Policy::uniform(0.1);
  p.order = DropOrder::tail;
  auto v = validate(p);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().code == Errc::invalid_argument);
  CHECK_THAT(v.error().message, Catch::Contains("drop order tail is frame_aware's, not uniform's"));
  CHECK_THAT(v.error().fix, Catch::Contains("frame_aware(0.2,tail)"));
  Policy k = Policy::keep();
  k.order = DropOrder::thin;
  CHECK_FALSE(validate(k).ok());
  Policy wild = Policy::frame_aware(0.1);
  wild.order = static_cast<DropOrder>(7);
  auto w = validate(wild);
  REQUIRE_FALSE(w.ok());
  CHECK_THAT(w.error().message, Catch::Contains("drop order 7 is not an order"));
  CHECK(validate(Policy::frame_aware(0.1, DropOrder::thin)).ok());
}

TEST_CASE("a policy's order reaches protobuf and back, an unknown one refused by field", "[unit][grpc][order]") {
  for (DropOrder o : {DropOrder::disp, DropOrder::tail, DropOrder::thin}) {
    const Policy p = Policy::frame_aware(0.3, o);
    v1::Policy m;
    grpc_api::to_proto(p, &m);
    v1::Policy parsed;
    REQUIRE(parsed.ParseFromString(m.SerializeAsString()));
    auto back = grpc_api::from_proto(parsed, "policy");
    REQUIRE_OK(back);
    CHECK(*back == p);
  }
  v1::Policy tail;
  grpc_api::to_proto(Policy::frame_aware(0.3, DropOrder::tail), &tail);
  CHECK(tail.order() == v1::DROP_ORDER_TAIL);
  // A message of a client that knows no orders reads as disp.
  v1::Policy old;
  old.set_kind(v1::POLICY_KIND_FRAME_AWARE);
  old.set_drop(0.4);
  CHECK(grpc_api::from_proto(old, "policy").value() == Policy::frame_aware(0.4));
  // An order this daemon does not know.
  v1::Policy unknown = old;
  unknown.set_order(static_cast<v1::DropOrder>(9));
  auto u = grpc_api::from_proto(unknown, "request.policy");
  REQUIRE_FALSE(u.ok());
  CHECK(u.error().code == Errc::invalid_argument);
  CHECK_THAT(u.error().message, Catch::Contains("request.policy.order"));
  CHECK_THAT(u.error().message, Catch::Contains("9"));
  // An order on another kind.
  v1::Policy uni;
  uni.set_kind(v1::POLICY_KIND_UNIFORM);
  uni.set_drop(0.1);
  uni.set_order(v1::DROP_ORDER_THIN);
  auto w = grpc_api::from_proto(uni, "policy");
  REQUIRE_FALSE(w.ok());
  CHECK(w.error().code == Errc::invalid_argument);
  CHECK_THAT(w.error().message, Catch::Contains("frame_aware's, not uniform's"));
}

namespace {

SavedState state_with(const Policy& p) {
  SavedState s;
  s.pin_dir = "/sys/fs/bpf/qocnet/edge";
  s.processes = {{{"proc0", "e1", "02:71:00:00:01:01", "10.77.1.1", 6000}, 0, 3}};
  s.streams = {{{"10.77.0.1", 40000, 5000}, {{"proc0", p}}}};
  return s;
}

}  // namespace

TEST_CASE("the pinned state file keeps an order, and an old file reads as disp", "[unit][state][order]") {
  for (DropOrder o : {DropOrder::tail, DropOrder::thin}) {
    const std::string text = format_state(state_with(Policy::frame_aware(0.3, o)));
    CHECK_THAT(text, Catch::Contains(std::string("order: ") + to_string(o)));
    auto r = parse_state(text);
    REQUIRE_OK(r);
    CHECK(r->streams[0].targets[0].policy == Policy::frame_aware(0.3, o));
    CHECK(format_state(*r) == text);
  }
  // disp is not written: a file is what it was before orders existed.
  const std::string disp = format_state(state_with(Policy::frame_aware(0.3)));
  CHECK(disp.find("order") == std::string::npos);
  REQUIRE(parse_state(disp).value().streams[0].targets[0].policy == Policy::frame_aware(0.3));
  // Refused: an unknown order, an order on another kind (each named).
  auto body_of = [](std::string t) { return t.substr(0, t.rfind("checksum:")); };
  struct Bad { std::string from, to, says; };
  const std::string tail = body_of(format_state(state_with(Policy::frame_aware(0.3, DropOrder::tail))));
  for (const auto& b : {Bad{"order: tail", "order: gop", "unknown drop order 'gop'"},
                        Bad{"policy: frame_aware", "policy: uniform", "frame_aware's, not uniform's"},
                        Bad{"order: tail", "order: [tail]", ".order"}}) {
    INFO(b.to);
    std::string body = tail;
    const auto at = body.find(b.from);
    REQUIRE(at != std::string::npos);
    body.replace(at, b.from.size(), b.to);
    auto r = parse_state(seal_state(body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::failed_precondition);
    CHECK_THAT(r.error().message, Catch::Contains(b.says));
    CHECK_THAT(r.error().message, Catch::Contains("targets[0]"));
  }
}

TEST_CASE("frame_aware policies of different orders do not compose", "[unit][policy][order]") {
  const Policy disp = Policy::frame_aware(0.3);
  const Policy tail = Policy::frame_aware(0.4, DropOrder::tail);
  const Policy tail2 = Policy::frame_aware(0.2, DropOrder::tail);
  // Eq. 3: different orders drop different frames first: the sensor keeps.
  CHECK(effective_policy({disp, tail}) == Policy::keep());
  CHECK(effective_policy({tail, Policy::frame_aware(0.2, DropOrder::thin)}) == Policy::keep());
  // One order: the least lossy, its order kept.
  CHECK(effective_policy({tail, tail2}) == tail2);
  // The edge's share: only on the sensor's order.
  CHECK(control::edge_share(tail, disp) == Policy::keep());
  const Policy share = control::edge_share(tail, tail2);
  CHECK(share.kind == PolicyKind::frame_aware);
  CHECK(share.order == DropOrder::tail);
  CHECK(share.drop == Approx(1.0 - 0.6 / 0.8));
}
