// SPDX-License-Identifier: Apache-2.0
// frame_aware's drop orders with real video: an ffmpeg-made H.264 TS stream,
// cut at frame boundaries, is replayed from the sensor namespace into the
// edge, which replicates it to one process namespace per (order, p). What
// each process's socket receives is checked frame by frame: whole frames
// only, the byte share p, the shape of what its order drops, and that ffmpeg
// decodes what was delivered without an error (docs/REPLICATION.md, Drop
// orders).
#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "../support/corpus.hpp"
#include "../support/edge_fixture.hpp"
#include "../support/frames.hpp"
#include "qocnet/classify.hpp"

using namespace qocnet;
using namespace qocnet::test;

namespace {

constexpr std::uint16_t kSensorPort = 40000;
constexpr std::uint16_t kServicePort = 5000;
const StreamId kStream{testbed::Topology::sensor_ip, kSensorPort, kServicePort};

// The corpus (GOP of 12, B-frames non-reference, P frames referenced by the
// next P), one datagram per frame start, and each datagram's frame.
struct Corpus {
  std::vector<std::vector<std::uint8_t>> dg;
  std::vector<int> frame_of;                // 0: no frame (PSI alone)
  std::map<int, FrameClass> frame_class;    // as the DPI classes the frame
  std::map<int, std::vector<std::size_t>> frame_dgrams;
  std::map<int, std::uint64_t> frame_bytes;  // wire bytes
  std::uint64_t total_bytes = 0;
  std::uint64_t class_bytes[4] = {};
};

std::uint64_t wire(const std::vector<std::uint8_t>& d) { return 14 + 20 + 8 + d.size(); }

// The corpus with up to `bframes` B-frames in a row (0: I and P frames only).
const Corpus& corpus(int bframes = 3) {
  static std::map<int, Corpus> made;
  auto it = made.find(bframes);
  if (it != made.end()) return it->second;
  return made[bframes] = [bframes] {
    Corpus c;
    c.dg = cut_at_frames(corpus_ts(12, bframes), &c.frame_of);
    auto e = Edge::create();
    REQUIRE_OK(e);
    Capture cap;
    for (const auto& d : c.dg)
      cap.frames.push_back(FrameBuilder()
                               .eth(kMacB, kMacA, 0x0800)
                               .ipv4(ip4("10.77.0.1"), ip4("10.77.0.2"), 17,
                                     static_cast<std::uint16_t>(8 + d.size()))
                               .udp(kSensorPort, kServicePort, static_cast<std::uint16_t>(d.size()))
                               .build_with(d));
    auto cls = classify(*e, cap);
    REQUIRE_OK(cls);
    for (std::size_t i = 0; i < c.dg.size(); ++i) {
      const auto k = static_cast<int>(cls->datagrams[i].cls);
      c.total_bytes += wire(c.dg[i]);
      c.class_bytes[k] += wire(c.dg[i]);
      const int f = c.frame_of[i];
      if (!f) continue;
      c.frame_class.emplace(f, cls->datagrams[i].cls);
      c.frame_dgrams[f].push_back(i);
      c.frame_bytes[f] += wire(c.dg[i]);
    }
    return c;
  }();
}

struct Case {
  DropOrder order;
  double p;
};

// One process per case, on its own namespace, address and port.
struct OrderFixture : EdgeFixture {
  explicit OrderFixture(const std::vector<Case>& all)
      : EdgeFixture(static_cast<int>(all.size()), {}, true), cases(all) {
    REQUIRE_OK(edge->attach_port("e0"));
    std::vector<std::string> names;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const int n = static_cast<int>(i);
      const std::string name = "proc" + std::to_string(i);
      REQUIRE_OK(edge->add_process({name, testbed::Topology::edge_port_to_process(n),
                                    testbed::Topology::process_mac(n), testbed::Topology::process_ip(n),
                                    static_cast<std::uint16_t>(6000 + n)}));
      names.push_back(name);
      auto s = testbed::UdpSocket::open(topo->procs[i], testbed::Topology::process_ip(n),
                                        static_cast<std::uint16_t>(6000 + n), 32 << 20);
      REQUIRE_OK(s);
      socks.push_back(std::move(*s));
    }
    REQUIRE_OK(edge->set_clone_targets(kStream, names));
    for (std::size_t i = 0; i < cases.size(); ++i)
      REQUIRE_OK(edge->set_policy(names[i], kStream, Policy::frame_aware(cases[i].p, cases[i].order)));
    auto snd = testbed::UdpSocket::open(topo->sensor, testbed::Topology::sensor_ip, kSensorPort);
    REQUIRE_OK(snd);
    sensor.emplace(std::move(*snd));
  }

  // Sends the corpus once, paced, while every socket drains; returns the
  // payload hashes each process received.
  std::vector<std::set<std::uint64_t>> replay(const Corpus& c) {
    const auto& dg = c.dg;
    std::vector<std::set<std::uint64_t>> got(socks.size());
    std::atomic<bool> running{true};
    std::vector<std::thread> rx;
    for (std::size_t i = 0; i < socks.size(); ++i)
      rx.emplace_back([&, i] {
        std::uint8_t buf[2048];
        auto drain = [&](int timeout_ms) {
          for (;;) {
            pollfd p{socks[i].fd(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return;
            ssize_t n = ::recv(socks[i].fd(), buf, sizeof buf, 0);
            if (n > 0) got[i].insert(fnv(buf, static_cast<std::size_t>(n)));
          }
        };
        while (running) drain(20);
        drain(300);
      });
    for (std::size_t i = 0; i < dg.size(); ++i) {
      REQUIRE_OK(sensor->send_to(testbed::Topology::service_ip, kServicePort, dg[i]));
      if (i % 32 == 31) std::this_thread::sleep_for(std::chrono::microseconds(400));
    }
    running = false;
    for (auto& t : rx) t.join();
    return got;
  }

  TargetStats stats_of(std::size_t i) {
    auto ts = edge->target_stats(kStream);
    REQUIRE_OK(ts);
    for (const auto& t : *ts)
      if (t.process == "proc" + std::to_string(i)) return t;
    FAIL("no stats for proc" << i);
    return {};
  }

  std::vector<Case> cases;
  std::vector<testbed::UdpSocket> socks;
  std::optional<testbed::UdpSocket> sensor;
};

std::uint64_t sum4(const std::uint64_t (&a)[4]) { return a[0] + a[1] + a[2] + a[3]; }

// What one process got, frame by frame (frames in decode order, as sent).
struct Outcome {
  std::map<int, bool> kept;  // frame -> kept (whole); a cut frame fails the check
  std::vector<std::vector<std::uint8_t>> delivered;  // in the order sent
};

Outcome outcome_of(const std::set<std::uint64_t>& got, const Corpus& c) {
  Outcome o;
  for (const auto& [f, idx] : c.frame_dgrams) {
    std::size_t n = 0;
    for (auto i : idx) n += got.count(fnv(c.dg[i].data(), c.dg[i].size()));
    INFO("frame " << f << " (" << to_string(c.frame_class.at(f)) << "): " << n << " of " << idx.size()
                  << " datagrams delivered");
    CHECK((n == 0 || n == idx.size()));  // whole frames only
    o.kept[f] = n > 0;
  }
  for (const auto& d : c.dg)
    if (got.count(fnv(d.data(), d.size()))) o.delivered.push_back(d);
  return o;
}

// The frames from the second ref frame on, grouped by GOP (each starting at
// its ref frame): every order drops disp frames only until a stream has
// shown a whole GOP.
std::vector<std::vector<int>> gops_after_first(const Corpus& c) {
  std::vector<std::vector<int>> gops;
  int refs = 0;
  for (const auto& [f, cls] : c.frame_class) {
    if (cls == FrameClass::ref && ++refs >= 2) gops.emplace_back();
    if (refs >= 2) gops.back().push_back(f);
  }
  gops.pop_back();  // the last GOP may be cut short by the clip's end
  return gops;
}

// Checks common to every order: the byte share, and that the delivered
// frames decode (in each GOP nothing after a dropped diff frame or a dropped
// ref frame; ffmpeg reports no error).
void check_common(const Case& k, const Outcome& o, const TargetStats& s, const Corpus& c) {
  const double dropped = static_cast<double>(sum4(s.dropped_bytes)) / static_cast<double>(c.total_bytes);
  INFO("dropped " << dropped << " of the bytes");
  CHECK(std::fabs(dropped - k.p) <= 0.02);
  CHECK(s.partial == 0);
  bool ref_kept = true, broken = false;
  int violations = 0;
  for (const auto& [f, kept] : o.kept) {
    const FrameClass cls = c.frame_class.at(f);
    if (cls == FrameClass::ref) {
      ref_kept = kept;
      broken = false;
      continue;
    }
    if (kept && (!ref_kept || broken)) ++violations;
    if (!kept && cls == FrameClass::diff) broken = true;
  }
  CHECK(violations == 0);
  const std::string errors = decode_errors(o.delivered);
  INFO("ffmpeg on the delivered datagrams: " << errors);
  CHECK(errors.empty());
}

double share(const Corpus& c, FrameClass k) {
  return static_cast<double>(c.class_bytes[static_cast<int>(k)]) / static_cast<double>(c.total_bytes);
}

}  // namespace

TEST_CASE("frame_aware's drop orders: each drops whole frames at p, in its own shape, and decodes",
          "[kernel][replication][frame_aware][order]") {
  const Corpus& c = corpus();
  const double disp = share(c, FrameClass::disp), diff = share(c, FrameClass::diff);
  INFO(c.frame_class.size() << " frames; byte shares disp " << disp << ", diff " << diff << ", ref "
                            << share(c, FrameClass::ref));
  // p within half the disp share (two of them) and beyond it (into the
  // GOPs' tails); the corpus's disp share is about 0.52, diff 0.35.
  REQUIRE(disp > 0.5);
  REQUIRE(disp < 0.6);
  REQUIRE(disp + diff > 0.8);
  const std::vector<double> ps{0.10, 0.25, 0.60};
  std::vector<Case> cases;
  for (DropOrder o : {DropOrder::disp, DropOrder::tail, DropOrder::thin})
    for (double p : ps) cases.push_back({o, p});
  OrderFixture fx(cases);
  const auto got = fx.replay(c);
  const auto gops = gops_after_first(c);
  REQUIRE(gops.size() > 30);

  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& k = cases[i];
    INFO(to_string(Policy::frame_aware(k.p, k.order)));
    const Outcome o = outcome_of(got[i], c);
    const TargetStats s = fx.stats_of(i);
    check_common(k, o, s, c);
    // Dropped frames of each class, and in decode order.
    std::map<FrameClass, int> dropped;
    std::vector<int> dropped_frames;
    for (const auto& [f, kept] : o.kept)
      if (!kept) {
        dropped[c.frame_class.at(f)]++;
        dropped_frames.push_back(f);
      }
    int disp_frames = 0;
    for (const auto& [f, cls] : c.frame_class) disp_frames += cls == FrameClass::disp ? 1 : 0;
    INFO("dropped frames: disp " << dropped[FrameClass::disp] << " of " << disp_frames << ", diff "
                                 << dropped[FrameClass::diff] << ", ref " << dropped[FrameClass::ref]);

    if (k.order == DropOrder::disp || k.order == DropOrder::thin) {
      // disp frames before any diff frame: within the disp share no diff or
      // ref frame goes; beyond it, every disp frame after the first GOP.
      if (k.p < disp) {
        CHECK(dropped[FrameClass::diff] == 0);
      } else {
        int disp_kept = 0;
        for (const auto& g : gops)
          for (int f : g) disp_kept += c.frame_class.at(f) == FrameClass::disp && o.kept.at(f) ? 1 : 0;
        CHECK(disp_kept == 0);
      }
      CHECK(dropped[FrameClass::ref] == 0);
    }
    if (k.order == DropOrder::tail) {
      // GOP tails first: in every GOP after the first, what goes is one run
      // of frames ending at the next ref frame, disp and diff alike.
      int not_a_tail = 0;
      std::vector<int> tails;  // frames each GOP lost
      for (const auto& g : gops) {
        bool dropping = false;
        int n = 0;
        for (int f : g) {
          if (!o.kept.at(f)) dropping = true;
          else if (dropping) ++not_a_tail;
          n += o.kept.at(f) ? 0 : 1;
        }
        tails.push_back(n);
      }
      std::string lengths;
      for (int n : tails) lengths += std::to_string(n) + " ";
      INFO("frames lost by each GOP: " << lengths);
      CHECK(not_a_tail == 0);
      CHECK(dropped[FrameClass::diff] > 0);  // not disp first
      CHECK(dropped[FrameClass::ref] == 0);
      // Every GOP loses about the same tail.
      CHECK(*std::max_element(tails.begin(), tails.end()) - *std::min_element(tails.begin(), tails.end()) <= 3);
    }
    if (k.order == DropOrder::thin && k.p <= disp / 2) {
      // An even thinning (after the first GOP, until which the stream's mix
      // is not known): no two dropped frames in a row while at most every
      // other disp frame goes, and no gap between dropped frames (in frames,
      // decode order) above twice their mean.
      std::vector<int> gaps;
      int consecutive = 0;
      for (std::size_t j = 1; j < dropped_frames.size(); ++j) {
        if (dropped_frames[j - 1] < gops.front().front()) continue;  // the first GOP: mix unknown
        consecutive += dropped_frames[j] == dropped_frames[j - 1] + 1 ? 1 : 0;
        gaps.push_back(dropped_frames[j] - dropped_frames[j - 1]);
      }
      REQUIRE(gaps.size() > 20);
      double mean = 0;
      for (int g : gaps) mean += g;
      mean /= static_cast<double>(gaps.size());
      const int widest = *std::max_element(gaps.begin(), gaps.end());
      std::string all;
      for (int g : gaps) all += std::to_string(g) + " ";
      INFO(consecutive << " dropped frames right after a dropped one; gaps: mean " << mean << ", widest "
                       << widest << ": " << all);
      CHECK(consecutive == 0);
      CHECK(widest <= 2 * mean + 1);
    }
  }
}

TEST_CASE("frame_aware's thin on a stream that allows no thinning drops GOP tails",
          "[kernel][replication][frame_aware][order]") {
  // I and P frames only: every P frame is referenced by the next, so no
  // frame can go alone (no disp class): thin drops GOP tails, sized by the
  // debt as disp's level 1, spread over the GOPs, and every delivered frame
  // decodes.
  const Corpus& c = corpus(0);
  REQUIRE(share(c, FrameClass::disp) == 0);
  const Case k{DropOrder::thin, 0.20};
  OrderFixture fx({k});
  const auto got = fx.replay(c);
  const auto gops = gops_after_first(c);
  REQUIRE(gops.size() > 30);
  const Outcome o = outcome_of(got[0], c);
  check_common(k, o, fx.stats_of(0), c);
  int not_a_tail = 0, tails = 0, refs = 0;
  for (const auto& g : gops) {
    bool dropping = false;
    for (int f : g) {
      if (!o.kept.at(f)) dropping = true;
      else if (dropping) ++not_a_tail;
      refs += c.frame_class.at(f) == FrameClass::ref && !o.kept.at(f) ? 1 : 0;
    }
    tails += dropping ? 1 : 0;
  }
  INFO(tails << " of " << gops.size() << " GOPs lost a tail");
  CHECK(not_a_tail == 0);
  CHECK(refs == 0);
  CHECK(tails >= static_cast<int>(gops.size()) * 3 / 4);
}
