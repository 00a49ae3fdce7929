// SPDX-License-Identifier: Apache-2.0
// Builds Ethernet frames field by field for BPF_PROG_TEST_RUN fixtures.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace qocnet::test {

using Bytes = std::vector<std::uint8_t>;
using Mac = std::array<std::uint8_t, 6>;

inline constexpr Mac kMacA{0x02, 0x71, 0, 0, 0, 1};
inline constexpr Mac kMacB{0x02, 0x71, 0, 0, 0, 2};

class FrameBuilder {
 public:
  FrameBuilder& eth(Mac dst, Mac src, std::uint16_t ethertype) {
    put(dst.begin(), dst.end());
    put(src.begin(), src.end());
    be16(ethertype);
    return *this;
  }
  FrameBuilder& vlan(std::uint16_t vid, std::uint16_t inner_type) {
    be16(vid & 0x0fff);
    be16(inner_type);
    return *this;
  }
  // IPv4 header (20 bytes + options), checksum filled in.
  FrameBuilder& ipv4(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                     std::uint16_t payload_len, Bytes options = {}) {
    const std::size_t start = b_.size();
    const std::size_t ihl = (20 + options.size()) / 4;
    b_.push_back(static_cast<std::uint8_t>(0x40 | ihl));
    b_.push_back(0);
    be16(static_cast<std::uint16_t>(ihl * 4 + payload_len));
    be16(0x1234);  // id
    be16(0x4000);  // DF
    b_.push_back(64);
    b_.push_back(proto);
    be16(0);  // checksum below
    be32(src);
    be32(dst);
    put(options.begin(), options.end());
    std::uint32_t sum = 0;
    for (std::size_t i = start; i < start + ihl * 4; i += 2) sum += (b_[i] << 8) | b_[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    const std::uint16_t csum = static_cast<std::uint16_t>(~sum);
    b_[start + 10] = static_cast<std::uint8_t>(csum >> 8);
    b_[start + 11] = static_cast<std::uint8_t>(csum);
    return *this;
  }
  FrameBuilder& ipv6(std::uint8_t next_header, std::uint16_t payload_len) {
    be32(0x60000000);
    be16(payload_len);
    b_.push_back(next_header);
    b_.push_back(64);
    for (int i = 0; i < 32; ++i) b_.push_back(static_cast<std::uint8_t>(i < 16 ? 0xfd : i));
    return *this;
  }
  FrameBuilder& udp(std::uint16_t sport, std::uint16_t dport, std::uint16_t payload_len) {
    be16(sport);
    be16(dport);
    be16(static_cast<std::uint16_t>(8 + payload_len));
    be16(0);  // no checksum (legal for IPv4)
    return *this;
  }
  FrameBuilder& payload(std::size_t n, std::uint8_t fill = 0xab) {
    b_.insert(b_.end(), n, fill);
    return *this;
  }
  Bytes build() const { return b_; }
  Bytes build_with(const Bytes& tail) const {
    Bytes b = b_;
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
  }

 private:
  template <class It>
  void put(It a, It b) { b_.insert(b_.end(), a, b); }
  void be16(std::uint16_t v) {
    b_.push_back(static_cast<std::uint8_t>(v >> 8));
    b_.push_back(static_cast<std::uint8_t>(v));
  }
  void be32(std::uint32_t v) {
    be16(static_cast<std::uint16_t>(v >> 16));
    be16(static_cast<std::uint16_t>(v));
  }
  Bytes b_;
};

inline std::uint32_t ip4(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return ntohl(a.s_addr);
}

// A typical sensor datagram: Ethernet/IPv4/UDP carrying `n` bytes.
inline Bytes udp4_frame(std::size_t n) {
  return FrameBuilder()
      .eth(kMacB, kMacA, 0x0800)
      .ipv4(ip4("10.77.0.1"), ip4("10.77.0.2"), 17, static_cast<std::uint16_t>(8 + n))
      .udp(40000, 5000, static_cast<std::uint16_t>(n))
      .payload(n)
      .build();
}

}  // namespace qocnet::test
