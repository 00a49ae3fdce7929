// SPDX-License-Identifier: Apache-2.0
// A process that leaves a stream (taken off its targets, or removed) keeps
// its final count at the edge: Edge::departed_stats says exactly how many
// datagrams the datapath sent it, every one of them counted, while the
// stream flows at full rate from another thread. The demo compares what a
// process received with this count, exactly.
#include <sys/socket.h>

#include <atomic>
#include <numeric>
#include <thread>

#include "../support/edge_fixture.hpp"

using namespace qocnet;
using namespace qocnet::test;

namespace {

constexpr std::uint16_t kSport = 42500;
constexpr std::uint16_t kDport = 5000;

// Reads a socket until stopped (and then what is left), counting datagrams:
// nothing piles up in the socket, so nothing the edge sent is lost there.
struct Reader {
  explicit Reader(const testbed::UdpSocket& s) : fd(s.fd()) {
    const int big = 16 << 20;  // a burst must not overflow the socket: that loss is not the edge's
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    t = std::thread([this] { run(); });
  }
  ~Reader() { stop(); }
  void run() {
    char buf[2048];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n >= 0) {
        got.fetch_add(1);
        continue;
      }
      if (done.load()) return;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  std::uint64_t stop() {
    if (t.joinable()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // in flight through the veths
      done = true;
      t.join();
    }
    return got.load();
  }
  int fd;
  std::atomic<std::uint64_t> got{0};
  std::atomic<bool> done{false};
  std::thread t;
};

std::uint64_t sum(const std::uint64_t (&a)[4]) { return std::accumulate(std::begin(a), std::end(a), std::uint64_t{0}); }

}  // namespace

TEST_CASE("a process that leaves a stream keeps its final count, every datagram sent to it counted",
          "[kernel][replication][departed]") {
  EdgeFixture fx(2, {}, true);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  std::vector<testbed::UdpSocket> rx;
  for (int i = 0; i < 2; ++i) {
    const auto port = static_cast<std::uint16_t>(6000 + i);
    REQUIRE_OK(fx.edge->add_process({"proc" + std::to_string(i), testbed::Topology::edge_port_to_process(i),
                                     testbed::Topology::process_mac(i), testbed::Topology::process_ip(i), port}));
    auto s = testbed::UdpSocket::open(fx.topo->procs[static_cast<std::size_t>(i)], testbed::Topology::process_ip(i),
                                      port);
    REQUIRE_OK(s);
    rx.push_back(std::move(*s));
  }
  const StreamId stream{testbed::Topology::sensor_ip, kSport, kDport};
  REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0", "proc1"}));
  auto departed = [&] {
    auto d = fx.edge->departed_stats(stream);
    REQUIRE_OK(d);
    return *d;
  };
  CHECK(departed().empty());
  auto tx = testbed::UdpSocket::open(fx.topo->sensor, testbed::Topology::sensor_ip, kSport);
  REQUIRE_OK(tx);

  Reader r0(rx[0]), r1(rx[1]);
  std::atomic<bool> sending{true};
  std::atomic<std::uint64_t> sent{0};
  std::thread sender([&] {
    // Seven TS packets of a data PID (not video: nothing is held back).
    std::vector<std::uint8_t> payload(7 * 188, 0xff);
    for (std::uint64_t i = 0; sending.load(); ++i) {
      for (std::size_t k = 0; k < 7; ++k) {
        std::uint8_t* p = &payload[k * 188];
        p[0] = 0x47, p[1] = 0x10, p[2] = 0x00, p[3] = static_cast<std::uint8_t>(0x10 | ((i * 7 + k) & 0xf));
      }
      if (tx->send_to(testbed::Topology::service_ip, kDport, payload)) sent.fetch_add(1);
      if (i % 32 == 31) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  auto flowing = [&](std::uint64_t n) {  // until n more datagrams went out
    const std::uint64_t until = sent.load() + n;
    while (sent.load() < until) std::this_thread::sleep_for(std::chrono::microseconds(100));
  };
  // proc1 leaves and joins again mid-flow, several times, then is removed.
  constexpr int kRounds = 8;
  for (int i = 0; i < kRounds; ++i) {
    flowing(500);
    REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0"}));
    flowing(300);
    REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0", "proc1"}));
  }
  flowing(500);
  REQUIRE_OK(fx.edge->remove_process("proc1"));
  flowing(500);
  sending = false;
  sender.join();
  const std::uint64_t got0 = r0.stop(), got1 = r1.stop();

  const auto gone = departed();
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].process == "proc1");
  CHECK(gone[0].departed);
  INFO("sent " << sent.load() << ", proc1 received " << got1 << ", proc0 " << got0);
  CHECK(got1 > 0);
  CHECK(got1 < got0);  // it was away for part of the run
  CHECK(sum(gone[0].delivered) == got1);
  CHECK(sum(gone[0].dropped) == 0);
  auto now = fx.edge->target_stats(stream);
  REQUIRE_OK(now);
  REQUIRE(now->size() == 1);
  CHECK(sum((*now)[0].delivered) == got0);
}
