// SPDX-License-Identifier: Apache-2.0
// UDP GSO (UDP_SEGMENT) from a real socket over veth: the super-packet is one
// datagram to the DPI, classed ref (its packets beyond the first segment are
// not inspected), replicated and policed as one, every segment with it
// (docs/DPI.md, GSO).
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "../support/edge_fixture.hpp"
#include "../support/ts.hpp"
#include "qocnet/sensor.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

using namespace qocnet;
using namespace qocnet::test;
using T = TsBuilder;

namespace {

constexpr std::size_t kSeg = 7 * 188;  // one segment: 7 TS packets
constexpr int kSegs = 6;

// A stream's TS in kSegs segments: PSI and a disp frame's start, its middle,
// then an I frame's start in the third segment, and its middle.
// A PMT with one H.264 stream on kVideoPid, written out here: GCC 12 warns
// that TsBuilder::pmt's vector inserts, inlined into this file, run past
// their end (they do not).
TsPacket pmt_packet() {
  TsPacket p = T::packet(kPmtPid, true, 0, 0xff);
  const std::uint8_t sec[] = {0x00, 0x02, 0xb0, 0x12, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0,
                              0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0xde, 0xad, 0xbe, 0xef};
  std::copy(std::begin(sec), std::end(sec), p.begin() + 4);
  return p;
}

Bytes gso_payload() {
  std::vector<TsPacket> pk{T::pat(), pmt_packet(), T::pes_start(T::h264_au(0, 1, 6), 0)};
  std::uint8_t cc = 1;
  while (pk.size() < 2 * 7) pk.push_back(T::packet(kVideoPid, false, cc++));
  pk.push_back(T::pes_start(T::h264_au(3, 5, 7), cc++));
  while (pk.size() < kSegs * 7) pk.push_back(T::packet(kVideoPid, false, cc++));
  Bytes b;
  for (const auto& p : pk) b.insert(b.end(), p.begin(), p.end());
  return b;
}

// Sends `payload` as one UDP_SEGMENT super-packet of kSeg-byte segments.
void send_gso(testbed::UdpSocket& s, const std::string& ip, std::uint16_t port, const Bytes& payload) {
  int seg = static_cast<int>(kSeg);
  REQUIRE(::setsockopt(s.fd(), SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) == 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  REQUIRE(::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) == 1);
  const ssize_t n = ::sendto(s.fd(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  const int err = errno;
  INFO("sendto with UDP_SEGMENT: " << (n < 0 ? std::strerror(err) : "sent"));
  REQUIRE(n == static_cast<ssize_t>(payload.size()));
}

// The datagrams a socket receives within `ms`, by size.
std::vector<std::size_t> drain(int fd, int ms) {
  std::vector<std::size_t> out;
  std::uint8_t buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return out;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.push_back(static_cast<std::size_t>(n));
  }
}

// Four GOPs of 12 frames (ref, then diff and disp), 3 datagrams a frame, of
// the stream from `sport`: enough for frame_aware to know the stream's mix.
std::vector<Bytes> gops(std::uint16_t sport) {
  std::vector<Bytes> out;
  for (int gop = 0; gop < 4; ++gop)
    for (int f = 0; f < 12; ++f) {
      const auto au = f == 0 ? T::h264_au(3, 5, 7) : f % 3 == 1 ? T::h264_au(2, 1, 5) : T::h264_au(0, 1, 6);
      const auto cc = static_cast<std::uint8_t>(3 * (gop * 12 + f));
      out.push_back(ts_datagram(sport, {T::pat(), pmt_packet(), T::pes_start(au, cc),
                                        T::packet(kVideoPid, false, static_cast<std::uint8_t>(cc + 1))}));
      for (int k = 1; k < 3; ++k)
        out.push_back(ts_datagram(sport, std::vector<TsPacket>(
                                             7, T::packet(kVideoPid, false, static_cast<std::uint8_t>(cc + k)))));
    }
  return out;
}

}  // namespace

TEST_CASE("edge: a UDP_SEGMENT super-packet is classified, replicated and policed",
          "[kernel][gso]") {
  EdgeFixture fx(3, {}, true);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  const std::uint16_t sport = 42200;
  const StreamId stream{testbed::Topology::sensor_ip, sport, 5000};
  for (int i = 0; i < 3; ++i)
    REQUIRE_OK(fx.edge->add_process({"proc" + std::to_string(i), testbed::Topology::edge_port_to_process(i),
                                     testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
                                     static_cast<std::uint16_t>(6000 + i)}));
  REQUIRE_OK(fx.edge->set_clone_targets(stream, {"proc0", "proc1", "proc2"}));
  // proc1 takes nothing: the super-packet must meet that policy too.
  REQUIRE_OK(fx.edge->set_policy("proc1", stream, Policy::uniform(1.0)));
  // frame_aware keeps it whole: it may hold a ref frame the DPI did not see.
  REQUIRE_OK(fx.edge->set_policy("proc2", stream, Policy::frame_aware(0.9)));
  std::vector<testbed::UdpSocket> rx;
  for (int i = 0; i < 3; ++i) {
    auto s = testbed::UdpSocket::open(fx.topo->procs[static_cast<std::size_t>(i)], testbed::Topology::process_ip(i),
                                      static_cast<std::uint16_t>(6000 + i));
    REQUIRE_OK(s);
    rx.push_back(std::move(*s));
  }
  auto tx = testbed::UdpSocket::open(fx.topo->sensor, testbed::Topology::sensor_ip, sport);
  REQUIRE_OK(tx);
  send_gso(*tx, testbed::Topology::service_ip, 5000, gso_payload());

  const auto got0 = drain(rx[0].fd(), 300);
  const auto got1 = drain(rx[1].fd(), 100);
  const auto got2 = drain(rx[2].fd(), 100);
  auto d = fx.edge->dpi_counters();
  REQUIRE_OK(d);
  INFO("gso_packets " << d->gso_packets << ", not_udp " << d->not_udp << ", ts " << d->ts);
  CHECK(d->gso_packets == 1);
  CHECK(d->gso_segments == kSegs);
  CHECK(d->not_udp == 0);
  CHECK(d->ts == 1);
  CHECK(d->by_class[static_cast<int>(FrameClass::ref)] == 1);  // an I frame is in it
  CHECK(d->replicated == 1);
  // proc0 (keep) and proc2 (frame_aware) get every segment, proc1 (uniform 1) none.
  CHECK(got0 == std::vector<std::size_t>(kSegs, kSeg));
  CHECK(got1.empty());
  CHECK(got2 == std::vector<std::size_t>(kSegs, kSeg));
  auto ts = fx.edge->target_stats(stream);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 3);
  CHECK(ts->at(0).delivered[static_cast<int>(FrameClass::ref)] == 1);
  CHECK(ts->at(1).dropped[static_cast<int>(FrameClass::ref)] == 1);
  CHECK(ts->at(2).delivered[static_cast<int>(FrameClass::ref)] == 1);

  // The stream's state after the uninspected packets: the frame they hold
  // is not known, so the next datagram continuing it is ref, not disp.
  auto st = fx.edge->streams();
  REQUIRE_OK(st);
  REQUIRE(st->size() == 1);
  CHECK(st->front().ts_unparsed == 1);
  CHECK(st->front().video_pid == kVideoPid);
  auto v = fx.edge->test_run(ts_datagram(sport, {T::packet(kVideoPid, false, 0)}), fx.ifindex("e0"));
  REQUIRE_OK(v);
  CHECK(to_string(v->cls) == std::string("ref"));  // the first segment's frame was disp
}

TEST_CASE("sensor: a UDP_SEGMENT super-packet meets its stream's policy", "[kernel][sensor][gso]") {
  auto t = testbed::Topology::create(1);
  REQUIRE_OK(t);
  auto topo = std::move(*t);
  for (const testbed::Namespace* ns : {&topo->sensor, &topo->edge})  // no IPv6 chatter
    REQUIRE_OK(testbed::run({"ip", "netns", "exec", ns->name(), "sysctl", "-qw",
                             "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}));
  auto s = testbed::in_namespace(topo->sensor, [] { return Sensor::create(); });
  REQUIRE_OK(s);
  auto sensor = std::make_unique<Sensor>(std::move(*s));
  REQUIRE_OK(sensor->attach_uplink("s0"));
  const std::uint16_t kept = 42300, dropped = 42301, framed = 42302;
  REQUIRE_OK(sensor->set_policy({testbed::Topology::sensor_ip, dropped, 5000}, Policy::uniform(1.0)));
  // frame_aware at 0.9, dropping by now (whole GOPs and their tails), keeps
  // the super-packet whole: the frames in its uninspected packets are not
  // known, a ref frame among them maybe.
  REQUIRE_OK(sensor->set_policy({testbed::Topology::sensor_ip, framed, 5000}, Policy::frame_aware(0.9)));
  int primed_dropped = 0;
  for (const auto& f : gops(framed)) {
    auto v = sensor->test_run(f);
    REQUIRE_OK(v);
    primed_dropped += v->action == 2;  // TC_ACT_SHOT
  }
  REQUIRE(primed_dropped > 0);
  auto rx = testbed::UdpSocket::open(topo->edge, testbed::Topology::service_ip, 5000);
  REQUIRE_OK(rx);
  for (auto port : {kept, dropped, framed}) {
    auto tx = testbed::UdpSocket::open(topo->sensor, testbed::Topology::sensor_ip, port);
    REQUIRE_OK(tx);
    send_gso(*tx, testbed::Topology::service_ip, 5000, gso_payload());
  }
  std::map<std::uint16_t, std::vector<std::size_t>> got;
  std::uint8_t buf[65536];
  for (;;) {
    pollfd p{rx->fd(), POLLIN, 0};
    if (::poll(&p, 1, 300) <= 0) break;
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    const ssize_t n = ::recvfrom(rx->fd(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n > 0) got[ntohs(from.sin_port)].push_back(static_cast<std::size_t>(n));
  }
  CHECK(got[kept] == std::vector<std::size_t>(kSegs, kSeg));
  CHECK(got[dropped].empty());
  CHECK(got[framed] == std::vector<std::size_t>(kSegs, kSeg));
  auto d = sensor->dpi_counters();
  REQUIRE_OK(d);
  CHECK(d->gso_packets == 3);
  CHECK(d->not_udp == 0);
  CHECK(d->ts == 3 + gops(framed).size());
  auto all = sensor->streams();
  REQUIRE_OK(all);
  for (const auto& st : *all) {
    INFO("stream from port " << st.stream.source_port);
    const int ref = static_cast<int>(FrameClass::ref);
    if (st.stream.source_port == kept) CHECK(st.sent[ref] == 1);
    if (st.stream.source_port == dropped) CHECK(st.dropped[ref] == 1);
  }
  CHECK(all->size() == 3);
}
