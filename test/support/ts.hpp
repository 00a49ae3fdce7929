// SPDX-License-Identifier: Apache-2.0
// Builds MPEG-TS packets (PAT, PMT, PES starts with H.264/HEVC NAL units,
// continuation, audio, null) for the DPI fixtures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "frames.hpp"

namespace qocnet::test {

inline constexpr std::uint16_t kPmtPid = 0x1000;
inline constexpr std::uint16_t kVideoPid = 0x100;
inline constexpr std::uint16_t kAudioPid = 0x101;

using TsPacket = std::array<std::uint8_t, 188>;

class TsBuilder {
 public:
  // A packet with header fields; payload filled with `fill` (no start codes).
  static TsPacket packet(std::uint16_t pid, bool pusi, std::uint8_t cc, std::uint8_t fill = 0xaa) {
    TsPacket p;
    p.fill(fill);
    p[0] = 0x47;
    p[1] = static_cast<std::uint8_t>((pusi ? 0x40 : 0) | ((pid >> 8) & 0x1f));
    p[2] = static_cast<std::uint8_t>(pid);
    p[3] = static_cast<std::uint8_t>(0x10 | (cc & 0x0f));
    return p;
  }

  static TsPacket pat(std::uint16_t pmt_pid = kPmtPid) {
    TsPacket p = packet(0, true, 0, 0xff);
    const std::uint8_t sec[] = {0x00,  // pointer_field
                                0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00,  // header, len 13
                                0x00, 0x01,  // program_number 1
                                static_cast<std::uint8_t>(0xe0 | (pmt_pid >> 8)),
                                static_cast<std::uint8_t>(pmt_pid),
                                0xde, 0xad, 0xbe, 0xef};  // CRC (not checked)
    std::copy(std::begin(sec), std::end(sec), p.begin() + 4);
    return p;
  }

  // PMT with one video stream (0x1b H.264 or 0x24 HEVC) and optionally audio.
  static TsPacket pmt(std::uint8_t video_type = 0x1b, std::uint16_t video_pid = kVideoPid,
                      bool audio = true, std::uint16_t pmt_pid = kPmtPid) {
    TsPacket p = packet(pmt_pid, true, 0, 0xff);
    std::vector<std::uint8_t> es;
    if (audio) es.insert(es.end(), {0x0f, static_cast<std::uint8_t>(0xe0 | (kAudioPid >> 8)),
                                    static_cast<std::uint8_t>(kAudioPid), 0xf0, 0x00});
    es.insert(es.end(), {video_type, static_cast<std::uint8_t>(0xe0 | (video_pid >> 8)),
                         static_cast<std::uint8_t>(video_pid), 0xf0, 0x00});
    const std::uint16_t slen = static_cast<std::uint16_t>(9 + es.size() + 4);
    std::vector<std::uint8_t> sec{0x00, 0x02, static_cast<std::uint8_t>(0xb0 | (slen >> 8)),
                                  static_cast<std::uint8_t>(slen), 0x00, 0x01, 0xc1, 0x00, 0x00,
                                  static_cast<std::uint8_t>(0xe0 | (video_pid >> 8)),
                                  static_cast<std::uint8_t>(video_pid), 0xf0, 0x00};
    sec.insert(sec.end(), es.begin(), es.end());
    sec.insert(sec.end(), {0xde, 0xad, 0xbe, 0xef});
    std::copy(sec.begin(), sec.end(), p.begin() + 4);
    return p;
  }

  // A PES start on `pid` whose elementary stream begins with `es` (the rest
  // of the packet is filler). `rai` sets random_access_indicator.
  static TsPacket pes_start(const std::vector<std::uint8_t>& es, std::uint8_t cc,
                            bool rai = false, std::uint16_t pid = kVideoPid,
                            std::uint32_t pts = 90000) {
    TsPacket p = packet(pid, true, cc);
    std::size_t off = 4;
    if (rai) {
      p[3] = static_cast<std::uint8_t>(0x30 | (cc & 0x0f));
      p[4] = 1;     // adaptation_field_length
      p[5] = 0x40;  // random_access_indicator
      off = 6;
    }
    const std::uint8_t hdr[] = {0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x80, 0x80, 0x05,
                                static_cast<std::uint8_t>(0x21 | ((pts >> 29) & 0x0e)),
                                static_cast<std::uint8_t>(pts >> 22),
                                static_cast<std::uint8_t>(0x01 | ((pts >> 14) & 0xfe)),
                                static_cast<std::uint8_t>(pts >> 7),
                                static_cast<std::uint8_t>(0x01 | ((pts << 1) & 0xfe))};
    std::copy(std::begin(hdr), std::end(hdr), p.begin() + static_cast<long>(off));
    off += sizeof hdr;
    for (std::size_t i = 0; i < es.size() && off + i < 188; ++i) p[off + i] = es[i];
    return p;
  }

  // An H.264 access unit's start: AUD, then a slice NAL with nal_ref_idc,
  // nal_unit_type (1 or 5) and slice_type, first_mb_in_slice = 0.
  static std::vector<std::uint8_t> h264_au(int ref_idc, int nal_type, int slice_type) {
    std::vector<std::uint8_t> es{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1,
                                 static_cast<std::uint8_t>((ref_idc << 5) | nal_type)};
    // ue(0) for first_mb_in_slice, then ue(slice_type), MSB first.
    std::string bits = "1" + ue(static_cast<unsigned>(slice_type)) + "1";
    while (bits.size() % 8) bits += "0";
    for (std::size_t i = 0; i < bits.size(); i += 8)
      es.push_back(static_cast<std::uint8_t>(std::stoi(bits.substr(i, 8), nullptr, 2)));
    es.insert(es.end(), {0x88, 0x84, 0x21, 0xa0});  // more slice data
    return es;
  }

  // An HEVC access unit's start: AUD (type 35), then a slice NAL of `nal_type`.
  static std::vector<std::uint8_t> hevc_au(int nal_type) {
    return {0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1,
            static_cast<std::uint8_t>(nal_type << 1), 0x01, 0xaf, 0x09, 0x40};
  }

  static std::string ue(unsigned v) {
    unsigned x = v + 1, n = 0;
    for (unsigned t = x; t > 1; t >>= 1) ++n;
    std::string s(n, '0');
    for (int i = static_cast<int>(n); i >= 0; --i) s += ((x >> i) & 1) ? '1' : '0';
    return s;
  }
};

// An Ethernet/IPv4/UDP datagram from sport carrying the given TS packets
// (and `extra` trailing bytes).
inline Bytes ts_datagram(std::uint16_t sport, const std::vector<TsPacket>& pkts, Bytes extra = {}) {
  Bytes payload;
  for (const auto& p : pkts) payload.insert(payload.end(), p.begin(), p.end());
  payload.insert(payload.end(), extra.begin(), extra.end());
  return FrameBuilder()
      .eth(kMacB, kMacA, 0x0800)
      .ipv4(ip4("10.77.0.1"), ip4("10.77.0.2"), 17, static_cast<std::uint16_t>(8 + payload.size()))
      .udp(sport, 5000, static_cast<std::uint16_t>(payload.size()))
      .payload(0)
      .build_with(payload);
}

}  // namespace qocnet::test
