// SPDX-License-Identifier: Apache-2.0
// Real, sequence-numbered UDP from a sensor namespace through the edge to
// process namespaces: every datagram goes where the port pair says, a live
// change switches cleanly, and without a pair the edge's own stack gets it.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <set>
#include <thread>

#include "../support/edge_fixture.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;

namespace {

constexpr std::uint16_t kPort = 5000;

struct Receivers {
  explicit Receivers(const EdgeFixture& fx) {
    auto e = testbed::UdpSocket::open(fx.topo->edge, testbed::Topology::service_ip, kPort);
    REQUIRE_OK(e);
    edge_stack.emplace(std::move(*e));
    for (const auto& p : fx.topo->procs) {
      auto s = testbed::UdpSocket::open(p, testbed::Topology::service_ip, kPort);
      REQUIRE_OK(s);
      procs.push_back(std::move(*s));
    }
    auto snd = testbed::UdpSocket::open(fx.topo->sensor, testbed::Topology::sensor_ip, 40000);
    REQUIRE_OK(snd);
    sensor.emplace(std::move(*snd));
  }
  std::optional<testbed::UdpSocket> edge_stack, sensor;
  std::vector<testbed::UdpSocket> procs;
};

std::vector<std::uint64_t> iota_seqs(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v(to - from);
  std::iota(v.begin(), v.end(), from);
  return v;
}

void send_range(testbed::UdpSocket& s, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t i = from; i < to; ++i)
    REQUIRE_OK(s.send_seq(testbed::Topology::service_ip, kPort, i, 256));
}

}  // namespace

TEST_CASE("every datagram reaches the paired process and nothing else", "[kernel][traffic]") {
  EdgeFixture fx(2);
  Receivers rx(fx);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e1"));

  constexpr std::uint64_t N = 3000;
  send_range(*rx.sensor, 0, N);
  CHECK(rx.procs[0].drain_seqs(milliseconds(300)) == iota_seqs(0, N));
  CHECK(rx.procs[1].drain_seqs(milliseconds(50)).empty());
  CHECK(rx.edge_stack->drain_seqs(milliseconds(50)).empty());

  const auto e0 = fx.counters("e0");
  const auto e1 = fx.counters("e1");
  const std::uint64_t frame = 14 + 20 + 8 + 256;
  CHECK(e0.rx_packets == N);
  CHECK(e0.fwd_packets == N);
  CHECK(e0.pass_packets == 0);
  CHECK(e0.fwd_bytes == N * frame);
  CHECK(e1.tx_packets == N);
  CHECK(e1.tx_bytes == N * frame);
  CHECK(fx.counters("e2").tx_packets == 0);
}

TEST_CASE("changing the pair while traffic flows loses and duplicates nothing",
          "[kernel][traffic]") {
  EdgeFixture fx(2);
  Receivers rx(fx);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e1"));

  constexpr std::uint64_t N = 20000;
  std::atomic<std::uint64_t> sent{0};
  std::vector<std::uint64_t> got_a, got_b;
  std::atomic<bool> sending{true};
  // Receivers drain while the sender runs, so no socket buffer overflows.
  std::thread ra([&] {
    while (sending) {
      auto s = rx.procs[0].drain_seqs(milliseconds(20));
      got_a.insert(got_a.end(), s.begin(), s.end());
    }
    auto s = rx.procs[0].drain_seqs(milliseconds(300));
    got_a.insert(got_a.end(), s.begin(), s.end());
  });
  std::thread rb([&] {
    while (sending) {
      auto s = rx.procs[1].drain_seqs(milliseconds(20));
      got_b.insert(got_b.end(), s.begin(), s.end());
    }
    auto s = rx.procs[1].drain_seqs(milliseconds(300));
    got_b.insert(got_b.end(), s.begin(), s.end());
  });
  std::thread sender([&] {
    // One CPU: the datagrams then pass the edge program in the order sent.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    for (std::uint64_t i = 0; i < N; ++i) {
      if (!rx.sensor->send_seq(testbed::Topology::service_ip, kPort, i, 256).ok()) break;
      sent = i + 1;
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  while (sent < N / 2) std::this_thread::sleep_for(milliseconds(1));
  const auto switch_status = fx.edge->set_port_pair("e0", "e2");
  const std::uint64_t sent_at_switch = sent;
  sender.join();
  sending = false;
  ra.join();
  rb.join();
  REQUIRE_OK(switch_status);
  REQUIRE(sent == N);

  INFO("process A got " << got_a.size() << ", process B got " << got_b.size()
                        << ", switch after about " << sent_at_switch);
  REQUIRE_FALSE(got_a.empty());
  REQUIRE_FALSE(got_b.empty());
  // No loss, no duplicates: together they hold each sequence number once.
  std::vector<std::uint64_t> all = got_a;
  all.insert(all.end(), got_b.begin(), got_b.end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota_seqs(0, N));
  // A clean switch point: A got a prefix in order, B the rest in order.
  CHECK(std::is_sorted(got_a.begin(), got_a.end()));
  CHECK(std::is_sorted(got_b.begin(), got_b.end()));
  CHECK(got_a.back() + 1 == got_b.front());
  CHECK(rx.edge_stack->drain_seqs(milliseconds(50)).empty());
  const auto e0 = fx.counters("e0");
  CHECK(e0.fwd_packets == N);
  CHECK(fx.counters("e1").tx_packets == got_a.size());
  CHECK(fx.counters("e2").tx_packets == got_b.size());
}

TEST_CASE("removing the pair sends datagrams back to the normal stack path", "[kernel][traffic]") {
  EdgeFixture fx(2);
  Receivers rx(fx);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e1"));
  send_range(*rx.sensor, 0, 500);
  CHECK(rx.procs[0].drain_seqs(milliseconds(300)) == iota_seqs(0, 500));

  REQUIRE_OK(fx.edge->remove_port_pair("e0"));
  send_range(*rx.sensor, 500, 1000);
  CHECK(rx.edge_stack->drain_seqs(milliseconds(300)) == iota_seqs(500, 1000));
  CHECK(rx.procs[0].drain_seqs(milliseconds(50)).empty());
  CHECK(rx.procs[1].drain_seqs(milliseconds(50)).empty());
  const auto e0 = fx.counters("e0");
  CHECK(e0.fwd_packets == 500);
  CHECK(e0.pass_packets == 500);
  CHECK(e0.rx_packets == 1000);
}

TEST_CASE("a detached port forwards nothing and counts nothing", "[kernel][traffic]") {
  EdgeFixture fx(1);
  Receivers rx(fx);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e1"));
  send_range(*rx.sensor, 0, 100);
  CHECK(rx.procs[0].drain_seqs(milliseconds(300)).size() == 100);
  REQUIRE_OK(fx.edge->detach_port("e0"));
  send_range(*rx.sensor, 100, 200);
  CHECK(rx.edge_stack->drain_seqs(milliseconds(300)) == iota_seqs(100, 200));
  CHECK(rx.procs[0].drain_seqs(milliseconds(50)).empty());
  CHECK(fx.counters("e0").rx_packets == 100);
  auto pairs = fx.edge->port_pairs();
  REQUIRE_OK(pairs);
  CHECK(pairs->empty());
}
