// SPDX-License-Identifier: Apache-2.0
// The control core's registry (lib/control/registry.hpp): processes, token
// hashes and demands by stream, and their round trip through the daemon's
// state. No root.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "control/daemon_state.hpp"
#include "control/registry.hpp"

using namespace qocnet;
using namespace qocnet::control;

namespace {
StreamKey key(const std::string& source, std::uint16_t sport = 40000, std::uint16_t dport = 5000) {
  return stream_key(StreamId{source, sport, dport}).value();
}
}  // namespace

TEST_CASE("registry: one demand per process and stream, whatever the spelling", "[unit][registry]") {
  Registry r;
  CHECK_FALSE(r.contains("det"));
  Demand& d = r.demand("det", key("2001:db8::1"));
  d.required = 0.9;
  CHECK(r.contains("det"));
  // Another spelling of the same address is the same demand.
  REQUIRE(r.find_demand("det", key("2001:0db8:0:0::1")) != nullptr);
  CHECK(r.find_demand("det", key("2001:0db8:0:0::1"))->required == 0.9);
  CHECK(r.find_demand("det", key("2001:db8::1", 40000, 5001)) == nullptr);
  CHECK(r.find_demand("other", key("2001:db8::1")) == nullptr);
  r.demand("det", key("10.0.0.1"));
  CHECK(r.streams_of("det").size() == 2);
  r.drop_demand("det", key("::ffff:10.0.0.1"));
  CHECK(r.streams_of("det").size() == 1);
  CHECK(r.erase("det"));
  CHECK_FALSE(r.erase("det"));
  CHECK(r.size() == 0);
}

TEST_CASE("registry: which demand a measurement is about", "[unit][registry]") {
  Registry r;
  auto missing = r.demand_for("nobody", std::nullopt);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Errc::not_found);
  CHECK(missing.error().message == "no process 'nobody'");
  r.demand("det", key("10.0.0.1"));
  auto only = r.demand_for("det", std::nullopt);
  REQUIRE(only.ok());
  CHECK((*only)->stream == key("10.0.0.1"));
  auto other = r.demand_for("det", key("10.0.0.2"));
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().code == Errc::not_found);
  CHECK(other.error().message.find("does not consume stream 10.0.0.2:40000->:5000") != std::string::npos);
  r.demand("det", key("10.0.0.2"));
  auto two = r.demand_for("det", std::nullopt);
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().code == Errc::invalid_argument);
  CHECK(two.error().message.find("consumes 2 streams") != std::string::npos);
  CHECK(r.demand_for("det", key("::ffff:10.0.0.2")).ok());
}

TEST_CASE("registry: tokens are checked against their hash only", "[unit][registry]") {
  Registry r;
  r.add("op-added");
  const std::string token = r.issue_token("det");
  CHECK(token.size() == 32);
  CHECK(r.find("det")->registered());
  CHECK(r.find("det")->token_hash != token);  // never the token itself
  CHECK(r.check_token("det", token).ok());
  auto wrong = r.check_token("det", token + "x");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == Errc::permission_denied);
  // An operator-added process has no token: nothing matches.
  CHECK(r.check_token("op-added", "").error().code == Errc::permission_denied);
  // A name nobody registered gets the answer a wrong token gets: a caller
  // without the token learns nothing of which names exist.
  const auto unknown = r.check_token("nobody", token + "x");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Errc::permission_denied);
  const auto known = r.check_token("det", token + "x");
  CHECK(unknown.error().message == "the token is not that of a registered process 'nobody'");
  CHECK(known.error().message == "the token is not that of a registered process 'det'");
  CHECK(unknown.error().fix == known.error().fix);
  CHECK(r.check_token("nobody", token).error().code == Errc::permission_denied);
  // A fresh token replaces the old one.
  const std::string again = r.issue_token("det");
  CHECK(again != token);
  CHECK_FALSE(r.check_token("det", token).ok());
  CHECK(r.check_token("det", again).ok());
}

TEST_CASE("registry: registered processes survive the daemon's state, others not", "[unit][registry]") {
  Registry before;
  const std::string token = before.issue_token("det");
  Demand& d = before.demand("det", key("2001:db8::1"));
  d.required = 0.9;
  d.target = 0.95;
  d.wanted = Policy::differential(0.01);
  before.demand("op-added", key("10.0.0.1")).wanted = Policy::uniform(0.2);
  DaemonState state;
  before.save(state);
  REQUIRE(state.processes.size() == 1);  // the operator's process has no token to keep
  REQUIRE(state.processes.at("det").demands.size() == 1);
  CHECK(state.processes.at("det").demands[0].stream == "[2001:db8::1]:40000->:5000");

  Registry after;
  after.add("det");  // the datapath still has it; "gone" does not
  state.processes["gone"] = state.processes.at("det");
  state.processes["det"].demands.push_back(StoredDemand{"not a stream", 1, 1, "keep"});
  after.restore(state);
  CHECK_FALSE(after.contains("gone"));
  CHECK(after.check_token("det", token).ok());
  const Demand* back = after.find_demand("det", key("2001:db8::1"));
  REQUIRE(back != nullptr);
  CHECK(back->required == 0.9);
  CHECK(back->target == 0.95);
  CHECK(back->wanted == Policy::differential(0.01));
  CHECK(after.streams_of("det").size() == 1);  // the damaged entry is skipped
}

TEST_CASE("qocnetd's state file reads back exactly what was written, whatever the names and numbers",
          "[unit][registry][state]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("qocnet-ds-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "state.yaml";
  qocnet::control::DaemonState s;
  s.epoch = (std::uint64_t{1} << 62) + 12345;
  const std::string hash(64, 'a');
  const std::vector<std::string> names{"detector", "null", "~", "1", "true", "a:b", "q\"uote", "back\\slash",
                                       "tab\there", "- dash", "{brace}", "#hash"};
  const std::vector<double> values{0.0, -0.0, 1.0 / 3.0, 0.99, 5e-324, 1e-310, 0.1 + 0.2, 1.0};
  std::size_t k = 0;
  for (const auto& n : names) {
    auto& p = s.processes[n];
    p.token_hash = hash;
    for (int i = 0; i < static_cast<int>(k % 3); ++i)
      p.demands.push_back(qocnet::control::StoredDemand{"10.0.0." + std::to_string(i) + ":4000->:5000",
                                                        values[k % values.size()], values[(k + 3) % values.size()],
                                                        i == 0 ? "differential(0.05)" : "keep"});
    ++k;
  }
  REQUIRE(qocnet::control::save_daemon_state(file, s, false));
  auto back = qocnet::control::load_daemon_state(file);
  INFO(qocnet::control::format_daemon_state(s));
  REQUIRE(back);
  CHECK(back->epoch == s.epoch);
  REQUIRE(back->processes.size() == s.processes.size());
  for (const auto& [name, p] : s.processes) {
    INFO(name);
    REQUIRE(back->processes.count(name) == 1);
    const auto& q = back->processes.at(name);
    CHECK(q.token_hash == p.token_hash);
    REQUIRE(q.demands.size() == p.demands.size());
    for (std::size_t i = 0; i < p.demands.size(); ++i) {
      CHECK(q.demands[i].stream == p.demands[i].stream);
      CHECK(std::memcmp(&q.demands[i].required, &p.demands[i].required, sizeof(double)) == 0);
      CHECK(std::memcmp(&q.demands[i].target, &p.demands[i].target, sizeof(double)) == 0);
      CHECK(q.demands[i].wanted == p.demands[i].wanted);
    }
  }
  fs::remove_all(dir);
}
