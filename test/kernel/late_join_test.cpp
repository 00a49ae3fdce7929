// SPDX-License-Identifier: Apache-2.0
// A process that joins a stream mid-GOP (added as a target, or moved from a
// policy that drops everything) gets the stream's video from its next random
// access point on: before it a decoder can only fail. Real H.264 from ffmpeg,
// replayed from the sensor namespace; what the joining process receives is
// decoded with ffmpeg, and the held-back datagrams are counted exactly.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

#include "../support/corpus.hpp"
#include "../support/edge_fixture.hpp"

using namespace qocnet;
using namespace qocnet::test;

namespace {

constexpr std::uint16_t kSport = 42400;
constexpr std::uint16_t kDport = 5000;
constexpr std::size_t kHeaders = 14 + 20 + 8;  // what the datapath's byte counts add to a payload

using Datagrams = std::vector<std::vector<std::uint8_t>>;

// Every datagram waiting on the socket (none blocks).
Datagrams drain(const testbed::UdpSocket& s) {
  Datagrams out;
  std::vector<std::uint8_t> buf(2048);
  for (;;) {
    const ssize_t n = ::recv(s.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return out;
    out.emplace_back(buf.begin(), buf.begin() + n);
  }
}

std::uint64_t bytes_of(const Datagrams& dg, std::size_t from, std::size_t to) {
  std::uint64_t b = 0;
  for (std::size_t i = from; i < to; ++i) b += dg[i].size() + kHeaders;
  return b;
}

std::uint64_t bytes_of(const Datagrams& dg) { return bytes_of(dg, 0, dg.size()); }

}  // namespace

TEST_CASE("a target that joins mid-GOP gets its video from the next random access point",
          "[kernel][replication][join]") {
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
  REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0"}));
  auto tx = testbed::UdpSocket::open(fx.topo->sensor, testbed::Topology::sensor_ip, kSport);
  REQUIRE_OK(tx);
  const Datagrams sent = cut_every_7(corpus_ts(50));  // a GOP is about 760 datagrams
  REQUIRE(sent.size() > 3000);
  auto send = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      REQUIRE_OK(tx->send_to(testbed::Topology::service_ip, kDport, sent[i]));
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  };
  auto proc1 = [&] {
    auto ts = fx.edge->target_stats(stream);
    REQUIRE_OK(ts);
    for (const auto& t : *ts)
      if (t.process == "proc1") return t;
    FAIL("proc1 is not a target");
    return TargetStats{};
  };

  // 1. proc1 is added 300 datagrams into the first GOP.
  constexpr std::size_t kJoin = 300, kPhase1 = 1200;
  send(0, kJoin);
  REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0", "proc1"}));
  send(kJoin, kPhase1);
  const Datagrams got0 = drain(rx[0]);
  const Datagrams got1 = drain(rx[1]);
  CHECK(got0.size() == kPhase1);  // keep, from the start
  CHECK(decode_errors(got0).empty());
  // The check can fail: what proc1 would have had from its join decodes with
  // errors (no parameter sets, missing references).
  const Datagrams from_join(sent.begin() + kJoin, sent.begin() + kPhase1);
  CHECK_FALSE(decode_errors(from_join).empty());
  INFO("proc1 received " << got1.size() << " of the " << kPhase1 - kJoin << " sent since it joined");
  const TargetStats s1 = proc1();
  CHECK(s1.held_until_rap > 0);
  CHECK(s1.held_until_rap + got1.size() == kPhase1 - kJoin);
  CHECK(s1.held_until_rap_bytes == bytes_of(sent, kJoin, kPhase1) - bytes_of(got1));
  CHECK(std::accumulate(std::begin(s1.dropped), std::end(s1.dropped), std::uint64_t{0}) == s1.held_until_rap);
  REQUIRE_FALSE(got1.empty());
  INFO("proc1's errors: " << decode_errors(got1));
  CHECK(decode_errors(got1).empty());

  // 2. proc1 drops everything for a while, then keeps again mid-GOP: it
  // joins again at the next random access point.
  constexpr std::size_t kKeep = 2600, kPhase2 = 3400;
  REQUIRE_OK(fx.edge->set_policy("proc1", stream, Policy::uniform(1.0)));
  send(kPhase1, kKeep);
  CHECK(drain(rx[1]).empty());
  REQUIRE_OK(fx.edge->set_policy("proc1", stream, Policy::keep()));
  send(kKeep, kPhase2);
  const Datagrams again = drain(rx[1]);
  const TargetStats s2 = proc1();
  const std::uint64_t held2 = s2.held_until_rap - s1.held_until_rap;
  INFO("proc1 received " << again.size() << " of the " << kPhase2 - kKeep << " sent since it kept again");
  CHECK(held2 > 0);
  CHECK(held2 + again.size() == kPhase2 - kKeep);
  CHECK(s2.held_until_rap_bytes - s1.held_until_rap_bytes == bytes_of(sent, kKeep, kPhase2) - bytes_of(again));
  REQUIRE_FALSE(again.empty());
  CHECK(decode_errors(again).empty());
  CHECK(drain(rx[0]).size() == kPhase2 - kPhase1);
}

TEST_CASE("a joining target starts at a random access point and not at an intra frame that is none",
          "[kernel][replication][join]") {
  const SceneCuts& sc = scene_cuts();
  const Datagrams sent = cut_every_7(sc.ts);
  // The first intra frame that is not a random access point, and the next
  // one that is, by datagram.
  std::size_t cut = 0, next_key = 0;
  for (const auto& f : sc.frames)
    if (!cut && f.intra && !f.key && f.pos / 1316 > 0) cut = f.pos / 1316;
    else if (cut && f.key && f.pos / 1316 > cut) {
      next_key = f.pos / 1316;
      break;
    }
  INFO("non-IDR I frame at datagram " << cut << ", next IDR at " << next_key << " of " << sent.size());
  REQUIRE(cut > 0);
  REQUIRE(next_key > cut + 10);
  // Decoding from the intra frame fails: no parameter sets, references
  // before it (the test can fail).
  CHECK_FALSE(decode_errors(Datagrams(sent.begin() + static_cast<long>(cut), sent.end())).empty());

  EdgeFixture fx(1, {}, true);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->add_process({"proc0", testbed::Topology::edge_port_to_process(0), testbed::Topology::process_mac(0),
                                   testbed::Topology::process_ip(0), 6000}));
  auto rx = testbed::UdpSocket::open(fx.topo->procs[0], testbed::Topology::process_ip(0), 6000);
  REQUIRE_OK(rx);
  auto tx = testbed::UdpSocket::open(fx.topo->sensor, testbed::Topology::sensor_ip, kSport);
  REQUIRE_OK(tx);
  const StreamId stream{testbed::Topology::sensor_ip, kSport, kDport};
  REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0"}));
  REQUIRE_OK(fx.edge->set_policy("proc0", stream, Policy::uniform(1.0)));
  auto send = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      REQUIRE_OK(tx->send_to(testbed::Topology::service_ip, kDport, sent[i]));
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  };
  // proc0 drops everything until just before the intra frame, then keeps.
  send(0, cut);
  CHECK(drain(*rx).empty());
  REQUIRE_OK(fx.edge->set_policy("proc0", stream, Policy::keep()));
  send(cut, sent.size());
  const Datagrams got = drain(*rx);
  auto ts = fx.edge->target_stats(stream);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 1);
  INFO("received " << got.size() << " of the " << sent.size() - cut << " sent since the join; held "
                   << ts->front().held_until_rap);
  // Everything from the intra frame to the next IDR is held (PSI-only
  // datagrams aside), and what arrives decodes.
  CHECK(ts->front().held_until_rap >= next_key - cut - 2);
  CHECK(ts->front().held_until_rap + got.size() == sent.size() - cut);
  REQUIRE_FALSE(got.empty());
  CHECK(decode_errors(got).empty());
}
