// SPDX-License-Identifier: Apache-2.0
// The control core's machinery without a datapath (no root): the executor
// runs everything posted on its one thread, in order; the watch hubs fan out
// without a thread per subscriber and drop subscribers that are gone; a core
// whose datapath is not up answers unavailable at once, from any thread.
#include <catch2/catch.hpp>

#include <future>
#include <set>
#include <thread>
#include <vector>

#include "control/core.hpp"
#include "control/executor.hpp"
#include "control/watch_hub.hpp"

using namespace qocnet;
using namespace qocnet::control;

namespace {

template <class T>
class Recorder final : public Subscriber<T> {
 public:
  bool deliver(const T& m) override {
    if (gone) return false;
    got.push_back(m);
    return true;
  }
  void close(const Status& st) override {
    closed = true;
    if (!st) error = st.error().message;
  }
  std::vector<T> got;
  bool gone = false;
  bool closed = false;
  std::string error;
};

void drain(Executor& ex) {
  std::promise<void> p;
  ex.post([&] { p.set_value(); });
  p.get_future().wait();
}

}  // namespace

TEST_CASE("the executor runs what is posted on one thread, in order", "[unit][control]") {
  Executor ex;
  std::vector<int> order;
  std::set<std::thread::id> threads;
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t)
    posters.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) ex.post([&, t, i] {
          order.push_back(t * 1000 + i);
          threads.insert(std::this_thread::get_id());
        });
    });
  for (auto& p : posters) p.join();
  drain(ex);
  CHECK(order.size() == 400);
  CHECK(threads.size() == 1);
  CHECK(*threads.begin() != std::this_thread::get_id());
  // Each poster's tasks ran in the order it posted them.
  for (int t = 0; t < 4; ++t) {
    int last = -1;
    for (int v : order)
      if (v / 1000 == t) {
        CHECK(v % 1000 == last + 1);
        last = v % 1000;
      }
  }
  bool here = false;
  ex.post([&] { here = ex.here(); });
  drain(ex);
  CHECK(here);
  CHECK_FALSE(ex.here());
  ex.stop();
  ex.stop();  // idempotent
}

TEST_CASE("fan-out: each topic's subscribers get its messages, gone ones are dropped", "[unit][control]") {
  FanOut<int> hub;
  auto a = std::make_shared<Recorder<int>>();
  auto b = std::make_shared<Recorder<int>>();
  auto c = std::make_shared<Recorder<int>>();
  hub.subscribe("p1", a);
  hub.subscribe("p1", b);
  hub.subscribe("p2", c);
  hub.publish("p1", 1);
  hub.publish("p2", 2);
  CHECK(a->got == std::vector<int>{1});
  CHECK(b->got == std::vector<int>{1});
  CHECK(c->got == std::vector<int>{2});
  b->gone = true;  // its call ended
  hub.publish("p1", 3);
  CHECK(hub.size() == 2);
  CHECK(a->got == std::vector<int>{1, 3});
  hub.unsubscribe(a.get());
  hub.publish("p1", 4);
  CHECK(a->got == std::vector<int>{1, 3});
  hub.close("p2", make_error(Errc::not_found, "process 'p2' was removed"));
  CHECK(c->closed);
  CHECK(c->error == "process 'p2' was removed");
  CHECK(hub.size() == 0);
}

TEST_CASE("samples: the first at once, numbered, `count` of them, then the stream ends", "[unit][control]") {
  Executor ex;
  int taken = 0;
  std::unique_ptr<SampleHub<int>> hub;
  ex.post([&] { hub = std::make_unique<SampleHub<int>>(ex.context(), [&]() -> Result<int> { return ++taken; }); });
  auto three = std::make_shared<Recorder<int>>();
  auto endless = std::make_shared<Recorder<int>>();
  std::promise<void> done;
  std::vector<std::uint64_t> seqs;
  ex.post([&] {
    hub->subscribe(three, std::chrono::milliseconds(1), 3, [&](int&, std::uint64_t seq) { seqs.push_back(seq); });
    hub->subscribe(endless, std::chrono::hours(1), 0, {});
  });
  // Wait (without timing anything) until the three samples are out.
  for (;;) {
    std::promise<bool> p;
    ex.post([&] { p.set_value(three->closed); });
    if (p.get_future().get()) break;
    std::this_thread::yield();
  }
  ex.post([&] {
    CHECK(three->got.size() == 3);
    CHECK(three->error.empty());  // ended ok
    CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3});
    CHECK(endless->got.size() == 1);  // the first at once, the next in an hour
    CHECK(hub->size() == 1);
    hub->unsubscribe(endless.get());
    CHECK(hub->size() == 0);
    hub.reset();
    done.set_value();
  });
  done.get_future().wait();
}

TEST_CASE("samples: a failing sample ends the stream with its error", "[unit][control]") {
  Executor ex;
  auto sub = std::make_shared<Recorder<int>>();
  std::promise<void> done;
  ex.post([&] {
    SampleHub<int> hub(ex.context(), []() -> Result<int> {
      return make_error(Errc::unavailable, "the datapath is gone", "");
    });
    hub.subscribe(sub, std::chrono::seconds(1), 0, {});
    CHECK(sub->closed);
    CHECK(sub->error == "the datapath is gone");
    CHECK(hub.size() == 0);
    done.set_value();
  });
  done.get_future().wait();
}

TEST_CASE("a core whose datapath is not up answers unavailable at once", "[unit][control]") {
  ControlCore core(CoreOptions{}, nullptr);  // never started: no Edge, no root needed
  auto ready = core.ready();
  REQUIRE_FALSE(ready.ok());
  CHECK(ready.error().code == Errc::unavailable);
  CHECK(ready.error().message.find("still compiling") != std::string::npos);
  CHECK(core.check_token("det", "0123").error().code == Errc::unavailable);
  std::promise<Status> attached;
  core.attach_port("e0", [&](Status st) { attached.set_value(std::move(st)); });
  auto st = attached.get_future().get();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::unavailable);
  std::promise<Result<Registration>> registered;
  core.register_process(ProcessSpec{"det", "e1", "02:00:00:00:00:01", "", 0}, {}, 0.9,
                        [&](Result<Registration> r) { registered.set_value(std::move(r)); });
  auto r = registered.get_future().get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
  // A policy watch on a core that is not up ends at once with the reason.
  auto sub = std::make_shared<Recorder<PolicyChange>>();
  std::promise<Status> watched;
  core.watch_policy("det", sub, [&](Status s) { watched.set_value(std::move(s)); });
  CHECK(watched.get_future().get().error().code == Errc::unavailable);
  core.stop();
  core.stop();
}
