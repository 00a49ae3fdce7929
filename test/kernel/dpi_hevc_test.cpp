// SPDX-License-Identifier: Apache-2.0
// HEVC intra pictures that are not IRAPs, run by the kernel's DPI on crafted
// datagrams: their first slice segment's slice_type makes them ref, with the
// slice header's num_extra_slice_header_bits taken from the stream's PPS, and
// the frames read without a PPS counted (docs/DPI.md, HEVC intra pictures).
#include <string>
#include <vector>

#include "../support/edge_fixture.hpp"
#include "../support/ts.hpp"
#include "qocnet/sensor.hpp"

using namespace qocnet;
using namespace qocnet::test;
using T = TsBuilder;

namespace {

std::uint16_t next_port() {
  static std::uint16_t p = 43000;
  return p++;
}

// "0101..." -> bytes, the bits then a stop bit and zeros to the byte's end.
std::vector<std::uint8_t> rbsp(std::string bits) {
  bits += "1";
  while (bits.size() % 8) bits += "0";
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < bits.size(); i += 8)
    out.push_back(static_cast<std::uint8_t>(std::stoi(bits.substr(i, 8), nullptr, 2)));
  return out;
}

std::string bits_of(unsigned v, int n) {
  std::string s;
  for (int i = n - 1; i >= 0; --i) s += ((v >> i) & 1) ? '1' : '0';
  return s;
}

void append(std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
}

const std::vector<std::uint8_t> kAud{0, 0, 0, 1, 0x46, 0x01, 0x50};

// An HEVC PPS NAL (type 34) with its first fields; the rest is filler.
std::vector<std::uint8_t> pps(unsigned pps_id, unsigned extra_bits) {
  std::vector<std::uint8_t> n{0, 0, 1, 34 << 1, 0x01};
  append(n, rbsp(T::ue(pps_id) + T::ue(0) + "00" + bits_of(extra_bits, 3) + "0110"));
  append(n, {0xc1, 0x72, 0x44});
  return n;
}

// An HEVC slice segment NAL of `nal_type`: first_slice_segment_in_pic_flag
// (`first`), slice_pic_parameter_set_id, `reserved` (the
// slice_reserved_flag bits, as many as the PPS says), slice_type.
std::vector<std::uint8_t> slice(int nal_type, unsigned pps_id, const std::string& reserved,
                                unsigned slice_type, bool first = true) {
  std::vector<std::uint8_t> n{0, 0, 1, static_cast<std::uint8_t>(nal_type << 1), 0x01};
  append(n, rbsp(std::string(first ? "1" : "0") + T::ue(pps_id) + reserved + T::ue(slice_type) +
                 "1"));
  append(n, {0x88, 0x84, 0x21, 0xa0});
  return n;
}

// An access unit: AUD, the given NAL units in order.
std::vector<std::uint8_t> au(std::initializer_list<std::vector<std::uint8_t>> nals) {
  std::vector<std::uint8_t> es = kAud;
  for (const auto& n : nals) append(es, n);
  return es;
}

constexpr unsigned kB = 0, kP = 1, kI = 2;

Verdict run(EdgeFixture& fx, const Bytes& frame) {
  auto v = fx.edge->test_run(frame, 1);
  REQUIRE_OK(v);
  return *v;
}

StreamStats stats_of(EdgeFixture& fx, std::uint16_t port) {
  auto all = fx.edge->streams();
  REQUIRE_OK(all);
  for (const auto& s : *all)
    if (s.source_port == port) return s;
  FAIL("the edge keeps no state for the stream from port " << port);
  return {};
}

struct Frame {
  std::vector<std::uint8_t> es;  // the access unit's start
  FrameClass cls;
};

struct Case {
  const char* description;
  std::vector<Frame> frames;     // one PES start each, on one HEVC stream
  std::uint32_t pps_unknown;     // hevc_pps_unknown afterwards
};

}  // namespace

TEST_CASE("HEVC intra pictures that are not IRAPs are ref, by their slice_type", "[dpi][hevc]") {
  EdgeFixture fx(1);
  const std::vector<Case> cases{
      {"TRAIL_R (1) with I slices -> ref", {{au({pps(0, 0), slice(1, 0, "", kI)}), FrameClass::ref}}, 0},
      {"TSA_R (3) with I slices -> ref", {{au({pps(0, 0), slice(3, 0, "", kI)}), FrameClass::ref}}, 0},
      {"STSA_R (5) with I slices -> ref", {{au({pps(0, 0), slice(5, 0, "", kI)}), FrameClass::ref}}, 0},
      {"RADL_R (7) with I slices -> ref", {{au({pps(0, 0), slice(7, 0, "", kI)}), FrameClass::ref}}, 0},
      {"RASL_R (9) with I slices -> ref", {{au({pps(0, 0), slice(9, 0, "", kI)}), FrameClass::ref}}, 0},
      {"TRAIL_R with P slices -> diff", {{au({pps(0, 0), slice(1, 0, "", kP)}), FrameClass::diff}}, 0},
      {"TRAIL_R with B slices -> diff", {{au({pps(0, 0), slice(1, 0, "", kB)}), FrameClass::diff}}, 0},
      {"a large pps_id (63) is read", {{au({pps(63, 0), slice(1, 63, "", kI)}), FrameClass::ref}}, 0},
      {"TRAIL_N (0) with I slices: no picture refers to it -> disp",
       {{au({pps(0, 0), slice(0, 0, "", kI)}), FrameClass::disp}}, 0},
      {"CRA (21) -> ref whatever its slices", {{au({pps(0, 0), slice(21, 0, "", kP)}), FrameClass::ref}}, 0},
      {"reserved VCL type 11 -> diff, as before", {{au({pps(0, 0), slice(11, 0, "", kI)}), FrameClass::diff}}, 0},
      {"a first segment that is not the picture's (flag 0) cannot be read -> ref",
       {{au({pps(0, 0), slice(1, 0, "", kB, false)}), FrameClass::ref}}, 0},
      // num_extra_slice_header_bits = 2: the reserved bits "11" then I; read
      // with 0 extra bits the slice_type would be ue("1") = B (diff).
      {"the PPS's num_extra_slice_header_bits is honoured (I after 2 reserved bits)",
       {{au({pps(0, 2), slice(1, 0, "11", kI)}), FrameClass::ref}}, 0},
      // ... and "01" then B: read with 0 extra bits, ue("011") = I (ref).
      {"the PPS's num_extra_slice_header_bits is honoured (B after 2 reserved bits)",
       {{au({pps(0, 2), slice(1, 0, "01", kB)}), FrameClass::diff}}, 0},
      {"7 extra bits",
       {{au({pps(5, 7), slice(1, 5, "1111111", kI)}), FrameClass::ref},
        {au({slice(1, 5, "0110000", kB)}), FrameClass::diff}}, 0},
      {"the PPS is learnt once and kept for the frames after it",
       {{au({pps(0, 2), slice(19, 0, "", kI)}), FrameClass::ref},
        {au({slice(1, 0, "11", kI)}), FrameClass::ref},
        {au({slice(1, 0, "01", kB)}), FrameClass::diff},
        {au({slice(0, 0, "11", kB)}), FrameClass::disp}}, 0},
      {"a later PPS replaces the earlier one",
       {{au({pps(0, 2), slice(1, 0, "01", kB)}), FrameClass::diff},
        {au({pps(0, 0), slice(1, 0, "", kI)}), FrameClass::ref},
        {au({slice(1, 0, "", kP)}), FrameClass::diff}}, 0},
      // 3 bytes after its header (a real PPS has at least 4): the scanner's
      // 5th byte is the next start code's first zero.
      {"a PPS shorter than the bytes collected does not hide the slice after it",
       {{au({{0, 0, 1, 34 << 1, 0x01, 0xc5, 0xc1, 0x72}, slice(1, 0, "11", kI)}), FrameClass::ref}}, 0},
      {"no PPS seen: num_extra_slice_header_bits taken as 0, the frames counted",
       {{au({slice(1, 0, "", kI)}), FrameClass::ref},
        {au({slice(1, 0, "", kP)}), FrameClass::diff},
        {au({slice(19, 0, "", kI)}), FrameClass::ref},  // IRAP: not read, not counted
        {au({slice(0, 0, "", kI)}), FrameClass::disp}}, 2},
      {"a slice of another pps_id than the PPS seen: taken as 0, counted",
       {{au({pps(0, 2), slice(1, 1, "", kI)}), FrameClass::ref},
        {au({slice(1, 0, "11", kI)}), FrameClass::ref}}, 1},
  };
  for (const auto& c : cases) {
    INFO(c.description);
    const std::uint16_t port = next_port();
    REQUIRE(run(fx, ts_datagram(port, {T::pat(), T::pmt(0x24)})).cls == FrameClass::ref);
    int i = 0;
    for (const auto& f : c.frames) {
      INFO("frame " << i);
      const Verdict v = run(fx, ts_datagram(port, {T::pes_start(f.es, static_cast<std::uint8_t>(i))}));
      CHECK(v.codec == Codec::hevc);
      CHECK_FALSE(v.pending);
      CHECK(to_string(v.cls) == std::string(to_string(f.cls)));
      CHECK(to_string(v.frame_class) == std::string(to_string(f.cls)));
      ++i;
    }
    CHECK(stats_of(fx, port).hevc_pps_unknown == c.pps_unknown);
  }
}

TEST_CASE("an HEVC PPS and slice header split across datagrams are read whole", "[dpi][hevc]") {
  EdgeFixture fx(1);
  const std::uint16_t port = next_port();
  REQUIRE(run(fx, ts_datagram(port, {T::pat(), T::pmt(0x24)})).cls == FrameClass::ref);
  // The PES start's elementary stream (170 bytes after the 18-byte TS and PES
  // headers) ends 2 bytes into the PPS's fields; the rest of the PPS, then the
  // slice whose header needs its num_extra_slice_header_bits (2), open the
  // next TS packet, in the next datagram.
  const auto p = pps(0, 2);
  std::vector<std::uint8_t> es = kAud;
  append(es, {0, 0, 1, 39 << 1, 0x01});  // a prefix SEI as filler
  const std::size_t room = 170 - es.size() - 7;  // the PPS's start code, header, 2 bytes
  es.insert(es.end(), room, 0xff);
  es.insert(es.end(), p.begin(), p.begin() + 7);
  REQUIRE(es.size() == 170);
  TsPacket start = T::pes_start(es, 0);
  REQUIRE(start[187] == p[6]);
  TsPacket cont = T::packet(kVideoPid, false, 1);
  std::vector<std::uint8_t> rest(p.begin() + 7, p.end());
  append(rest, slice(1, 0, "11", kI));
  std::copy(rest.begin(), rest.end(), cont.begin() + 4);

  const Verdict first = run(fx, ts_datagram(port, {start}));
  CHECK(first.pending);
  CHECK(first.cls == FrameClass::ref);  // not known yet
  const Verdict second = run(fx, ts_datagram(port, {cont}));
  CHECK_FALSE(second.pending);
  CHECK(second.cls == FrameClass::ref);
  CHECK(stats_of(fx, port).hevc_pps_unknown == 0);

  // The slice header itself split: its NAL header's second byte and the first
  // header bits at the end of one datagram, the rest in the next.
  const auto s = slice(1, 0, "01", kB);  // diff only when the 2 extra bits are skipped
  std::vector<std::uint8_t> es2 = kAud;
  append(es2, {0, 0, 1, 39 << 1, 0x01});
  es2.insert(es2.end(), 170 - es2.size() - 6, 0xff);
  es2.insert(es2.end(), s.begin(), s.begin() + 6);
  REQUIRE(es2.size() == 170);
  TsPacket cont2 = T::packet(kVideoPid, false, 3);
  std::copy(s.begin() + 6, s.end(), cont2.begin() + 4);
  CHECK(run(fx, ts_datagram(port, {T::pes_start(es2, 2)})).pending);
  const Verdict fourth = run(fx, ts_datagram(port, {cont2}));
  CHECK_FALSE(fourth.pending);
  CHECK(fourth.cls == FrameClass::diff);
  CHECK(stats_of(fx, port).hevc_pps_unknown == 0);
}

TEST_CASE("the PPS of a frame that random_access_indicator makes ref is learnt", "[dpi][hevc]") {
  // Muxers (FFmpeg's among them) set random_access_indicator on IRAP frames,
  // the ones that carry the parameter sets. Such a frame is ref at its PES
  // start, and stays known (not pending) while the scanner reads on to its
  // first slice for the PPS, here one TS packet and one datagram later.
  EdgeFixture fx(1);
  const std::uint16_t port = next_port();
  run(fx, ts_datagram(port, {T::pat(), T::pmt(0x24)}));
  std::vector<std::uint8_t> es = kAud;
  append(es, {0, 0, 1, 39 << 1, 0x01});  // a prefix SEI
  es.insert(es.end(), 100, 0xff);
  TsPacket start = T::pes_start(es, 0, true);
  TsPacket cont = T::packet(kVideoPid, false, 1, 0xff);
  const auto rest = au({pps(0, 2), slice(21, 0, "", kI)});  // CRA
  std::copy(rest.begin(), rest.end(), cont.begin() + 4);
  const Verdict first = run(fx, ts_datagram(port, {start}));
  CHECK(first.cls == FrameClass::ref);
  CHECK(first.frame_class == FrameClass::ref);
  CHECK_FALSE(first.pending);
  CHECK(first.new_frame);
  CHECK(run(fx, ts_datagram(port, {cont})).cls == FrameClass::ref);
  // The next frames need the PPS's 2 extra bits.
  CHECK(run(fx, ts_datagram(port, {T::pes_start(au({slice(1, 0, "11", kI)}), 2)})).cls == FrameClass::ref);
  CHECK(run(fx, ts_datagram(port, {T::pes_start(au({slice(1, 0, "01", kB)}), 3)})).cls == FrameClass::diff);
  // A frame with random_access_indicator and no PPS: ref, whatever its slices.
  const Verdict rai_p = run(fx, ts_datagram(port, {T::pes_start(au({slice(1, 0, "11", kP)}), 4, true)}));
  CHECK(rai_p.cls == FrameClass::ref);
  CHECK_FALSE(rai_p.pending);
  CHECK(run(fx, ts_datagram(port, {T::pes_start(au({slice(1, 0, "01", kB)}), 5)})).cls == FrameClass::diff);
  const auto st = stats_of(fx, port);
  CHECK(st.hevc_pps_unknown == 0);
  CHECK(st.frames == 5);
  CHECK(st.datagrams[static_cast<int>(FrameClass::ref)] == 5);  // PSI, CRA x2, I, rai P
}

TEST_CASE("a PMT that changes the video stream forgets its PPS", "[dpi][hevc]") {
  EdgeFixture fx(1);
  const std::uint16_t port = next_port();
  run(fx, ts_datagram(port, {T::pat(), T::pmt(0x24)}));
  CHECK(run(fx, ts_datagram(port, {T::pes_start(au({pps(0, 2), slice(1, 0, "11", kI)}), 0)})).cls ==
        FrameClass::ref);
  // Another video PID: its pictures' PPS has not been seen.
  run(fx, ts_datagram(port, {T::pat(), T::pmt(0x24, 0x0222)}));
  const Verdict v =
      run(fx, ts_datagram(port, {T::pes_start(au({slice(1, 0, "", kI)}), 0, false, 0x0222)}));
  CHECK(v.cls == FrameClass::ref);
  CHECK(stats_of(fx, port).hevc_pps_unknown == 1);
}

TEST_CASE("sensor: HEVC intra pictures that are not IRAPs are ref", "[sensor][dpi][hevc]") {
  auto topo = testbed::Topology::create(1);
  REQUIRE_OK(topo);
  auto s = testbed::in_namespace((*topo)->sensor, [] { return Sensor::create(); });
  REQUIRE_OK(s);
  const std::uint16_t port = next_port();
  auto run_s = [&](const Bytes& f) {
    auto v = s->test_run(f);
    REQUIRE_OK(v);
    return *v;
  };
  run_s(ts_datagram(port, {T::pat(), T::pmt(0x24)}));
  CHECK(run_s(ts_datagram(port, {T::pes_start(au({pps(0, 2), slice(1, 0, "11", kI)}), 0)})).cls ==
        FrameClass::ref);
  CHECK(run_s(ts_datagram(port, {T::pes_start(au({slice(1, 0, "01", kB)}), 1)})).cls ==
        FrameClass::diff);
}
