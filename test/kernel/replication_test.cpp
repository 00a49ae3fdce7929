// SPDX-License-Identifier: Apache-2.0
// Selective replication with real video: an ffmpeg-made H.264 TS stream is
// replayed as UDP datagrams from the sensor namespace into the edge, which
// replicates it to 4 process namespaces with their own addresses, each under
// its own policy. What each process's socket receives is checked against the
// sent datagrams, the policy and the kernel's counters.
#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <thread>

#include "../support/corpus.hpp"
#include "../support/edge_fixture.hpp"
#include "../support/frames.hpp"
#include "qocnet/classify.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;

namespace {

constexpr std::uint16_t kSensorPort = 40000;
constexpr std::uint16_t kServicePort = 5000;

const std::vector<std::vector<std::uint8_t>>& corpus_datagrams() {
  static const auto dgrams = cut_every_7(corpus_ts(50));
  return dgrams;
}

struct Receiver {
  testbed::UdpSocket sock;
  std::vector<std::uint64_t> hashes;
  std::thread th;
};

struct Replay {
  std::map<std::uint64_t, FrameClass> class_of;  // by payload hash
  std::size_t sent = 0;
  std::uint64_t sent_bytes[4] = {};  // frame bytes by class
  std::uint64_t sent_dgrams[4] = {};
};

// Classes of the corpus datagrams as the DPI gives them (a separate edge).
std::map<std::uint64_t, FrameClass> classes_of(const std::vector<std::vector<std::uint8_t>>& dg) {
  auto e = Edge::create();
  REQUIRE_OK(e);
  Capture cap;
  for (const auto& d : dg) {
    Bytes f = FrameBuilder()
                  .eth(kMacB, kMacA, 0x0800)
                  .ipv4(ip4("10.77.0.1"), ip4("10.77.0.2"), 17, static_cast<std::uint16_t>(8 + d.size()))
                  .udp(kSensorPort, kServicePort, static_cast<std::uint16_t>(d.size()))
                  .build_with(d);
    cap.frames.push_back(std::move(f));
  }
  auto c = classify(*e, cap);
  REQUIRE_OK(c);
  std::map<std::uint64_t, FrameClass> out;
  for (std::size_t i = 0; i < dg.size(); ++i) out[fnv(dg[i].data(), dg[i].size())] = c->datagrams[i].cls;
  return out;
}

const StreamId kStream{testbed::Topology::sensor_ip, kSensorPort, kServicePort};

struct ReplicationFixture : EdgeFixture {
  ReplicationFixture() : EdgeFixture(4, {}, true) {
    REQUIRE_OK(edge->attach_port("e0"));
    std::vector<std::string> names;
    for (int i = 0; i < 4; ++i) {
      const std::string name = "proc" + std::to_string(i);
      REQUIRE_OK(edge->add_process({name, testbed::Topology::edge_port_to_process(i),
                                    testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
                                    static_cast<std::uint16_t>(6000 + i)}));
      names.push_back(name);
      auto s = testbed::UdpSocket::open(topo->procs[static_cast<std::size_t>(i)],
                                        testbed::Topology::process_ip(i),
                                        static_cast<std::uint16_t>(6000 + i), 32 << 20);
      REQUIRE_OK(s);
      receivers.push_back(std::make_unique<Receiver>(Receiver{std::move(*s), {}, {}}));
    }
    REQUIRE_OK(edge->set_clone_targets(kStream, names));
    auto snd = testbed::UdpSocket::open(topo->sensor, testbed::Topology::sensor_ip, kSensorPort);
    REQUIRE_OK(snd);
    sensor.emplace(std::move(*snd));
  }

  // Sends the corpus `rounds` times, paced, while the receivers drain;
  // `midway` runs once half of it has gone.
  Replay replay(int rounds, const std::function<void()>& midway = {},
                const std::vector<std::vector<std::uint8_t>>* datagrams = nullptr) {
    const auto& dg = datagrams ? *datagrams : corpus_datagrams();
    Replay r;
    r.class_of = classes_of(dg);
    std::atomic<bool> running{true};
    for (auto& rx : receivers)
      rx->th = std::thread([&rx, &running] {
        std::uint8_t buf[2048];
        auto drain = [&](int timeout_ms) {
          for (;;) {
            pollfd p{rx->sock.fd(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return;
            ssize_t n = ::recv(rx->sock.fd(), buf, sizeof buf, 0);
            if (n > 0) rx->hashes.push_back(fnv(buf, static_cast<std::size_t>(n)));
          }
        };
        while (running) drain(20);
        drain(300);
      });
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    std::thread sender([&] {
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      const std::size_t total = dg.size() * static_cast<std::size_t>(rounds);
      for (std::size_t i = 0; i < total; ++i) {
        const auto& d = dg[i % dg.size()];
        REQUIRE_OK(sensor->send_to(testbed::Topology::service_ip, kServicePort, d));
        const FrameClass c = r.class_of.at(fnv(d.data(), d.size()));
        r.sent_dgrams[static_cast<int>(c)]++;
        r.sent_bytes[static_cast<int>(c)] += 14 + 20 + 8 + d.size();
        if (midway && i == total / 2) midway();
        if (i % 32 == 31) std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      r.sent = total;
    });
    sender.join();
    running = false;
    for (auto& rx : receivers) rx->th.join();
    return r;
  }

  TargetStats stats_of(const std::string& name) {
    auto ts = edge->target_stats(kStream);
    REQUIRE_OK(ts);
    for (const auto& t : *ts)
      if (t.process == name) return t;
    FAIL("no stats for " << name);
    return {};
  }

  std::vector<std::unique_ptr<Receiver>> receivers;
  std::optional<testbed::UdpSocket> sensor;
};

std::uint64_t sum4(const std::uint64_t (&a)[4]) { return a[0] + a[1] + a[2] + a[3]; }

// What a receiver got, by class, checked to be a sub-multiset of what was sent.
std::array<std::uint64_t, 4> received_by_class(const Receiver& rx, const Replay& r, int rounds) {
  std::map<std::uint64_t, int> seen;
  std::array<std::uint64_t, 4> by{};
  for (auto h : rx.hashes) {
    auto it = r.class_of.find(h);
    INFO("a received datagram is not one that was sent (rewrite or checksum damage?)");
    REQUIRE(it != r.class_of.end());
    by[static_cast<std::size_t>(it->second)]++;
    seen[h]++;
  }
  for (const auto& [h, n] : seen) CHECK(n <= rounds * 4);  // no datagram more often than sent
  return by;
}

}  // namespace

TEST_CASE("each process receives what its policy keeps, rewritten to its address",
          "[kernel][replication]") {
  ReplicationFixture fx;
  REQUIRE_OK(fx.edge->set_policy("proc1", kStream, Policy::differential(0.25)));
  REQUIRE_OK(fx.edge->set_policy("proc2", kStream, Policy::uniform(0.10)));
  REQUIRE_OK(fx.edge->set_policy("proc3", kStream, Policy::differential(0.70)));  // spills into diff
  constexpr int kRounds = 3;
  const Replay r = fx.replay(kRounds);
  REQUIRE(r.sent >= 20000);
  const double total_bytes = static_cast<double>(sum4(r.sent_bytes));
  const double disp_share = r.sent_bytes[1] / total_bytes, diff_share = r.sent_bytes[2] / total_bytes;
  INFO("sent " << r.sent << " datagrams; byte shares disp " << disp_share << ", diff " << diff_share
               << ", ref " << r.sent_bytes[3] / total_bytes);

  std::uint64_t delivered_total = 0, clones_total = 0;
  for (int i = 0; i < 4; ++i) {
    const std::string name = "proc" + std::to_string(i);
    INFO(name);
    const TargetStats s = fx.stats_of(name);
    const auto got = received_by_class(*fx.receivers[static_cast<std::size_t>(i)], r, kRounds);
    // The socket got exactly what the datapath says it delivered, per class,
    // and every datagram was either delivered or dropped.
    for (int c = 0; c < 4; ++c) {
      INFO("class " << to_string(static_cast<FrameClass>(c)));
      CHECK(got[static_cast<std::size_t>(c)] == s.delivered[c]);
      CHECK(s.delivered[c] + s.dropped[c] == r.sent_dgrams[c]);
    }
    delivered_total += sum4(s.delivered);
    clones_total += s.clones;
    const double byte_drop = sum4(s.dropped_bytes) / total_bytes;
    const double dgram_drop = static_cast<double>(sum4(s.dropped)) / static_cast<double>(r.sent);
    INFO("dropped " << byte_drop << " of the bytes, " << dgram_drop << " of the datagrams");
    if (i == 0) {
      CHECK(sum4(s.dropped) == 0);  // keep: every datagram, exactly once
      CHECK(fx.receivers[0]->hashes.size() == r.sent);
    } else if (i == 2) {
      CHECK(std::fabs(dgram_drop - 0.10) <= 0.01);  // uniform: blind to content
      CHECK(std::fabs(byte_drop - 0.10) <= 0.01);
    } else {
      const double p = i == 1 ? 0.25 : 0.70;
      CHECK(std::fabs(byte_drop - p) <= 0.01);
      CHECK(s.dropped[static_cast<int>(FrameClass::other)] == 0);
      if (p <= disp_share + diff_share) CHECK(s.dropped[static_cast<int>(FrameClass::ref)] == 0);
      if (p <= disp_share) CHECK(s.dropped[static_cast<int>(FrameClass::diff)] == 0);
      if (p > disp_share) CHECK(s.dropped[static_cast<int>(FrameClass::diff)] > 0);  // spilled
    }
  }
  // One copy fewer than kept targets for every datagram (proc0 keeps all, so
  // none is dropped by all targets).
  auto d = fx.edge->dpi_counters();
  REQUIRE_OK(d);
  CHECK(d->all_dropped == 0);
  CHECK(d->replicated == r.sent);
  CHECK(d->clones == delivered_total - r.sent);
  CHECK(clones_total == d->clones);

  // Eq. 1/3/4 from the live counters: proc0 keeps everything, so the
  // effective quality is keep and qocnet saves only the naive duplicates.
  auto eff = fx.edge->effective_policy(kStream);
  REQUIRE_OK(eff);
  CHECK(*eff == Policy::keep());
  auto bw = fx.edge->stream_bandwidth(kStream);
  REQUIRE_OK(bw);
  CHECK(bw->stream_bytes == Catch::Detail::Approx(total_bytes));
  CHECK(bw->naive_bytes == Catch::Detail::Approx(4 * total_bytes));
  CHECK(bw->qocnet_bytes == Catch::Detail::Approx(total_bytes));
  CHECK(bw->reduction == Catch::Detail::Approx(0.75));
}

TEST_CASE("a reported QoC requirement becomes the cheapest policy that meets it",
          "[kernel][replication][qoc]") {
  ReplicationFixture fx;
  auto p = fx.edge->report_qoc("proc1", kStream, 0.9);
  REQUIRE_OK(p);
  const QocTable t = QocTable::paper_default();
  CHECK(p->kind == PolicyKind::differential);
  CHECK(p->drop == Catch::Detail::Approx(t.max_loss(PolicyKind::differential, 0.9)));
  REQUIRE_OK(fx.edge->report_qoc("proc0", kStream, 0.9));
  REQUIRE_OK(fx.edge->report_qoc("proc2", kStream, 0.99));
  REQUIRE_OK(fx.edge->report_qoc("proc3", kStream, 0.9));
  auto eff = fx.edge->effective_policy(kStream);
  REQUIRE_OK(eff);
  CHECK(eff->kind == PolicyKind::differential);  // the strictest: 0.99
  CHECK(eff->drop == Catch::Detail::Approx(t.max_loss(PolicyKind::differential, 0.99)));
  REQUIRE_ERROR(err, fx.edge->report_qoc("proc1", kStream, 1.2), Errc::failed_precondition);
  CHECK(err.message.find("best achievable") != std::string::npos);
  auto ts = fx.edge->target_stats(kStream);
  REQUIRE_OK(ts);
  CHECK(ts->at(1).policy == *p);  // unchanged by the refused report
}

TEST_CASE("a policy change while traffic flows costs the other processes nothing",
          "[kernel][replication]") {
  ReplicationFixture fx;
  REQUIRE_OK(fx.edge->set_clone_targets(kStream, {"proc0", "proc1"}));
  const Replay r = fx.replay(1, [&] {
    REQUIRE_OK(fx.edge->set_policy("proc1", kStream, Policy::differential(0.5)));
  });
  CHECK(fx.receivers[0]->hashes.size() == r.sent);  // proc0 (keep) lost nothing
  const TargetStats s1 = fx.stats_of("proc1");
  CHECK(sum4(s1.dropped) > 0);                      // the change took effect
  CHECK(sum4(s1.delivered) == fx.receivers[1]->hashes.size());
  CHECK(fx.receivers[2]->hashes.empty());           // no longer a target
  CHECK(fx.receivers[3]->hashes.empty());
}

TEST_CASE("when every target drops a datagram it is dropped once, with no copy",
          "[kernel][replication]") {
  ReplicationFixture fx;
  REQUIRE_OK(fx.edge->set_clone_targets(kStream, {"proc1", "proc2"}));
  REQUIRE_OK(fx.edge->set_policy("proc1", kStream, Policy::uniform(1.0)));
  REQUIRE_OK(fx.edge->set_policy("proc2", kStream, Policy::uniform(1.0)));
  const Replay r = fx.replay(1);
  auto d = fx.edge->dpi_counters();
  REQUIRE_OK(d);
  CHECK(d->all_dropped == r.sent);
  CHECK(d->clones == 0);
  for (auto& rx : fx.receivers) CHECK(rx->hashes.empty());
}

TEST_CASE("bad replication requests are refused and change nothing", "[kernel][replication]") {
  ReplicationFixture fx;
  REQUIRE_ERROR(e1, fx.edge->set_policy("nobody", kStream, Policy::keep()), Errc::not_found);
  CHECK(e1.message.find("'nobody'") != std::string::npos);
  REQUIRE_ERROR(e2, fx.edge->set_policy("proc1", kStream, Policy::differential(1.5)),
                Errc::invalid_argument);
  CHECK(e2.message.find("outside [0, 1]") != std::string::npos);
  const StreamId other{"10.77.0.9", 1234, 5000};
  REQUIRE_ERROR(e3, fx.edge->set_policy("proc1", other, Policy::keep()), Errc::failed_precondition);
  CHECK(e3.fix.find("set_clone_targets") != std::string::npos);
  REQUIRE_ERROR(e4, fx.edge->add_process({"procX", "qocnetnope0", "02:00:00:00:00:09", "", 0}),
                Errc::not_found);
  REQUIRE_ERROR(e5, fx.edge->add_process({"procX", "e1", "not-a-mac", "", 0}), Errc::invalid_argument);
  REQUIRE_ERROR(e6, fx.edge->add_process({"proc0", "e1", "02:00:00:00:00:09", "", 0}),
                Errc::already_exists);
  REQUIRE_ERROR(e7, fx.edge->set_clone_targets(kStream, {"proc0", "ghost"}), Errc::not_found);
  REQUIRE_ERROR(e8, fx.edge->set_clone_targets({"not-an-ip", 1, 2}, {"proc0"}), Errc::invalid_argument);
  auto ts = fx.edge->target_stats(kStream);
  REQUIRE_OK(ts);
  CHECK(ts->size() == 4);  // the failed calls left the targets as they were
  for (const auto& t : *ts) CHECK(t.policy == Policy::keep());
  REQUIRE_OK(fx.edge->remove_process("proc3"));
  ts = fx.edge->target_stats(kStream);
  REQUIRE_OK(ts);
  CHECK(ts->size() == 3);
}

TEST_CASE("a removed process's counters do not pass to the next one in its slot",
          "[kernel][replication]") {
  ReplicationFixture fx;
  REQUIRE_OK(fx.edge->set_clone_targets(kStream, {"proc3"}));
  fx.replay(1);
  CHECK(fx.stats_of("proc3").delivered[static_cast<int>(FrameClass::ref)] > 0);
  REQUIRE_OK(fx.edge->remove_process("proc3"));
  REQUIRE_OK(fx.edge->add_process({"newcomer", "e4", testbed::Topology::process_mac(3),
                                   testbed::Topology::process_ip(3), 6003}));
  REQUIRE_OK(fx.edge->set_clone_targets(kStream, {"newcomer"}));
  const TargetStats s = fx.stats_of("newcomer");
  CHECK(sum4(s.delivered) == 0);
  CHECK(sum4(s.dropped) == 0);
}

TEST_CASE("frame_aware drops whole frames only, from disp up, at the asked rate",
          "[kernel][replication][frame_aware]") {
  ReplicationFixture fx;
  std::vector<int> frame_of;
  const auto dg = cut_at_frames(corpus_ts(12), &frame_of);
  const double ps[] = {0.30, 0.75, 0.985};
  for (int i = 1; i <= 3; ++i)
    REQUIRE_OK(fx.edge->set_policy("proc" + std::to_string(i), kStream, Policy::frame_aware(ps[i - 1])));
  const Replay r = fx.replay(1, {}, &dg);
  REQUIRE(r.sent == dg.size());

  // Each frame: its datagrams (by hash) and its class.
  std::map<int, std::vector<std::uint64_t>> frames;
  std::map<int, FrameClass> frame_class;
  for (std::size_t i = 0; i < dg.size(); ++i) {
    if (!frame_of[i]) continue;
    const auto h = fnv(dg[i].data(), dg[i].size());
    frames[frame_of[i]].push_back(h);
    frame_class.emplace(frame_of[i], r.class_of.at(h));
  }
  const double total_bytes = static_cast<double>(sum4(r.sent_bytes));
  const double nonref_share = (r.sent_bytes[1] + r.sent_bytes[2]) / total_bytes;
  INFO(frames.size() << " frames in " << dg.size() << " frame-aligned datagrams; disp share "
                     << r.sent_bytes[1] / total_bytes << ", diff share " << r.sent_bytes[2] / total_bytes);

  for (int i = 1; i <= 3; ++i) {
    const double p = ps[i - 1];
    INFO("proc" << i << ": frame_aware(" << p << ")");
    const auto& rx = *fx.receivers[static_cast<std::size_t>(i)];
    std::map<std::uint64_t, int> got;
    for (auto h : rx.hashes) got[h]++;
    // Whole frames: all of a frame's datagrams arrived, or none.
    std::map<int, bool> kept;
    for (const auto& [f, hs] : frames) {
      int n = 0;
      for (auto h : hs) n += got.count(h) ? 1 : 0;
      INFO("frame " << f << " (" << to_string(frame_class[f]) << "): " << n << " of " << hs.size());
      CHECK((n == 0 || n == static_cast<int>(hs.size())));
      kept[f] = n > 0;
    }
    // Decodes cleanly: in each GOP, nothing after a dropped diff frame, and
    // nothing at all once its ref frame is dropped.
    bool ref_kept = true, tail = false;
    int violations = 0, refs_dropped = 0;
    for (const auto& [f, k] : kept) {
      const FrameClass c = frame_class[f];
      if (c == FrameClass::ref) {
        ref_kept = k;
        tail = false;
        refs_dropped += k ? 0 : 1;
        continue;
      }
      if (k && (!ref_kept || tail)) ++violations;
      if (!k && c == FrameClass::diff) tail = true;
    }
    CHECK(violations == 0);
    if (p <= nonref_share) CHECK(refs_dropped == 0);  // below the spill into GOPs
    const TargetStats s = fx.stats_of("proc" + std::to_string(i));
    const double byte_drop = sum4(s.dropped_bytes) / total_bytes;
    INFO("dropped " << byte_drop << " of the bytes; ref frames dropped " << refs_dropped);
    CHECK(std::fabs(byte_drop - p) <= 0.02);
    CHECK(s.partial == 0);  // aligned sender: no datagram mixes frames
  }
}

TEST_CASE("frame_aware with a misaligned sender counts what it cannot drop whole",
          "[kernel][replication][frame_aware]") {
  ReplicationFixture fx;
  const auto dg = cut_every_7(corpus_ts(12));
  REQUIRE_OK(fx.edge->set_policy("proc1", kStream, Policy::frame_aware(0.5)));
  const Replay r = fx.replay(1, {}, &dg);
  const TargetStats s = fx.stats_of("proc1");
  CHECK(s.partial > 0);  // datagrams holding a kept and a dropped frame went
  CHECK(sum4(s.delivered) + sum4(s.dropped) == r.sent);
  CHECK(sum4(s.delivered) == fx.receivers[1]->hashes.size());
  auto streams = fx.edge->streams();
  REQUIRE_OK(streams);
  std::uint64_t misaligned = 0;
  for (const auto& st : *streams)
    if (st.source_port == kSensorPort) misaligned = st.misaligned;
  CHECK(misaligned > 0);
}
