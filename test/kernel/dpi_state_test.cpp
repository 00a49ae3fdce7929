// SPDX-License-Identifier: Apache-2.0
// State the DPI keeps, or cannot keep: a datagram whose stream gets no state
// borrows none (edge and sensor, a 1-entry stream table), the sensor's
// per-stream state under flow churn, and PSI that must teach nothing.
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <map>
#include <thread>

#include "../support/edge_fixture.hpp"
#include "../support/ts.hpp"
#include "dpi_view.hpp"
#include "fd.hpp"
#include "qocnet/sensor.hpp"

using namespace qocnet;
using namespace qocnet::test;
using T = TsBuilder;
using qocnet::detail::UniqueFd;

namespace {

constexpr std::uint16_t kPortA = 42001;
constexpr std::uint16_t kPortB = 42002;

const StreamId kStreamA{testbed::Topology::sensor_ip, kPortA, 5000};

// The map `name` of a loaded program, by the program's kernel id.
UniqueFd map_of(std::uint32_t prog_id, const std::string& name) {
  UniqueFd prog(bpf_prog_get_fd_by_id(prog_id));
  REQUIRE(prog.get() >= 0);
  std::uint32_t ids[64] = {};
  bpf_prog_info info{};
  info.nr_map_ids = 64;
  info.map_ids = reinterpret_cast<std::uint64_t>(ids);
  std::uint32_t len = sizeof info;
  REQUIRE(bpf_obj_get_info_by_fd(prog.get(), &info, &len) == 0);
  for (std::uint32_t i = 0; i < info.nr_map_ids && i < 64; ++i) {
    UniqueFd m(bpf_map_get_fd_by_id(ids[i]));
    bpf_map_info mi{};
    std::uint32_t ml = sizeof mi;
    if (m.get() >= 0 && bpf_obj_get_info_by_fd(m.get(), &mi, &ml) == 0 && name == mi.name) return m;
  }
  FAIL("program " << prog_id << " has no map " << name);
  return UniqueFd();
}

// Streams A and B take turns through a DPI program (BPF_PROG_TEST_RUN on its
// fd, one CPU), while another thread on the other CPU keeps deleting B's
// stream state, as LRU eviction by other streams' datagrams on other CPUs
// does: some of B's datagrams then find no state for their stream (the
// table "full"), right after one of A's was booked in A's. Returns the TC
// actions B's datagrams got.
// The race needs two CPUs.
bool two_cpus() {
  if (std::thread::hardware_concurrency() >= 2) return true;
  WARN("one CPU: a stream table cannot be contended from another CPU; not run");
  return false;
}

std::map<int, int> race_for_state(std::uint32_t prog_id, std::uint32_t ifindex,
                                  const testbed::Namespace& ns, std::uint16_t port_b, int rounds) {
  UniqueFd prog(bpf_prog_get_fd_by_id(prog_id));
  REQUIRE(prog.get() >= 0);
  UniqueFd streams = map_of(prog_id, "qoc_streams");
  auto key = detail::stream_key_of({testbed::Topology::sensor_ip, port_b, 5000});
  REQUIRE_OK(key);
  const Bytes frames[2] = {ts_datagram(kPortA, {T::pat(), T::pmt()}),
                           ts_datagram(port_b, {T::pat(), T::pmt()})};
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  auto pin = [cpus](int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % cpus, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  };
  std::atomic<bool> done{false};
  std::thread deleter([&] {
    pin(1);
    // In a 1-entry LRU table, a third stream's entry evicts B's (as
    // another stream's datagram on another CPU would), or holds the one
    // entry while B's datagram needs it.
    qoc_stream_key other = *key;
    other.sport = htons(port_b + 1);
    qoc_stream zero{};
    while (!done) bpf_map_update_elem(streams.get(), &other, &zero, BPF_ANY);
  });
  std::map<int, int> actions;
  testbed::in_namespace(ns, [&] {
    pin(0);
    for (int i = 0; i < 2 * rounds; ++i) {
      const Bytes& f = frames[i % 2];
      __sk_buff ctx{};
      ctx.ifindex = ifindex;
      LIBBPF_OPTS(bpf_test_run_opts, opts);
      opts.data_in = f.data();
      opts.data_size_in = static_cast<__u32>(f.size());
      opts.ctx_in = &ctx;
      opts.ctx_size_in = sizeof(ctx);
      opts.repeat = 1;
      REQUIRE(bpf_prog_test_run_opts(prog.get(), &opts) == 0);
      if (i % 2 == 1) actions[static_cast<int>(opts.retval)]++;
    }
  });
  done = true;
  deleter.join();
  return actions;
}

}  // namespace

TEST_CASE("edge: a datagram whose stream gets no state borrows no other stream's",
          "[dpi][stream_full]") {
  if (!two_cpus()) return;
  EdgeOptions o;
  o.max_streams = 1;
  EdgeFixture fx(1, o, true);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->add_process({"proc0", "e1", testbed::Topology::process_mac(0),
                                   testbed::Topology::process_ip(0), 6000}));
  REQUIRE_OK(fx.edge->set_clone_targets(kStreamA, {"proc0"}));
  // The race is won now and then: a few chunks until the table refused
  // some datagrams a state (about 10 in 20 000 on 2 CPUs).
  std::map<int, int> b_actions;
  auto d = fx.edge->dpi_counters();
  for (int chunk = 0; chunk < 6 && d.ok() && d->stream_table_full < 5; ++chunk) {
    for (auto [k, v] : race_for_state(fx.edge->program_id(), fx.ifindex("e0"), fx.topo->edge, kPortB, 10000))
      b_actions[k] += v;
    d = fx.edge->dpi_counters();
  }
  REQUIRE_OK(d);
  INFO("stream_table_full " << d->stream_table_full);
  REQUIRE(d->stream_table_full >= 1);
  // Stream B has no targets and e0 no pair: every datagram of it goes to the
  // stack, never cloned or redirected to A's process.
  for (auto [action, n] : b_actions) {
    INFO(n << " datagrams of stream B got " << tc_action_name(action));
    CHECK(action == TC_ACT_OK);
  }
  auto ts = fx.edge->target_stats(kStreamA);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 1);
  std::uint64_t delivered = 0;
  for (auto n : ts->front().delivered) delivered += n;
  // Every datagram booked for A's process was A's: at most half of those run.
  CHECK(delivered <= d->seen / 2);
  CHECK(d->seen == d->not_udp + d->not_ts + d->ts);
  CHECK(d->ts == d->by_class[0] + d->by_class[1] + d->by_class[2] + d->by_class[3]);
}

namespace {

// A topology with a Sensor on its uplink s0 (TC egress).
struct SensorBed {
  explicit SensorBed(SensorOptions o = {}) {
    auto t = testbed::Topology::create(1);
    REQUIRE_OK(t);
    topo = std::move(*t);
    auto s = testbed::in_namespace(topo->sensor, [&] { return Sensor::create(o); });
    REQUIRE_OK(s);
    sensor = std::make_unique<Sensor>(std::move(*s));
    REQUIRE_OK(sensor->attach_uplink("s0"));
  }
  unsigned s0() const {
    return testbed::in_namespace(topo->sensor, [] { return ::if_nametoindex("s0"); });
  }
  Verdict run(const Bytes& f) const {
    auto v = sensor->test_run(f);
    REQUIRE_OK(v);
    return *v;
  }
  SensorStreamStats stats_of(std::uint16_t port) const {
    auto all = sensor->streams();
    REQUIRE_OK(all);
    for (const auto& s : *all)
      if (s.stream.source_port == port) return s;
    FAIL("the sensor keeps no state for the stream from port " << port);
    return {};
  }
  std::unique_ptr<testbed::Topology> topo;
  std::unique_ptr<Sensor> sensor;
};

std::uint64_t sum4(const std::uint64_t (&a)[4]) { return a[0] + a[1] + a[2] + a[3]; }

}  // namespace

TEST_CASE("sensor: a datagram whose stream gets no state gets no other stream's policy",
          "[sensor][stream_full]") {
  if (!two_cpus()) return;
  SensorOptions o;
  o.max_streams = 1;
  SensorBed bed(o);
  // Stream A's policy drops everything; B is under the default, keep.
  REQUIRE_OK(bed.sensor->set_policy({testbed::Topology::sensor_ip, kPortA, 5000}, Policy::uniform(1.0)));
  std::map<int, int> b_actions;
  auto d = bed.sensor->dpi_counters();
  for (int chunk = 0; chunk < 6 && d.ok() && d->stream_table_full < 5; ++chunk) {
    for (auto [k, v] : race_for_state(bed.sensor->program_id(), bed.s0(), bed.topo->sensor, kPortB, 10000))
      b_actions[k] += v;
    d = bed.sensor->dpi_counters();
  }
  REQUIRE_OK(d);
  INFO("stream_table_full " << d->stream_table_full);
  REQUIRE(d->stream_table_full >= 1);
  for (auto [action, n] : b_actions) {
    INFO(n << " datagrams of stream B got " << tc_action_name(action));
    CHECK(action == TC_ACT_OK);
  }
}

TEST_CASE("sensor: the stream budget holds under churn of short TS flows", "[sensor][churn]") {
  SensorBed bed;
  // 12 000 short flows that look like TS (PAT + PMT + a video frame start),
  // each from its own source port, under a policy that keeps state.
  REQUIRE_OK(bed.sensor->set_default_policy(Policy::frame_aware(0.3)));
  for (int i = 0; i < 12000; ++i) {
    const auto port = static_cast<std::uint16_t>(10000 + i);
    bed.run(ts_datagram(port, {T::pat(), T::pmt(), T::pes_start(T::h264_au(0, 1, 6), 0)}));
  }
  // Then real streams: every datagram counted, and the drop policies drop.
  const std::uint16_t kDiff = 30001, kFrame = 30002;
  REQUIRE_OK(bed.sensor->set_policy({testbed::Topology::sensor_ip, kDiff, 5000}, Policy::differential(0.3)));
  REQUIRE_OK(bed.sensor->set_policy({testbed::Topology::sensor_ip, kFrame, 5000}, Policy::frame_aware(0.3)));
  // A GOP of 1 ref, then diff and disp frames, 3 datagrams a frame, 4 GOPs.
  std::size_t sent = 0;
  for (int gop = 0; gop < 4; ++gop)
    for (int f = 0; f < 12; ++f) {
      const auto au = f == 0 ? T::h264_au(3, 5, 7) : f % 3 == 1 ? T::h264_au(2, 1, 5) : T::h264_au(0, 1, 6);
      const std::uint8_t cc = static_cast<std::uint8_t>(3 * (gop * 12 + f));
      std::vector<std::vector<TsPacket>> dgrams{
          {T::pat(), T::pmt(), T::pes_start(au, cc), T::packet(kVideoPid, false, cc + 1)},
          {T::packet(kVideoPid, false, cc + 1), T::packet(kVideoPid, false, cc + 1)},
          {T::packet(kVideoPid, false, cc + 2), T::packet(kVideoPid, false, cc + 2)}};
      for (const auto& d : dgrams) {
        bed.run(ts_datagram(kDiff, d));
        bed.run(ts_datagram(kFrame, d));
        ++sent;
      }
    }
  for (std::uint16_t port : {kDiff, kFrame}) {
    INFO("stream from port " << port);
    const SensorStreamStats s = bed.stats_of(port);
    CHECK(sum4(s.dpi.datagrams) == sent);
    CHECK(sum4(s.sent) + sum4(s.dropped) == sent);
    CHECK(sum4(s.dropped) > 0);
  }
}

namespace {

// A PSI section in one TS packet with PUSI: pointer_field, table_id, the
// section_syntax_indicator, section_length (`slen`, or the body's true
// length when -1), the body after the 5-byte header, a CRC (not checked),
// and 0xff filler after it.
TsPacket psi(std::uint16_t pid, std::uint8_t table_id, std::vector<std::uint8_t> body, int slen = -1,
             std::uint8_t pointer = 0, bool ssi = true) {
  TsPacket p = T::packet(pid, true, 0, 0xff);
  const int len = slen >= 0 ? slen : static_cast<int>(5 + body.size() + 4);
  std::vector<std::uint8_t> s{pointer};
  s.insert(s.end(), pointer, 0xff);
  s.insert(s.end(), {table_id, static_cast<std::uint8_t>((ssi ? 0xb0 : 0x30) | ((len >> 8) & 0x0f)),
                     static_cast<std::uint8_t>(len), 0x00, 0x01, 0xc1, 0x00, 0x00});
  s.insert(s.end(), body.begin(), body.end());
  s.insert(s.end(), {0xde, 0xad, 0xbe, 0xef});
  for (std::size_t i = 0; i < s.size() && 4 + i < p.size(); ++i) p[4 + i] = s[i];
  return p;
}

std::vector<std::uint8_t> pid_bytes(std::uint16_t pid) {
  return {static_cast<std::uint8_t>(0xe0 | (pid >> 8)), static_cast<std::uint8_t>(pid)};
}

// PAT body: program 1 -> pmt_pid.
std::vector<std::uint8_t> pat_body(std::uint16_t pmt_pid) {
  std::vector<std::uint8_t> b{0x00, 0x01};
  auto p = pid_bytes(pmt_pid);
  b.insert(b.end(), p.begin(), p.end());
  return b;
}

// PMT body: PCR PID, program_info_length `pil` (0 bytes of descriptors
// follow unless `descriptors`), then one ES entry (type, PID, ES_info_length).
std::vector<std::uint8_t> pmt_body(std::uint8_t type, std::uint16_t es_pid, std::uint16_t pil = 0,
                                   std::uint16_t eil = 0, std::size_t descriptors = 0,
                                   std::size_t es_descriptors = 0) {
  std::vector<std::uint8_t> b = pid_bytes(es_pid);
  b.insert(b.end(), {static_cast<std::uint8_t>(0xf0 | (pil >> 8)), static_cast<std::uint8_t>(pil)});
  b.insert(b.end(), descriptors, 0x00);
  b.push_back(type);
  auto p = pid_bytes(es_pid);
  b.insert(b.end(), p.begin(), p.end());
  b.insert(b.end(), {static_cast<std::uint8_t>(0xf0 | (eil >> 8)), static_cast<std::uint8_t>(eil)});
  b.insert(b.end(), es_descriptors, 0x00);
  return b;
}

struct BadPsi {
  const char* description;
  TsPacket table;
  bool pmt;  // a PMT (sent after a good PAT), else a PAT
};

}  // namespace

TEST_CASE("PSI with fields out of range teaches nothing and is malformed", "[dpi][psi]") {
  EdgeFixture fx(1);
  const std::uint16_t P = kPmtPid;
  const std::vector<BadPsi> cases{
      {"PAT section_length 5 (< 9); the filler after it reads as PMT PID 0x1FFF",
       psi(0, 0x00, {}, 5), false},
      {"PAT section_length 1022 (> 1021)", psi(0, 0x00, pat_body(P), 1022), false},
      {"PAT section_length 3 (shorter than its header)", psi(0, 0x00, pat_body(P), 3), false},
      {"PAT entries not a whole number of 4 bytes", psi(0, 0x00, {0x00, 0x01, 0xe1, 0x00, 0x00}), false},
      {"PAT pointer_field past the packet", psi(0, 0x00, pat_body(P), -1, 190), false},
      {"PAT section_syntax_indicator 0", psi(0, 0x00, pat_body(P), -1, 0, false), false},
      {"PAT of another table_id", psi(0, 0x02, pat_body(P)), false},
      {"PAT: PMT PID 0x1FFF (null packets)", psi(0, 0x00, pat_body(0x1fff)), false},
      {"PAT: PMT PID 0x0001 (reserved)", psi(0, 0x00, pat_body(0x0001)), false},
      {"PAT: PMT PID 0x000F (reserved)", psi(0, 0x00, pat_body(0x000f)), false},
      {"PMT section_length 5 (< 13); an H.264 entry after it",
       psi(P, 0x02, pmt_body(0x1b, kVideoPid), 5), true},
      {"PMT section_length 1022 (> 1021)", psi(P, 0x02, pmt_body(0x1b, kVideoPid), 1022), true},
      {"PMT program_info_length past the section", psi(P, 0x02, pmt_body(0x1b, kVideoPid, 0x3ff)), true},
      {"PMT program_info_length past the section by one",
       psi(P, 0x02, pmt_body(0x1b, kVideoPid, 1)), true},
      {"PMT ES_info_length past the section", psi(P, 0x02, pmt_body(0x1b, kVideoPid, 0, 0x3ff)), true},
      {"PMT ES_info_length past the section by one", psi(P, 0x02, pmt_body(0x1b, kVideoPid, 0, 1)), true},
      {"PMT pointer_field past the packet", psi(P, 0x02, pmt_body(0x1b, kVideoPid), -1, 200), true},
      {"PMT section_syntax_indicator 0", psi(P, 0x02, pmt_body(0x1b, kVideoPid), -1, 0, false), true},
      {"PMT video PID 0x1FFF (null packets)", psi(P, 0x02, pmt_body(0x1b, 0x1fff)), true},
      {"PMT video PID 0x0000 (the PAT's)", psi(P, 0x02, pmt_body(0x1b, 0x0000)), true},
      {"PMT video PID 0x000F (reserved)", psi(P, 0x02, pmt_body(0x24, 0x000f)), true},
      {"PMT video PID equal to the PMT's", psi(P, 0x02, pmt_body(0x1b, P)), true},
  };
  std::uint16_t port = 43000;
  auto run = [&](const Bytes& f) {
    auto v = fx.edge->test_run(f, 1);
    REQUIRE_OK(v);
    return *v;
  };
  auto stream_of = [&](std::uint16_t sport) {
    auto all = fx.edge->streams();
    REQUIRE_OK(all);
    for (const auto& s : *all)
      if (s.source_port == sport) return s;
    FAIL("no state for the stream from port " << sport);
    return StreamStats{};
  };

  // The control: the same builders, sane, teach the PMT and the video PID.
  {
    const std::uint16_t sport = port++;
    run(ts_datagram(sport, {psi(0, 0x00, pat_body(P))}));
    run(ts_datagram(sport, {psi(P, 0x02, pmt_body(0x1b, kVideoPid, 2, 3, 2, 3))}));
    const Verdict v = run(ts_datagram(sport, {T::pes_start(T::h264_au(2, 1, 5), 0)}));
    CHECK(v.cls == FrameClass::diff);
    CHECK(v.video_pid == kVideoPid);
    CHECK(stream_of(sport).ts_malformed == 0);
  }

  // A PAT that names the learnt video PID as the PMT's would turn video
  // into PSI: ignored, and the video stays video.
  {
    const std::uint16_t sport = port++;
    run(ts_datagram(sport, {psi(0, 0x00, pat_body(P)), psi(P, 0x02, pmt_body(0x1b, kVideoPid))}));
    run(ts_datagram(sport, {psi(0, 0x00, pat_body(kVideoPid))}));
    CHECK(stream_of(sport).ts_malformed == 1);
    CHECK(stream_of(sport).pmt_pid == P);
    const Verdict v = run(ts_datagram(sport, {T::pes_start(T::h264_au(2, 1, 5), 0)}));
    CHECK(v.cls == FrameClass::diff);
    CHECK(v.video);
    CHECK_FALSE(v.psi);
  }

  for (const auto& c : cases) {
    INFO(c.description);
    const std::uint16_t sport = port++;
    if (c.pmt) run(ts_datagram(sport, {psi(0, 0x00, pat_body(P))}));
    run(ts_datagram(sport, {c.table}));
    const StreamStats s = stream_of(sport);
    CHECK(s.ts_malformed == 1);
    CHECK(s.video_pid == 0);
    if (!c.pmt) CHECK(s.pmt_pid == 0);
    // Null packets stay null packets: not PSI, not video, not ref.
    const Verdict nul = run(ts_datagram(sport, std::vector<TsPacket>(7, T::packet(0x1fff, false, 0))));
    CHECK(to_string(nul.cls) == std::string("other"));
    CHECK_FALSE(nul.psi);
    CHECK_FALSE(nul.video);
    // A PES start on the video PID (or on 0x1FFF) is not video either.
    const Verdict vid = run(ts_datagram(sport, {T::pes_start(T::h264_au(2, 1, 5), 1)}));
    CHECK(to_string(vid.cls) == std::string("other"));
    const Verdict nvid = run(ts_datagram(sport, {T::pes_start(T::h264_au(2, 1, 5), 1, false, 0x1fff)}));
    CHECK(to_string(nvid.cls) == std::string("other"));
  }
}
