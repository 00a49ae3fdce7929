// SPDX-License-Identifier: Apache-2.0
// Every copy of a replicated datagram carries exactly its own process's
// destination (MAC, IPv4 address, UDP port) and the sensor's where the
// process keeps it, with valid IP and UDP checksums, whatever the targets
// before it were rewritten to. Frames with a full UDP checksum are sent from
// the sensor namespace with a packet socket; every copy is captured with a
// packet socket on the process's interface.
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

#include "../support/edge_fixture.hpp"
#include "../support/ts.hpp"
#include "fd.hpp"

using namespace qocnet;
using namespace qocnet::test;
using T = TsBuilder;
using qocnet::detail::UniqueFd;

namespace {

constexpr std::uint16_t kSport = 42100;
constexpr std::uint16_t kDport = 5000;
constexpr int kProcs = 3;

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>((p[i] << 8) | p[i + 1]);
  if (n % 2) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}

// The UDP checksum over the pseudo header and the datagram at `udp` (its
// checksum field included: 0 when the datagram is intact, 0xffff folded).
std::uint16_t udp_verify(const Bytes& f, std::size_t l3, std::size_t l4) {
  const std::size_t ulen = static_cast<std::size_t>((f[l4 + 4] << 8) | f[l4 + 5]);
  std::uint32_t sum = sum16(&f[l3 + 12], 8);  // saddr, daddr
  sum += 17 + static_cast<std::uint32_t>(ulen);
  sum = sum16(&f[l4], ulen, sum);
  return static_cast<std::uint16_t>(~fold(sum));
}

// A TS datagram from the sensor with a full UDP checksum; `tag` marks it.
Bytes datagram(std::uint8_t tag) {
  TsPacket pat = T::pat();
  pat[187] = tag;
  Bytes f = ts_datagram(kSport, {pat, T::pmt()});
  const std::size_t l3 = 14, l4 = 34;
  f[l4 + 6] = f[l4 + 7] = 0;
  std::uint16_t c = udp_verify(f, l3, l4);
  if (c == 0) c = 0xffff;
  f[l4 + 6] = static_cast<std::uint8_t>(c >> 8);
  f[l4 + 7] = static_cast<std::uint8_t>(c);
  REQUIRE(udp_verify(f, l3, l4) == 0);
  return f;
}

// A packet socket bound to `ifname` inside `ns` (IPv4 frames only).
UniqueFd packet_socket(const testbed::Namespace& ns, const std::string& ifname) {
  return testbed::in_namespace(ns, [&] {
    UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP)));
    REQUIRE(fd.get() >= 0);
    sockaddr_ll a{};
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETH_P_IP);
    a.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    REQUIRE(a.sll_ifindex > 0);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
  });
}

// The frames of stream kSport that arrive within `ms` (others are skipped).
std::vector<Bytes> capture(int fd, int ms) {
  std::vector<Bytes> out;
  std::uint8_t buf[2048];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return out;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 42 || buf[23] != 17 || ((buf[34] << 8) | buf[35]) != kSport) continue;
    out.emplace_back(buf, buf + n);
  }
}

std::array<std::uint8_t, 6> mac_of(const std::string& s) {
  std::array<std::uint8_t, 6> m{};
  unsigned v[6];
  REQUIRE(std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6);
  for (int i = 0; i < 6; ++i) m[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v[i]);
  return m;
}

// What a process keeps of the sensor's destination.
struct Kind {
  bool ip, port;  // rewritten to the process's own
};
constexpr Kind kKinds[4] = {{true, true}, {false, false}, {true, false}, {false, true}};
const char* name_of(Kind k) {
  return k.ip ? (k.port ? "ip+port" : "ip only") : (k.port ? "port only" : "keeps both");
}

}  // namespace

TEST_CASE("every copy carries exactly its own process's destination, in every order",
          "[kernel][replication][rewrite]") {
  EdgeFixture fx(kProcs, {}, true);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  UniqueFd tx = packet_socket(fx.topo->sensor, "s0");
  std::vector<UniqueFd> rx;
  for (int i = 0; i < kProcs; ++i) rx.push_back(packet_socket(fx.topo->procs[static_cast<std::size_t>(i)], "p0"));
  const StreamId stream{testbed::Topology::sensor_ip, kSport, kDport};
  std::vector<std::string> names;
  for (int i = 0; i < kProcs; ++i) names.push_back("proc" + std::to_string(i));

  std::uint8_t tag = 0;
  // Every assignment of the four kinds to the three targets, in target order.
  for (int a = 0; a < 4 * 4 * 4; ++a) {
    const Kind kinds[kProcs] = {kKinds[a % 4], kKinds[(a / 4) % 4], kKinds[a / 16]};
    INFO("targets in order: " << name_of(kinds[0]) << ", " << name_of(kinds[1]) << ", "
                              << name_of(kinds[2]));
    for (const auto& n : names) (void)fx.edge->remove_process(n);
    for (int i = 0; i < kProcs; ++i)
      REQUIRE_OK(fx.edge->add_process({names[static_cast<std::size_t>(i)],
                                       testbed::Topology::edge_port_to_process(i),
                                       testbed::Topology::process_mac(i),
                                       kinds[i].ip ? testbed::Topology::process_ip(i) : "",
                                       static_cast<std::uint16_t>(kinds[i].port ? 6000 + i : 0)}));
    REQUIRE_OK(fx.edge->set_clone_targets(stream, names));
    const Bytes sent = datagram(++tag);
    REQUIRE(::send(tx.get(), sent.data(), sent.size(), 0) == static_cast<ssize_t>(sent.size()));
    for (int i = 0; i < kProcs; ++i) {
      INFO("process " << i << " (" << name_of(kinds[i]) << ")");
      const auto got = capture(rx[static_cast<std::size_t>(i)].get(), 200);
      REQUIRE(got.size() == 1);
      const Bytes& f = got.front();
      REQUIRE(f.size() == sent.size());
      CHECK(f[14 + 20 + 8 + 187] == tag);  // this round's datagram
      const auto mac = mac_of(testbed::Topology::process_mac(i));
      CHECK(std::equal(mac.begin(), mac.end(), f.begin()));
      CHECK(std::equal(sent.begin() + 6, sent.begin() + 12, f.begin() + 6));  // source MAC
      const std::uint32_t daddr = static_cast<std::uint32_t>((f[30] << 24) | (f[31] << 16) | (f[32] << 8) | f[33]);
      const std::uint16_t dport = static_cast<std::uint16_t>((f[36] << 8) | f[37]);
      CHECK(daddr == ip4(kinds[i].ip ? testbed::Topology::process_ip(i).c_str() : testbed::Topology::service_ip));
      CHECK(dport == (kinds[i].port ? 6000 + i : kDport));
      CHECK(std::equal(sent.begin() + 26, sent.begin() + 30, f.begin() + 26));  // source address
      CHECK(std::equal(sent.begin() + 34, sent.begin() + 36, f.begin() + 34));  // source port
      CHECK(fold(sum16(&f[14], 20)) == 0xffff);  // IPv4 header checksum
      CHECK(udp_verify(f, 14, 34) == 0);          // UDP checksum
      CHECK(std::equal(sent.begin() + 42, sent.end(), f.begin() + 42));  // payload
    }
  }
}
