// SPDX-License-Identifier: Apache-2.0
// Tenancy without a daemon: stream patterns, tenant rules and their
// configuration (test/daemon/tenancy_test.cpp has them with real namespaces).
#include <catch2/catch.hpp>

#include "control/peer_identity.hpp"
#include "daemon_config.hpp"
#include "tenancy.hpp"

using namespace qocnet;
using namespace qocnet::grpc_api;

namespace {

StreamId sid(const std::string& text) {
  auto s = parse_stream_id(text);
  REQUIRE(s);
  return *s;
}

StreamPattern pattern(const std::string& text) {
  auto p = parse_stream_pattern(text);
  INFO(text);
  REQUIRE(p);
  return *p;
}

control::PeerIdentity peer(const std::string& netns, const std::string& cgroup, uid_t uid) {
  control::PeerIdentity p;
  p.netns_name = netns;
  p.cgroup = cgroup;
  p.uid = uid;
  return p;
}

}  // namespace

TEST_CASE("stream patterns match streams by value, with * for any part", "[unit][tenancy]") {
  CHECK(matches(pattern("*"), sid("10.0.0.1:40000->:5000")));
  CHECK(matches(pattern("10.0.0.1:40000->:5000"), sid("10.0.0.1:40000->:5000")));
  CHECK_FALSE(matches(pattern("10.0.0.1:40000->:5000"), sid("10.0.0.1:40001->:5000")));
  CHECK_FALSE(matches(pattern("10.0.0.1:40000->:5000"), sid("10.0.0.1:40000->:5001")));
  CHECK_FALSE(matches(pattern("10.0.0.1:40000->:5000"), sid("10.0.0.2:40000->:5000")));
  CHECK(matches(pattern("10.0.0.1:*->:5000"), sid("10.0.0.1:1234->:5000")));
  CHECK_FALSE(matches(pattern("10.0.0.1:*->:5000"), sid("10.0.0.1:1234->:5001")));
  CHECK(matches(pattern("*:*->:5000"), sid("[fd00::7]:9->:5000")));
  CHECK(matches(pattern("10.0.0.1:40000->:*"), sid("10.0.0.1:40000->:6000")));
  // Addresses compare as values: other spellings of the same address match.
  CHECK(matches(pattern("[2001:db8::1]:*->:*"), sid("[2001:0db8:0:0::1]:1->:2")));
  CHECK(matches(pattern("10.0.0.1:*->:*"), sid("[::ffff:10.0.0.1]:1->:2")));
  for (const char* bad : {"", "10.0.0.1", "10.0.0.1:1:2", "10.0.0.1:x->:5000", "10.0.0.1:1->5000",
                          "10.0.0.300:1->:2", "10.0.0.1:70000->:1", "**"}) {
    INFO("'" << bad << "'");
    auto p = parse_stream_pattern(bad);
    REQUIRE_FALSE(p);
    CHECK(p.error().code == Errc::invalid_argument);
    CHECK_THAT(p.error().fix, Catch::Contains("SOURCE:PORT->:PORT"));
  }
}

TEST_CASE("a tenant rule admits a caller only if every key it gives holds", "[unit][tenancy]") {
  TenancyConfig c;
  TenantRule by_ns{"det", std::string("det-ns"), std::nullopt, std::nullopt, {}, {pattern("*")}};
  TenantRule by_cgroup{"k8s", std::nullopt, std::string("/kubepods.slice/pod-a"), std::nullopt, {}, {pattern("*")}};
  TenantRule both{"both", std::string("x"), std::nullopt, 1000u, {}, {pattern("*")}};
  c.tenants = {by_ns, by_cgroup, both};
  auto rule = [&](const control::PeerIdentity& p) -> std::string {
    const auto* r = match_tenant(c, p);
    return r ? r->name : "none";
  };
  CHECK(rule(peer("det-ns", "", 0)) == "det");
  CHECK(rule(peer("det-ns2", "", 0)) == "none");
  CHECK(rule(peer("", "", 0)) == "none");  // an unnamed namespace is no named one
  CHECK(rule(peer("", "/kubepods.slice/pod-a", 5)) == "k8s");
  CHECK(rule(peer("", "/kubepods.slice/pod-a/c1", 5)) == "k8s");
  CHECK(rule(peer("", "/kubepods.slice/pod-ab", 5)) == "none");  // whole components only
  CHECK(rule(peer("", "/kubepods.slice", 5)) == "none");
  CHECK(rule(peer("x", "", 1000)) == "both");
  CHECK(rule(peer("x", "", 0)) == "none");
  CHECK(rule(peer("y", "", 1000)) == "none");
  // A rule that says nothing of who admits nobody.
  TenancyConfig empty_rule;
  empty_rule.tenants = {TenantRule{"anyone", std::nullopt, std::nullopt, std::nullopt, {}, {pattern("*")}}};
  CHECK(match_tenant(empty_rule, peer("det-ns", "/", 0)) == nullptr);
  CHECK(match_tenant(TenancyConfig{}, peer("det-ns", "/", 0)) == nullptr);  // default deny
}

TEST_CASE("tenants, operators and the process socket in the daemon config", "[unit][tenancy][config]") {
  auto c = parse_daemon_config(
      "process_listen: unix:/run/q/p.sock\n"
      "operators: [ops, \"CN=admin\"]\n"
      "health: 127.0.0.1:8081\n"
      "tenants:\n"
      "  - {name: det, netns: det-ns, processes: [\"det*\"], streams: [\"10.0.0.1:*->:5000\"]}\n"
      "  - {name: k8s, cgroup: /kubepods.slice, uid: 1000, streams: [\"*\"]}\n",
      "cfg.yaml");
  REQUIRE(c);
  CHECK(c->process_listen == "unix:/run/q/p.sock");
  CHECK(c->health == "127.0.0.1:8081");
  CHECK(c->tenancy.operators == std::vector<std::string>{"ops", "CN=admin"});
  REQUIRE(c->tenancy.tenants.size() == 2);
  CHECK(c->tenancy.tenants[0].netns == "det-ns");
  CHECK(c->tenancy.tenants[0].processes == std::vector<std::string>{"det*"});
  CHECK(c->tenancy.tenants[1].cgroup == "/kubepods.slice");
  CHECK(c->tenancy.tenants[1].uid == 1000u);
  // The default: a process socket, and nobody may register.
  auto d = parse_daemon_config("", "x");
  REQUIRE(d);
  CHECK(d->process_listen == "unix:/run/qocnet/process/qocnet.sock");
  CHECK(d->tenancy.tenants.empty());

  struct Case {
    const char* yaml;
    const char* says;
  };
  const Case bad[] = {
      {"tenants: {name: a}\n", "tenants: is a mapping, not a list"},
      {"tenants:\n  - {netns: a, streams: [\"*\"]}\n", "tenants[0].name: is missing"},
      {"tenants:\n  - {name: a, streams: [\"*\"]}\n", "tenants[0]: says nothing of who the tenant is"},
      {"tenants:\n  - {name: a, netns: a}\n", "tenants[0].streams: is missing"},
      {"tenants:\n  - {name: a, netns: a, streams: []}\n", "tenants[0].streams: is empty"},
      {"tenants:\n  - {name: a, netns: a, streams: [\"10.0.0.1\"]}\n", "tenants[0].streams[0]"},
      {"tenants:\n  - {name: a, netns: ../x, streams: [\"*\"]}\n", "is not a namespace name"},
      {"tenants:\n  - {name: a, cgroup: kubepods, streams: [\"*\"]}\n", "is not an absolute cgroup path"},
      {"tenants:\n  - {name: a, uid: -1, streams: [\"*\"]}\n", "tenants[0].uid"},
      {"tenants:\n  - {name: a, netns: a, streams: [\"*\"], color: red}\n", "tenants[0].color: is not a known key"},
      {"operators: ops\n", "operators: is a single value, not a list"},
      {"operators: [\"\"]\n", "operators[0]"},
  };
  for (const auto& b : bad) {
    INFO(b.yaml);
    auto r = parse_daemon_config(b.yaml, "cfg.yaml");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().to_string(), Catch::Contains(b.says));
  }
  DaemonConfig same;
  same.process_listen = same.listen;
  CHECK_FALSE(validate(same));
  same.process_listen = "tcp:1.2.3.4:5";
  CHECK_FALSE(validate(same));
}
