// SPDX-License-Identifier: Apache-2.0
// The gRPC SensorLink (lib/grpc/sensor_pusher) against a stub sensor agent
// on a Unix socket (no root): a failed order is retried until the agent
// takes it, with the edge's epoch; a newer order for a stream replaces one
// not yet sent; a stale refusal asks for a new epoch and is sent again; a
// retired link sends what is queued once and refuses more; after stop()
// nothing more is reported.
#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "qocnet/v1/sensor.grpc.pb.h"
#include "sensor_pusher.hpp"

using namespace qocnet;
using namespace qocnet::grpc_api;

namespace {

// An agent that refuses its first `fail` calls (UNAVAILABLE) and records
// every order it takes.
class StubAgent final : public v1::SensorService::Service {
 public:
  ::grpc::Status SetStreamPolicy(::grpc::ServerContext*, const v1::SetStreamPolicyRequest* req,
                                 v1::SetStreamPolicyResponse*) override {
    std::lock_guard lock(mu);
    ++calls;
    if (fail > 0) {
      --fail;
      return {::grpc::StatusCode::UNAVAILABLE, "not yet"};
    }
    if (stale > 0) {
      --stale;
      return {::grpc::StatusCode::FAILED_PRECONDITION, "order is older than the last applied to the stream"};
    }
    taken.push_back(*req);
    cv.notify_all();
    return ::grpc::Status::OK;
  }
  std::mutex mu;
  std::condition_variable cv;
  int fail = 0, stale = 0, calls = 0;
  std::vector<v1::SetStreamPolicyRequest> taken;
};

struct Agent {
  Agent() {
    path = std::filesystem::temp_directory_path() / ("qn-link-" + std::to_string(::getpid()) + ".sock");
    std::filesystem::remove(path);
    ::grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + path.string(), ::grpc::InsecureServerCredentials());
    b.RegisterService(&stub);
    server = b.BuildAndStart();
    REQUIRE(server);
  }
  ~Agent() {
    server->Shutdown();
    std::filesystem::remove(path);
  }
  std::string address() const { return "unix:" + path.string(); }
  std::filesystem::path path;
  StubAgent stub;
  std::unique_ptr<::grpc::Server> server;
};

// What the link reported, in order.
struct Reports {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<control::SensorPush, Status>> results;
  int stale = 0;
  std::atomic<std::uint64_t> epoch{7};
  control::SensorEvents events() {
    control::SensorEvents e;
    e.epoch = [this] { return epoch.load(); };
    e.result = [this](const control::SensorPush& p, const Status& s) {
      std::lock_guard lock(mu);
      results.emplace_back(p, s);
      cv.notify_all();
    };
    e.stale = [this] {
      std::lock_guard lock(mu);
      ++stale;
      epoch = epoch + 1;
    };
    return e;
  }
  // Waits (no time limit is checked: the test's own timeout guards it)
  // until some report is a success.
  std::size_t wait_ok() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] {
      for (const auto& r : results)
        if (r.second.ok()) return true;
      return false;
    });
    return results.size();
  }
};

const StreamId kStream{"10.0.0.1", 40000, 5000};
const StreamId kOther{"10.0.0.2", 40000, 5000};

}  // namespace

TEST_CASE("sensor link: a failed order is retried until the agent takes it", "[unit][sensor_link]") {
  Agent agent;
  agent.stub.fail = 2;
  Reports reports;
  auto link = SensorPusher::factory({}, std::chrono::milliseconds(2000))(
      control::SensorConfig{"cam", agent.address(), {kStream}}, reports.events());
  link->push(control::SensorPush{kStream, Policy::differential(0.2), 5});
  const std::size_t n = reports.wait_ok();
  CHECK(n == 3);  // two failures reported, then the success
  {
    std::lock_guard lock(reports.mu);
    CHECK_FALSE(reports.results[0].second.ok());
    CHECK(reports.results[0].second.error().code == Errc::unavailable);
    CHECK(reports.results[0].second.error().message.find("sensor 'cam'") != std::string::npos);
    CHECK(reports.results[2].first.policy == Policy::differential(0.2));
  }
  std::lock_guard lock(agent.stub.mu);
  REQUIRE(agent.stub.taken.size() == 1);
  CHECK(agent.stub.taken[0].epoch() == 7);
  CHECK(agent.stub.taken[0].generation() == 5);
  while (link->pending() != 0) std::this_thread::yield();  // nothing is left to send
}

TEST_CASE("sensor link: a newer order replaces one not yet sent, and a stale refusal moves the epoch",
          "[unit][sensor_link]") {
  Agent agent;
  agent.stub.fail = 1;  // holds the first order in the retry
  agent.stub.stale = 1;
  Reports reports;
  auto link = SensorPusher::factory({}, std::chrono::milliseconds(2000))(
      control::SensorConfig{"cam", agent.address(), {kStream, kOther}}, reports.events());
  link->push(control::SensorPush{kStream, Policy::differential(0.1), 1});
  link->push(control::SensorPush{kStream, Policy::differential(0.3), 2});  // replaces 0.1 unless under way
  link->push(control::SensorPush{kOther, Policy::uniform(0.05), 3});
  // Wait until both streams' latest orders are taken.
  for (;;) {
    std::unique_lock lock(agent.stub.mu);
    bool both = false;
    agent.stub.cv.wait(lock, [&] {
      bool a = false, b = false;
      for (const auto& t : agent.stub.taken) {
        if (t.stream().source() == "10.0.0.1" && t.generation() == 2) a = true;
        if (t.stream().source() == "10.0.0.2") b = true;
      }
      both = a && b;
      return both;
    });
    if (both) break;
  }
  std::lock_guard lock(agent.stub.mu);
  // Order 1 was either under way (refused, then replaced) or replaced at once:
  // it never reaches the agent after order 2.
  for (const auto& t : agent.stub.taken)
    if (t.stream().source() == "10.0.0.1") CHECK(t.generation() == 2);
  std::lock_guard rl(reports.mu);
  CHECK(reports.stale == 1);
  CHECK(agent.stub.taken.back().epoch() == 8);  // sent again in the new epoch
}

TEST_CASE("sensor link: retired, it sends once and takes no more, and stopped, it reports nothing more", "[unit][sensor_link]") {
  Agent agent;
  Reports reports;
  auto make = SensorPusher::factory({}, std::chrono::milliseconds(2000));
  {
    auto link = make(control::SensorConfig{"cam", agent.address(), {kStream}}, reports.events());
    link->push(control::SensorPush{kStream, Policy::keep(), 9});
    link->retire();
    link->push(control::SensorPush{kOther, Policy::keep(), 10});  // refused once retiring
    for (;;) {
      std::unique_lock lock(agent.stub.mu);
      if (agent.stub.cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return !agent.stub.taken.empty(); }))
        break;
    }
    while (link->pending() != 0) std::this_thread::yield();
  }
  {
    std::lock_guard lock(agent.stub.mu);
    CHECK(agent.stub.taken.size() == 1);
    CHECK(agent.stub.taken[0].generation() == 9);
  }
  {
    // Orders taken once retiring report nothing; one already under way may.
    std::lock_guard lock(reports.mu);
    CHECK(reports.results.size() <= 1);
    for (const auto& r : reports.results) CHECK(r.first.generation == 9);
    reports.results.clear();
  }
  // An agent that keeps refusing: stop() ends the retries, and no report follows.
  agent.stub.fail = 1000;
  auto link = make(control::SensorConfig{"cam", agent.address(), {kStream}}, reports.events());
  link->push(control::SensorPush{kStream, Policy::differential(0.1), 11});
  link->stop();
  const std::size_t after_stop = [&] {
    std::lock_guard lock(reports.mu);
    return reports.results.size();
  }();
  link.reset();
  std::lock_guard lock(reports.mu);
  CHECK(reports.results.size() == after_stop);
  CHECK(after_stop <= 1);  // at most a report of the call under way before stop() returned
}
