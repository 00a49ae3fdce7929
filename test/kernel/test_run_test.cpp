// SPDX-License-Identifier: Apache-2.0
// The edge program run by the kernel on crafted frames (BPF_PROG_TEST_RUN):
// table-driven fixtures of a frame, the port it arrives on, the verdict and
// the counters it must leave.
#include <linux/pkt_cls.h>

#include <algorithm>
#include <map>

#include "../support/edge_fixture.hpp"
#include "../support/frames.hpp"

using namespace qocnet;
using namespace qocnet::test;

namespace {

struct Fixture {
  const char* description;
  Bytes frame;
  const char* port;  // edge port it arrives on; e0 is paired with e1, e2 is not
  int verdict;
  // expected counter deltas
  std::uint64_t in_fwd, in_pass, out_tx;  // out = e1
};

Bytes arp_request() {
  return FrameBuilder().eth({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kMacA, 0x0806).payload(28, 0).build();
}

Bytes udp6_frame() {
  return FrameBuilder().eth(kMacB, kMacA, 0x86dd).ipv6(17, 8 + 100).udp(4000, 5000, 100).payload(100).build();
}

Bytes vlan_udp4() {
  return FrameBuilder()
      .eth(kMacB, kMacA, 0x8100)
      .vlan(42, 0x0800)
      .ipv4(ip4("10.77.0.1"), ip4("10.77.0.2"), 17, 8 + 64)
      .udp(4000, 5000, 64)
      .payload(64)
      .build();
}

Bytes ipv4_with_options() {
  return FrameBuilder()
      .eth(kMacB, kMacA, 0x0800)
      .ipv4(ip4("10.77.0.1"), ip4("10.77.0.2"), 17, 8 + 32, Bytes{1, 1, 1, 0, 0x94, 4, 0, 0})
      .udp(4000, 5000, 32)
      .payload(32)
      .build();
}

Bytes bare_ethernet_header() { return FrameBuilder().eth(kMacB, kMacA, 0x88b5).build(); }

}  // namespace

TEST_CASE("edge program verdicts and counters on crafted frames", "[bpf][test_run]") {
  EdgeFixture fx(2);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->attach_port("e2"));
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e1"));

  const std::vector<Fixture> fixtures{
      {"IPv4/UDP datagram (1316-byte TS payload) on a paired port follows the pair",
       udp4_frame(1316), "e0", TC_ACT_REDIRECT, 1, 0, 1},
      {"IPv4/UDP on a port without a pair goes to the stack", udp4_frame(1316), "e2", TC_ACT_OK, 0,
       1, 0},
      {"ARP on a paired port follows the pair (L2 forwarding)", arp_request(), "e0",
       TC_ACT_REDIRECT, 1, 0, 1},
      {"IPv6/UDP on a paired port follows the pair", udp6_frame(), "e0", TC_ACT_REDIRECT, 1, 0, 1},
      {"802.1Q-tagged IPv4/UDP on a paired port follows the pair", vlan_udp4(), "e0",
       TC_ACT_REDIRECT, 1, 0, 1},
      {"IPv4 with options on a paired port follows the pair", ipv4_with_options(), "e0",
       TC_ACT_REDIRECT, 1, 0, 1},
      {"a bare 14-byte Ethernet header on a paired port follows the pair", bare_ethernet_header(),
       "e0", TC_ACT_REDIRECT, 1, 0, 1},
      {"a bare 14-byte Ethernet header on an unpaired port goes to the stack",
       bare_ethernet_header(), "e2", TC_ACT_OK, 0, 1, 0},
  };

  for (const auto& f : fixtures) {
    INFO(f.description);
    const auto in0 = fx.counters(f.port);
    const auto out0 = fx.counters("e1");
    auto v = fx.edge->test_run(f.frame, fx.ifindex(f.port));
    REQUIRE_OK(v);
    CHECK(tc_action_name(v->action) == tc_action_name(f.verdict));
    const auto in1 = fx.counters(f.port);
    const auto out1 = fx.counters("e1");
    CHECK(in1.rx_packets - in0.rx_packets == 1);
    CHECK(in1.rx_bytes - in0.rx_bytes == f.frame.size());
    CHECK(in1.fwd_packets - in0.fwd_packets == f.in_fwd);
    CHECK(in1.fwd_bytes - in0.fwd_bytes == f.in_fwd * f.frame.size());
    CHECK(in1.pass_packets - in0.pass_packets == f.in_pass);
    CHECK(in1.pass_bytes - in0.pass_bytes == f.in_pass * f.frame.size());
    CHECK(out1.tx_packets - out0.tx_packets == f.out_tx);
    CHECK(out1.tx_bytes - out0.tx_bytes == f.out_tx * f.frame.size());
  }
}

TEST_CASE("a changed pair takes effect on the next frame, a removed one at once",
          "[bpf][test_run]") {
  EdgeFixture fx(2);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  const auto frame = udp4_frame(200);
  const unsigned e0 = fx.ifindex("e0");

  auto run = [&] {
    auto v = fx.edge->test_run(frame, e0);
    REQUIRE_OK(v);
    return v->action;
  };
  CHECK(run() == TC_ACT_OK);
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e1"));
  CHECK(run() == TC_ACT_REDIRECT);
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e2"));
  CHECK(run() == TC_ACT_REDIRECT);
  CHECK(fx.counters("e1").tx_packets == 1);
  CHECK(fx.counters("e2").tx_packets == 1);
  REQUIRE_OK(fx.edge->remove_port_pair("e0"));
  CHECK(run() == TC_ACT_OK);
  const auto c = fx.counters("e0");
  CHECK(c.rx_packets == 4);
  CHECK(c.fwd_packets == 2);
  CHECK(c.pass_packets == 2);

  auto pairs = fx.edge->port_pairs();
  REQUIRE_OK(pairs);
  CHECK(pairs->empty());
}

TEST_CASE("port pairs are listed by name", "[bpf]") {
  EdgeFixture fx(2);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->attach_port("e1"));
  REQUIRE_OK(fx.edge->set_port_pair("e0", "e2"));
  REQUIRE_OK(fx.edge->set_port_pair("e1", "e0"));
  auto pairs = fx.edge->port_pairs();
  REQUIRE_OK(pairs);
  std::map<std::string, std::string> got;
  for (const auto& p : *pairs) got[p.ingress] = p.egress;
  CHECK(got == std::map<std::string, std::string>{{"e0", "e2"}, {"e1", "e0"}});
  auto ports = fx.edge->attached_ports();
  std::sort(ports.begin(), ports.end());
  CHECK(ports == std::vector<std::string>{"e0", "e1"});
}

TEST_CASE("a frame shorter than an Ethernet header is refused before the kernel", "[bpf]") {
  EdgeFixture fx(1);
  Bytes tiny(13, 0);
  auto v = fx.edge->test_run(tiny, fx.ifindex("e0"));
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().code == Errc::invalid_argument);
  CHECK(v.error().message.find("13 bytes") != std::string::npos);
}
