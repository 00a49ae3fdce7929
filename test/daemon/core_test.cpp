// SPDX-License-Identifier: Apache-2.0
// qocnetd's control core seen from outside: the QoC table a pinned edge
// keeps is the one qocnetd uses after a restart; many policy and stats
// watchers at once, each getting its messages, none holding a thread.
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "../support/daemon.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;

TEST_CASE("a pinned edge's QoC table stays in force across a qocnetd restart", "[daemon][state]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  PinDir pins;
  const std::vector<std::string> args{"--pin-dir", pins.path, "--keep-datapath", "--port", "e0"};
  {
    Daemon first((*t)->edge, args, "q1");
    REQUIRE(first.wait_serving());
    v1::SetQocTableRequest tab;
    tab.set_yaml("metric: counting accuracy\nlossless: 1\npolicies:\n  uniform: {loss: [0.1, 0.2], qoc: [0.9, 0.8]}\n");
    v1::SetQocTableResponse tr;
    REQUIRE_GRPC_OK(first.control()->SetQocTable(ctx().get(), tab, &tr));
    REQUIRE(first.stop(SIGTERM) == 0);
  }
  Daemon second((*t)->edge, args, "q2");
  REQUIRE(second.wait_serving());
  INFO(second.log());
  v1::GetQocTableResponse got;
  REQUIRE_GRPC_OK(second.control()->GetQocTable(ctx().get(), {}, &got));
  // The table the edge kept, not the paper's default.
  CHECK(got.table().metric() == "counting accuracy");
  CHECK(got.table().curves_size() == 1);
  CHECK(second.stop(SIGTERM) == 0);
}

TEST_CASE("stats watchers share the executor: each gets its count of samples, numbered", "[daemon][watch]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  INFO(d.log());
  constexpr int kWatchers = 16;
  std::vector<std::thread> readers;
  std::vector<std::vector<std::uint64_t>> seqs(kWatchers);
  std::vector<::grpc::Status> ends(kWatchers);
  for (int i = 0; i < kWatchers; ++i)
    readers.emplace_back([&, i] {
      ::grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      v1::WatchStatsRequest w;
      w.set_interval_ms(100);
      w.set_count(3);
      auto reader = d.control()->WatchStats(&c, w);
      v1::StatsUpdate u;
      while (reader->Read(&u)) seqs[i].push_back(u.sequence());
      ends[i] = reader->Finish();
    });
  for (auto& r : readers) r.join();
  for (int i = 0; i < kWatchers; ++i) {
    INFO("watcher " << i << ": " << ends[i].error_message());
    CHECK(ends[i].ok());
    CHECK(seqs[i] == std::vector<std::uint64_t>{1, 2, 3});
  }
  // Other calls are served meanwhile and after.
  v1::GetStatusResponse status;
  REQUIRE_GRPC_OK(d.control()->GetStatus(ctx().get(), {}, &status));
  CHECK(d.stop(SIGTERM) == 0);
}

TEST_CASE("a requirement reported just before kill -9 is what qocnetd knows after the restart", "[daemon][restart]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  PinDir pins;
  const std::string state = "/tmp/" + testbed::unique_name("state") + ".yaml";
  const std::vector<std::string> args{"--pin-dir", pins.path, "--keep-datapath", "--port", "e0", "--state-file", state};
  std::string token;
  {
    Daemon first((*t)->edge, args, "k1");
    REQUIRE(first.wait_serving());
    auto r = register_from((*t)->procs[0], first.process_address(), registration(0, stream_msg(), 0.9));
    REQUIRE_GRPC_OK(r.status);
    token = r.response.token();
    v1::ReportRequirementRequest rq;
    rq.set_name("proc0");
    rq.set_required(0.99);
    v1::ReportRequirementResponse rr;
    REQUIRE_GRPC_OK(first.qoc()->ReportRequirement(ctx(token).get(), rq, &rr));
    first.stop(SIGKILL);  // right after the call returned
  }
  Daemon second((*t)->edge, args, "k2");
  REQUIRE(second.wait_serving());
  INFO(second.log());
  ::grpc::ClientContext wc;
  wc.AddMetadata("authorization", "Bearer " + token);
  wc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::WatchPolicyRequest w;
  w.set_name("proc0");
  auto reader = second.qoc()->WatchPolicy(&wc, w);
  v1::PolicyUpdate u;
  if (!reader->Read(&u)) FAIL("WatchPolicy ended: " << status_text(reader->Finish()));
  CHECK(u.reason() == "current");
  CHECK(u.policy().required() == Catch::Detail::Approx(0.99));  // not the 0.9 it registered with
  wc.TryCancel();
  while (reader->Read(&u)) {
  }
  CHECK(second.stop(SIGTERM) == 0);
  fs::remove(state);
}
