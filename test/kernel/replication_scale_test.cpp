// SPDX-License-Identifier: Apache-2.0
// Replication at the datapath's limits: 128 clone targets on one stream, each
// process in its own namespace with its own MAC, address and UDP port, and
// the edge's full complement of processes and (stream, process)
// subscriptions, with the next one refused by name.
#include <poll.h>
#include <sys/socket.h>

#include <set>
#include <thread>

#include "../support/edge_fixture.hpp"
#include "../support/ts.hpp"
#include "qoc_consts.h"

using namespace qocnet;
using namespace qocnet::test;
using T = TsBuilder;

namespace {

constexpr std::uint16_t kSport = 42300;
constexpr std::uint16_t kDport = 5000;
constexpr int kTargets = 128;

// A TS payload (a PAT: PSI alone is classed ref) carrying `tag` in its stuffing.
Bytes payload(std::uint16_t tag) {
  TsPacket pat = T::pat();
  pat[186] = static_cast<std::uint8_t>(tag >> 8);
  pat[187] = static_cast<std::uint8_t>(tag);
  return Bytes(pat.begin(), pat.end());
}

// The tags of every datagram waiting on the socket (none blocks).
std::multiset<std::uint16_t> tags_on(const testbed::UdpSocket& s) {
  std::multiset<std::uint16_t> out;
  std::uint8_t buf[2048];
  for (;;) {
    const ssize_t n = ::recv(s.fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return out;
    if (n >= 188) out.insert(static_cast<std::uint16_t>((buf[186] << 8) | buf[187]));
  }
}

std::multiset<std::uint16_t> range(std::uint16_t from, std::uint16_t to) {
  std::multiset<std::uint16_t> s;
  for (std::uint16_t t = from; t <= to; ++t) s.insert(t);
  return s;
}

std::string name_of(int i) { return "proc" + std::to_string(i); }

}  // namespace

TEST_CASE("128 clone targets in their own namespaces each get every kept datagram once at their own address",
          "[kernel][replication][scale]") {
  static_assert(kTargets <= QOC_MAX_TARGETS);
  EdgeFixture fx(kTargets, {}, true);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  std::vector<testbed::UdpSocket> rx;
  std::vector<std::string> names;
  for (int i = 0; i < kTargets; ++i) {
    const auto port = static_cast<std::uint16_t>(6000 + i);
    REQUIRE_OK(fx.edge->add_process({name_of(i), testbed::Topology::edge_port_to_process(i),
                                     testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
                                     port}));
    auto s = testbed::UdpSocket::open(fx.topo->procs[static_cast<std::size_t>(i)],
                                      testbed::Topology::process_ip(i), port, 1 << 20);
    REQUIRE_OK(s);
    rx.push_back(std::move(*s));
    names.push_back(name_of(i));
  }
  const StreamId stream{testbed::Topology::sensor_ip, kSport, kDport};
  REQUIRE_OK(fx.edge->set_clone_targets(stream, names));
  auto tx = testbed::UdpSocket::open(fx.topo->sensor, testbed::Topology::sensor_ip, kSport);
  REQUIRE_OK(tx);
  auto send = [&](std::uint16_t from, std::uint16_t to) {
    for (std::uint16_t t = from; t <= to; ++t)
      REQUIRE_OK(tx->send_to(testbed::Topology::service_ip, kDport, payload(t)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };

  SECTION("every target keeps everything") {
    send(1, 8);
    for (int i = 0; i < kTargets; ++i) {
      INFO(name_of(i));
      CHECK(tags_on(rx[static_cast<std::size_t>(i)]) == range(1, 8));
    }
    auto ts = fx.edge->target_stats(stream);
    REQUIRE_OK(ts);
    REQUIRE(ts->size() == kTargets);
    for (int i = 0; i < kTargets; ++i) {
      const TargetStats& s = (*ts)[static_cast<std::size_t>(i)];
      INFO(s.process);
      CHECK(s.delivered[static_cast<int>(FrameClass::ref)] == 8);
      // Every target but the last gets a clone; the last the frame itself.
      CHECK(s.clones == (i + 1 < kTargets ? 8u : 0u));
    }
    auto d = fx.edge->dpi_counters();
    REQUIRE_OK(d);
    CHECK(d->replicated == 8);
    CHECK(d->clones == 8u * (kTargets - 1));
    CHECK(d->all_dropped == 0);
    CHECK(d->targets_cut == 0);
    // Each process's port is a veth whose other end is in its namespace.
    CHECK(d->peer_redirects == 8);
  }

  SECTION("targets that drop everything get nothing, the others all") {
    // Droppers spread over every chunk of targets, and the last 8 too: the
    // last kept target (119) is mid-list.
    auto drops = [](int i) { return i % 3 == 0 || i >= 120; };
    for (int i = 0; i < kTargets; ++i)
      if (drops(i)) REQUIRE_OK(fx.edge->set_policy(name_of(i), stream, Policy::uniform(1.0)));
    send(1, 6);
    int kept = 0;
    for (int i = 0; i < kTargets; ++i) {
      INFO(name_of(i));
      CHECK(tags_on(rx[static_cast<std::size_t>(i)]) == (drops(i) ? range(1, 0) : range(1, 6)));
      kept += drops(i) ? 0 : 1;
    }
    auto ts = fx.edge->target_stats(stream);
    REQUIRE_OK(ts);
    for (const auto& s : *ts) {
      INFO(s.process);
      const bool dropper = drops(std::stoi(s.process.substr(4)));
      CHECK(s.delivered[static_cast<int>(FrameClass::ref)] == (dropper ? 0u : 6u));
      CHECK(s.dropped[static_cast<int>(FrameClass::ref)] == (dropper ? 6u : 0u));
    }
    auto d = fx.edge->dpi_counters();
    REQUIRE_OK(d);
    CHECK(d->clones == 6u * static_cast<unsigned>(kept - 1));
    CHECK(d->all_dropped == 0);
  }
}

TEST_CASE("the edge holds its most processes and subscriptions and refuses the next by name",
          "[kernel][replication][scale]") {
  EdgeFixture fx(1, {}, false);
  for (int i = 0; i < QOC_MAX_PROCS; ++i) {
    char mac[24];
    std::snprintf(mac, sizeof mac, "02:72:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
    REQUIRE_OK(fx.edge->add_process({name_of(i), "e1", mac, "", 0}));
  }
  REQUIRE_ERROR(full, fx.edge->add_process({"one-more", "e1", "02:72:00:01:00:00", "", 0}),
                Errc::resource_exhausted);
  CHECK(full.message.find(std::to_string(QOC_MAX_PROCS) + " processes") != std::string::npos);

  // Full target lists on as many streams as the subscriptions allow.
  constexpr int kStreams = QOC_MAX_SUBS / QOC_MAX_TARGETS;
  auto stream = [](int s) { return StreamId{"10.77.0.1", static_cast<std::uint16_t>(41000 + s), kDport}; };
  auto list = [](int s, int n) {
    std::vector<std::string> v;
    for (int j = 0; j < n; ++j) v.push_back(name_of((s * QOC_MAX_TARGETS + j) % QOC_MAX_PROCS));
    return v;
  };
  for (int s = 0; s < kStreams; ++s) REQUIRE_OK(fx.edge->set_clone_targets(stream(s), list(s, QOC_MAX_TARGETS)));

  std::vector<std::string> too_many = list(0, QOC_MAX_TARGETS);
  too_many.push_back(name_of(QOC_MAX_TARGETS));
  REQUIRE_ERROR(long_list, fx.edge->set_clone_targets(stream(kStreams), too_many), Errc::resource_exhausted);
  CHECK(long_list.message.find("the datapath holds " + std::to_string(QOC_MAX_TARGETS)) != std::string::npos);

  REQUIRE_ERROR(no_sub, fx.edge->set_clone_targets(stream(kStreams), {name_of(0)}), Errc::resource_exhausted);
  CHECK(no_sub.message.find(std::to_string(QOC_MAX_SUBS) + " (stream, process) subscriptions") !=
        std::string::npos);
  // The refused stream has no targets, the others keep theirs.
  REQUIRE_ERROR(none, fx.edge->target_stats(stream(kStreams)), Errc::not_found);
  for (int s = 0; s < kStreams; ++s) {
    auto ts = fx.edge->target_stats(stream(s));
    REQUIRE_OK(ts);
    CHECK(ts->size() == static_cast<std::size_t>(QOC_MAX_TARGETS));
  }
  // A shorter list gives its subscriptions back: the new stream fits then.
  REQUIRE_OK(fx.edge->set_clone_targets(stream(0), list(0, QOC_MAX_TARGETS - 1)));
  REQUIRE_OK(fx.edge->set_clone_targets(stream(kStreams), {name_of(0)}));
  // Removing a process gives back its subscriptions on every stream.
  REQUIRE_ERROR(again, fx.edge->set_clone_targets(stream(kStreams + 1), {name_of(0)}),
                Errc::resource_exhausted);
  REQUIRE_OK(fx.edge->remove_process(name_of(1)));
  REQUIRE_OK(fx.edge->set_clone_targets(stream(kStreams + 1), {name_of(0)}));
}
