// SPDX-License-Identifier: Apache-2.0
// qocnet_replication_bench — one UDP video stream replicated to N consumers,
// qocnet against the kernel's and user space's ways of doing it (needs root).
//
//   sensor [s0] ---- [e0] edge [e1] ---- [p0] consumer 0
//                             [e2] ---- [p0] consumer 1 ... (as many as the largest N)
//
// Two such beds. In the "distinct" bed every consumer has its own MAC, IPv4
// address and UDP port, as containers do: qocnet rewrites each copy
// (Edge::add_process), and a user-space relay sends to each address. In the
// "shared" bed every consumer's p0 has the same MAC and address, because a
// bridge or tc mirred copies frames without rewriting them: each consumer
// then accepts its copy. Configurations, one active at a time, per N
// (--n, default 1,2,4,8; up to kMaxBedConsumers):
//
//   keep_all     qocnet, set_clone_targets on the sensor's stream, keep for all
//   bridge_nf1   br0 holding e0..eN, flooding (no fdb entry for the consumers'
//                MAC, learning off on e1..eN), bridge-nf-call-* = 1
//   bridge_nf0   the same with bridge-nf-call-* = 0
//   mirred       clsact on e0, u32 match-all, mirred egress mirror to e1..eN-1
//                and redirect to eN (32 actions a filter, the kernel's limit:
//                a filter's last mirror "continue"s to the next filter)
//   relay        a thread in the edge namespace: recvmmsg on e0's address,
//                sendmmsg of each datagram to the N consumers' addresses; the
//                sensor stays at most 256 datagrams ahead of it (on one CPU an
//                unpaced sensor would mostly fill the relay's socket)
//   selective    qocnet with 8 targets, each uniform(0.375): 5 of 8 kept on
//                average (N = 8 only)
//   sink         nothing replicated: e0's address has a UDP socket that is never
//                read; the cost of the sensor's side and of one hop, to be
//                subtracted from the others' CPU cost
//
// A qocnet configuration the Edge refuses for its N (more clone targets or
// processes than the datapath holds: Errc::resource_exhausted) is reported
// as "unsupported at this N" and skipped; the rest of the run goes on.
//
// The sensor blasts 1316-byte MPEG-TS datagrams (sendmmsg) from a thread on
// one pinned CPU; over veth the whole path runs on that CPU. With --rate PPS
// every activation also has a window at that fixed offered rate (a paced
// sender), whose CPU per input does not depend on where the kernel runs the
// work; from it the marginal CPU per copy (least-squares slope of CPU per
// input over N) and qocnet's CPU per delivered copy at each N. Input = e0's
// rx_packets, delivered = each consumer's p0 rx_packets. CPU = the sender's
// and the relay's thread CPU time plus every CPU's ksoftirqd, per input.
//
// Prints a table, then the results as JSON lines (bench_util.hpp). See
// docs/BENCHMARKS.md, "Replication".
#include <arpa/inet.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// GCC 12 warns of a memcpy out of bounds in vector::insert within
// TsBuilder::pmt() as compiled here (-Warray-bounds, -Wstringop-overread,
// -Wstringop-overflow): its known false positive on vector range inserts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include "../test/support/ts.hpp"
#pragma GCC diagnostic pop
#include "bench_util.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet::bench;

namespace {

namespace tb = qocnet::testbed;
using T = qocnet::test::TsBuilder;
using qocnet::test::kVideoPid;
using qocnet::test::TsPacket;

constexpr const char* kBench = "replication";
// Consumers a bed can have: the address plan (10.79.1.1..250, a MAC byte,
// ports 6000 + i). The datapath's own limits (QOC_MAX_TARGETS, QOC_MAX_PROCS)
// are not copied here: the Edge refuses what it cannot hold, and such
// configurations are reported as unsupported.
constexpr int kMaxBedConsumers = 250;
constexpr int kSelectiveTargets = 8;     // selective runs at N = 8
constexpr int kTcActionsPerFilter = 32;  // TCA_ACT_MAX_PRIO: actions one tc filter holds
constexpr std::size_t kPayload = 1316;   // 7 TS packets
constexpr int kCycle = 62;               // datagrams per repeated stretch of the stream
constexpr int kBatch = 64;               // datagrams per sendmmsg / recvmmsg call
constexpr double kWarmupSeconds = 0.3;   // per configuration activation
constexpr double kSettleSeconds = 0.1;   // after sending, before reading counters
constexpr std::uint32_t kRelayWindow = 256;  // datagrams the sensor may be ahead of the relay
constexpr double kSelectiveDrop = 0.375;     // uniform(p) on 8 targets: 5 kept on average
constexpr int kConsumerRcvbuf = 1 << 16;     // consumers never read: small buffers
constexpr double kPacedCallHz = 250;         // sendmmsg calls a second at a fixed rate (at most)
constexpr double kRateReached = 0.97;        // a paced window's input >= this x the rate

constexpr std::uint16_t kSensorPort = 40000;
constexpr std::uint16_t kServicePort = 5000;
constexpr std::uint16_t kConsumerPort = 6000;  // + i, distinct bed

// Distinct bed: the sensor sends to the edge's own address (e0).
constexpr const char* kDSensorIp = "10.79.0.1";
constexpr const char* kDEdgeIp = "10.79.0.2";
constexpr const char* kDSensorMac = "02:79:00:00:00:01";
constexpr const char* kDEdgeMac = "02:79:00:00:00:02";
std::string d_consumer_ip(int i) { return "10.79.1." + std::to_string(i + 1); }
// Shared bed: the sensor sends to the consumers' common address, which no
// interface of the edge has.
constexpr const char* kSSensorIp = "10.80.0.1";
constexpr const char* kSServiceIp = "10.80.0.2";
constexpr const char* kSSensorMac = "02:80:00:00:00:01";
constexpr const char* kSEdgeMac = "02:80:00:00:00:02";
constexpr const char* kSConsumerMac = "02:80:00:00:01:00";

std::string mac(int bed, int kind, int i) {
  char b[32];
  std::snprintf(b, sizeof b, "02:%02x:00:00:%02x:%02x", bed & 0xff, kind & 0xff, (i + 1) & 0xff);
  return b;
}
std::string d_consumer_mac(int i) { return mac(0x79, 1, i); }
std::string d_edge_port_mac(int i) { return mac(0x79, 2, i); }
std::string s_edge_port_mac(int i) { return mac(0x80, 2, i); }
std::string edge_port(int i) { return "e" + std::to_string(i + 1); }
std::string process_name(int i) { return "c" + std::to_string(i); }

// ---------------------------------------------------------------- basics --

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

double thread_cpu_ns(clockid_t c) {
  timespec ts{};
  if (::clock_gettime(c, &ts) != 0) return NAN;
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

long futex(std::atomic<std::uint32_t>* a, int op, std::uint32_t val, const timespec* ts) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), op, val, ts, nullptr, 0);
}

// --------------------------------------------------------------- options --

struct Options {
  int rounds = 3;
  double seconds = 1.5;
  int cpu = 1;
  std::vector<int> ns{1, 2, 4, 8};  // consumer counts, ascending, no repeats
  double rate = 0;                  // offered pps of the fixed-rate windows; 0: none
  bool qocnet_shared = false;     // also qocnet on the shared bed (keep_all_shared)
  std::vector<std::string> only;  // configuration kinds to run (empty: all)
};

// Parses the command line into `o`: -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& o) {
  CLI::App app{"One MPEG-TS stream replicated to N consumer namespaces by qocnet, a Linux "
               "bridge, tc mirred and a user-space relay, on one pinned CPU.",
               "qocnet_replication_bench"};
  app.footer("Needs root. See docs/BENCHMARKS.md, Replication.");
  option_defaults(app);
  app.add_option("--rounds", o.rounds, "rounds; each runs every configuration once")
      ->type_name("N")
      ->transform(integer_in(1, 100))
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "sending time per configuration and round")
      ->type_name("S")
      ->transform(number_in(0.2, 600))
      ->capture_default_str();
  app.add_option("--cpu", o.cpu, "the CPU everything is pinned to")
      ->type_name("C")
      ->transform(integer_in(0, CPU_SETSIZE - 1))
      ->capture_default_str();
  app.add_option("--n,--ns", o.ns,
                 "consumer counts to run, e.g. 1,2,4,8,16,32,64 (the long form: qocnet's "
                 "counts beyond the datapath's limits are reported as unsupported)")
      ->type_name("N,...")
      ->delimiter(',')
      ->transform(integer_in(1, kMaxBedConsumers))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false)
      ->capture_default_str();
  app.add_option("--rate", o.rate,
                 "also measure every configuration at this fixed offered rate (paced sender), in "
                 "datagrams a second: CPU per input at that rate and the marginal CPU per copy; "
                 "0: blast windows only")
      ->type_name("PPS")
      ->transform(number_in(0, 1e7))
      ->capture_default_str();
  app.add_flag("--jsonl")->description(
      "accepted for scripts/bench; the results are always printed as JSON lines after the table");
  app.add_flag("--qocnet-shared", o.qocnet_shared,
               "also run keep_all_shared: qocnet on the bed where all consumers share one MAC and "
               "address, rewriting only the MAC (attribution)");
  app.add_option("--only", o.only, "run only these kinds; sink always runs")
      ->type_name("K,...")
      ->delimiter(',')
      ->check(CLI::IsMember({"keep_all", "keep_all_shared", "bridge_nf1", "bridge_nf0", "mirred",
                             "relay", "selective"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  const int status = parse_command_line(app, argc, argv);
  std::sort(o.ns.begin(), o.ns.end());
  o.ns.erase(std::unique(o.ns.begin(), o.ns.end()), o.ns.end());
  return status;
}

// ---------------------------------------------------------------- stream --

// A stretch of H.264-in-TS as a camera sends it, 62 datagrams of 7 packets,
// sent over and over: an IDR frame (20 datagrams; PAT + PMT first, then the
// PES start with random_access_indicator), a P frame and two non-reference B
// frames (14 each). Every frame starts a datagram. 432 video packets per
// stretch, a multiple of 16: the video PID's continuity counter runs on
// without a jump from one repetition to the next.

std::vector<std::vector<std::uint8_t>> make_stream() {
  struct Frame {
    std::vector<std::uint8_t> au;  // the access unit's start: AUD + slice header
    bool idr;
    int datagrams;
  };
  const Frame frames[] = {{T::h264_au(3, 5, 7), true, 20},   // IDR: ref
                          {T::h264_au(2, 1, 5), false, 14},  // P: diff
                          {T::h264_au(0, 1, 6), false, 14},  // B, non-reference: disp
                          {T::h264_au(0, 1, 6), false, 14}};
  std::vector<std::vector<std::uint8_t>> dgrams;
  std::uint8_t cc = 0;  // the video PID's continuity counter
  for (const auto& f : frames)
    for (int d = 0; d < f.datagrams; ++d) {
      std::vector<TsPacket> pkts;
      if (d == 0 && f.idr) {
        pkts.push_back(T::pat());
        pkts.push_back(T::pmt());  // H.264 video, audio
      }
      bool start = d == 0;
      while (pkts.size() < 7) {
        pkts.push_back(start ? T::pes_start(f.au, cc, f.idr) : T::packet(kVideoPid, false, cc));
        start = false;
        cc = static_cast<std::uint8_t>((cc + 1) & 0x0f);
      }
      std::vector<std::uint8_t> dg;
      for (const auto& p : pkts) dg.insert(dg.end(), p.begin(), p.end());
      dgrams.push_back(std::move(dg));
    }
  if (dgrams.size() != kCycle || cc != 0)
    throw BenchError("internal: the stream stretch is not " + std::to_string(kCycle) +
                     " datagrams with a whole number of continuity cycles");
  for (const auto& d : dgrams)
    if (d.size() != kPayload) throw BenchError("internal: a datagram is not 1316 bytes");
  return dgrams;
}

// -------------------------------------------------------------- testbeds --

struct Bed {
  std::string label;
  std::size_t pos = 0;  // the sender's place in the stream
  std::optional<tb::Namespace> sensor, edge;
  std::vector<tb::Namespace> consumers;
  // Sockets after the namespaces: destroyed first.
  std::optional<tb::UdpSocket> sender;
  std::vector<tb::UdpSocket> sinks;  // each consumer's, never read
};

// distinct: consumer i is d_consumer_ip(i) / d_consumer_mac(i), port 6000 + i.
// shared: every consumer is kSServiceIp / kSConsumerMac, port 5000.
// `count` consumers (the largest N the bed serves).
std::unique_ptr<Bed> make_bed(bool distinct, int count) {
  auto bed = std::make_unique<Bed>();
  bed->label = distinct ? "distinct" : "shared";
  const std::string tag = distinct ? "d" : "s";
  bed->sensor.emplace(need(tb::Namespace::create(tb::unique_name(tag + "s")), "create namespace"));
  bed->edge.emplace(need(tb::Namespace::create(tb::unique_name(tag + "e")), "create namespace"));
  bed->consumers.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i)
    bed->consumers.push_back(
        need(tb::Namespace::create(tb::unique_name(tag + std::to_string(i))), "create namespace"));
  no_ipv6(*bed->sensor);
  no_ipv6(*bed->edge);
  for (const auto& c : bed->consumers) no_ipv6(c);

  const tb::Namespace& s = *bed->sensor;
  const tb::Namespace& e = *bed->edge;
  if (distinct) {
    need(tb::add_veth({&s, "s0", kDSensorMac, std::string(kDSensorIp) + "/24"},
                      {&e, "e0", kDEdgeMac, std::string(kDEdgeIp) + "/24"}),
         "veth s0/e0");
    need(s.ip({"neigh", "replace", kDEdgeIp, "lladdr", kDEdgeMac, "dev", "s0", "nud", "permanent"}),
         "sensor neighbour entry");
  } else {
    need(tb::add_veth({&s, "s0", kSSensorMac, std::string(kSSensorIp) + "/24"},
                      {&e, "e0", kSEdgeMac, ""}),
         "veth s0/e0");
    need(s.ip({"neigh", "replace", kSServiceIp, "lladdr", kSConsumerMac, "dev", "s0", "nud",
               "permanent"}),
         "sensor neighbour entry");
  }
  for (int i = 0; i < count; ++i) {
    const tb::Namespace& c = bed->consumers[static_cast<std::size_t>(i)];
    const std::string ip = distinct ? d_consumer_ip(i) : kSServiceIp;
    const std::string cmac = distinct ? d_consumer_mac(i) : kSConsumerMac;
    need(tb::add_veth({&e, edge_port(i), distinct ? d_edge_port_mac(i) : s_edge_port_mac(i), ""},
                      {&c, "p0", cmac, ip + "/24"}),
         "veth " + edge_port(i) + "/p0");
    need(c.ip({"route", "add", "default", "dev", "p0"}), "consumer default route");
    if (distinct) {  // the relay's way out: a host route and a static neighbour per consumer
      need(e.ip({"route", "add", ip + "/32", "dev", edge_port(i)}), "edge route to " + ip);
      need(e.ip({"neigh", "replace", ip, "lladdr", cmac, "dev", edge_port(i), "nud", "permanent"}),
           "edge neighbour entry for " + ip);
    }
    const auto port = distinct ? static_cast<std::uint16_t>(kConsumerPort + i) : kServicePort;
    bed->sinks.push_back(need(tb::UdpSocket::open(c, ip, port, kConsumerRcvbuf), "consumer socket"));
  }
  bed->sender.emplace(need(tb::UdpSocket::open(s, distinct ? kDSensorIp : kSSensorIp, kSensorPort),
                           "sender socket"));
  connect_udp(bed->sender->fd(), distinct ? kDEdgeIp : kSServiceIp, kServicePort,
              "the sender socket");
  return bed;
}

// ---------------------------------------------------------------- relay --

// A user-space relay in the distinct bed's edge namespace: recvmmsg on e0's
// address, sendmmsg of every datagram to each of the first n consumers.
class Relay {
 public:
  Relay(const tb::Namespace& edge, int n)
      : sock_(need(tb::UdpSocket::open(edge, kDEdgeIp, kServicePort, 8 << 20), "relay socket")) {
    timeval tv{0, 20000};  // wake up to look at the stop flag
    ::setsockopt(sock_.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < n; ++i) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(kConsumerPort + i));
      ::inet_pton(AF_INET, d_consumer_ip(i).c_str(), &a.sin_addr);
      dest_.push_back(a);
    }
    th_ = std::thread([this] { loop(); });
  }
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;
  ~Relay() {
    stop_ = true;
    th_.join();
  }

  std::atomic<std::uint32_t> relayed{0};  // datagrams relayed (mod 2^32)
  std::atomic<bool> sender_waiting{false};
  double cpu_ns() {
    clockid_t c;
    return pthread_getcpuclockid(th_.native_handle(), &c) == 0 ? thread_cpu_ns(c) : NAN;
  }
  std::string error() {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }

 private:
  void loop() {
    const std::size_t n = dest_.size();
    std::vector<std::array<std::uint8_t, 2048>> bufs(kBatch);
    std::array<iovec, kBatch> riov{};
    std::array<mmsghdr, kBatch> rx{};
    for (int k = 0; k < kBatch; ++k) {
      riov[static_cast<std::size_t>(k)] = {bufs[static_cast<std::size_t>(k)].data(), 2048};
      rx[static_cast<std::size_t>(k)].msg_hdr.msg_iov = &riov[static_cast<std::size_t>(k)];
      rx[static_cast<std::size_t>(k)].msg_hdr.msg_iovlen = 1;
    }
    std::vector<iovec> tiov(kBatch * n);
    std::vector<mmsghdr> tx(kBatch * n);
    while (!stop_) {
      int got = ::recvmmsg(sock_.fd(), rx.data(), kBatch, MSG_WAITFORONE, nullptr);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        fail(std::string("recvmmsg: ") + std::strerror(errno));
        return;
      }
      std::size_t m = 0;
      for (int k = 0; k < got; ++k)
        for (std::size_t i = 0; i < n; ++i, ++m) {
          tiov[m] = {bufs[static_cast<std::size_t>(k)].data(), rx[static_cast<std::size_t>(k)].msg_len};
          tx[m] = {};
          tx[m].msg_hdr.msg_name = &dest_[i];
          tx[m].msg_hdr.msg_namelen = sizeof(sockaddr_in);
          tx[m].msg_hdr.msg_iov = &tiov[m];
          tx[m].msg_hdr.msg_iovlen = 1;
        }
      std::size_t off = 0;
      while (off < m) {
        int s = ::sendmmsg(sock_.fd(), tx.data() + off, static_cast<unsigned>(m - off), 0);
        if (s > 0) {
          off += static_cast<std::size_t>(s);
        } else if (s < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
          continue;
        } else {
          fail(std::string("sendmmsg: ") + std::strerror(errno));
          return;
        }
      }
      relayed.fetch_add(static_cast<std::uint32_t>(got));
      if (sender_waiting.load()) futex(&relayed, FUTEX_WAKE_PRIVATE, 1, nullptr);
    }
  }
  void fail(std::string e) {
    std::lock_guard<std::mutex> l(mu_);
    error_ = std::move(e);
    sender_waiting = false;
  }

  tb::UdpSocket sock_;
  std::vector<sockaddr_in> dest_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string error_;
  std::thread th_;
};

// ---------------------------------------------------------------- sender --

struct SendResult {
  std::uint64_t sent = 0, retries = 0;
  double seconds = 0, cpu_ns = 0;
  std::string error;
};

// Sends the stream on the connected socket until the deadline: as fast as it
// goes (rate 0), or paced at `rate` datagrams a second (calls of
// rate / kPacedCallHz datagrams, each at its due time from the start; behind
// schedule it sends without sleeping). With a relay, stays at most
// kRelayWindow datagrams ahead of it (a relay on the same CPU would otherwise
// lose most of them at its socket).
// `pos` is where in the stream to go on (the next datagram to send): every
// window continues the stream where the last one on the bed stopped.
SendResult send_loop(int fd, double seconds, const std::vector<std::vector<std::uint8_t>>& stream,
                     std::size_t& pos, Relay* relay, double rate) {
  SendResult r;
  std::vector<iovec> iov(stream.size());
  for (std::size_t i = 0; i < stream.size(); ++i)
    iov[i] = {const_cast<std::uint8_t*>(stream[i].data()), stream[i].size()};
  std::array<mmsghdr, kBatch> msgs{};
  for (auto& m : msgs) m.msg_hdr.msg_iovlen = 1;
  const int batch =
      rate > 0 ? std::clamp(static_cast<int>(rate / kPacedCallHz), 1, kBatch) : kBatch;
  const std::uint32_t base = relay ? relay->relayed.load() : 0;  // relayed before this window
  const double cpu0 = thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (!g_stop && Clock::now() < deadline) {
    if (rate > 0) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(static_cast<double>(r.sent) / rate));
      if (due >= deadline) break;
      if (due > Clock::now()) std::this_thread::sleep_until(due);
    }
    if (relay) {
      bool late = false;
      for (;;) {
        const std::uint32_t seen = relay->relayed.load();
        if (base + static_cast<std::uint32_t>(r.sent) - seen <= kRelayWindow) break;
        if (g_stop || Clock::now() >= deadline) {
          late = true;
          break;
        }
        if (!relay->error().empty()) {
          r.error = "relay: " + relay->error();
          return r;
        }
        relay->sender_waiting = true;
        const timespec ts{0, 10'000'000};
        futex(&relay->relayed, FUTEX_WAIT_PRIVATE, seen, &ts);
        relay->sender_waiting = false;
      }
      if (late) break;
    }
    for (int k = 0; k < batch; ++k) {
      msgs[static_cast<std::size_t>(k)].msg_hdr.msg_iov = &iov[pos];
      pos = pos + 1 == iov.size() ? 0 : pos + 1;
    }
    int n = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(batch), 0);
    if (n > 0) {
      r.sent += static_cast<std::uint64_t>(n);
      if (n < batch) pos = (pos + iov.size() - static_cast<std::size_t>(batch - n) % iov.size()) % iov.size();
      continue;
    }
    if (n < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)) {
      ++r.retries;
      pos = (pos + iov.size() - static_cast<std::size_t>(batch) % iov.size()) % iov.size();
      continue;
    }
    r.error = std::string("sendmmsg: ") + (n < 0 ? std::strerror(errno) : "sent nothing");
    break;
  }
  r.seconds = seconds_since(start);
  r.cpu_ns = thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  return r;
}

// ------------------------------------------------------------ CPU probes --

// Every CPU's ksoftirqd: softirq work the sending threads did not do inline
// (on the pinned CPU, or wherever the kernel moved it).
class Softirqd {
 public:
  explicit Softirqd(int pinned) {
    for (const auto& d : std::filesystem::directory_iterator("/proc")) {
      const std::string pid = d.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream f(d.path() / "comm");
      std::string comm;
      if (!std::getline(f, comm) || comm.rfind("ksoftirqd/", 0) != 0) continue;
      const std::string path = (d.path() / "schedstat").string();
      if (comm == "ksoftirqd/" + std::to_string(pinned)) pinned_ = path;
      else others_.push_back(path);
    }
  }
  bool has_pinned() const { return !pinned_.empty(); }
  std::size_t others() const { return others_.size(); }
  double pinned_ns() const { return run_ns(pinned_); }  // run time in ns (0 if unknown)
  double others_ns() const {
    double t = 0;
    for (const auto& p : others_) t += run_ns(p);
    return t;
  }

 private:
  static double run_ns(const std::string& schedstat) {
    if (schedstat.empty()) return 0;
    std::ifstream f(schedstat);
    double v = 0;
    f >> v;
    return v;
  }
  std::string pinned_;
  std::vector<std::string> others_;
};

// From /proc/stat: the pinned CPU's total and steal time, and the softirq
// time of all CPUs (tick-sampled without CONFIG_IRQ_TIME_ACCOUNTING, and then
// overlapping the threads' time: a cross-check, not added), in seconds.
struct CpuStat {
  double total = 0, steal = 0, softirq_all = 0;
};
CpuStat cpu_stat(int cpu) {
  static const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream f("/proc/stat");
  std::string line, want = "cpu" + std::to_string(cpu) + " ";
  CpuStat s;
  while (std::getline(f, line)) {
    const bool all = line.rfind("cpu ", 0) == 0;
    if (!all && line.rfind(want, 0) != 0) continue;
    std::istringstream in(line.substr(line.find(' ')));
    double v[8] = {};
    for (double& x : v) in >> x;
    if (all) {
      s.softirq_all = v[6] / hz;
    } else {
      for (double x : v) s.total += x / hz;
      s.steal = v[7] / hz;
    }
  }
  return s;
}

// ------------------------------------------------------- configurations --

enum class Kind { sink, keep_all, keep_all_shared, bridge_nf1, bridge_nf0, mirred, relay, selective };
const char* key_of(Kind k) {
  switch (k) {
    case Kind::sink: return "sink";
    case Kind::keep_all: return "keep_all";
    case Kind::keep_all_shared: return "keep_all_shared";
    case Kind::bridge_nf1: return "bridge_nf1";
    case Kind::bridge_nf0: return "bridge_nf0";
    case Kind::mirred: return "mirred";
    case Kind::relay: return "relay";
    case Kind::selective: return "selective";
  }
  return "?";
}
bool in_shared_bed(Kind k) {
  return k == Kind::bridge_nf1 || k == Kind::bridge_nf0 || k == Kind::mirred || k == Kind::keep_all_shared;
}

struct Config {
  Kind kind;
  int n;  // consumers
  std::string key() const {
    return kind == Kind::sink ? "sink" : std::string(key_of(kind)) + ".n" + std::to_string(n);
  }
};

// A configuration the Edge refuses at its N (Errc::resource_exhausted).
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Window {
  int round = 0;
  Config cfg{Kind::sink, 0};
  double rate = 0;                     // offered pps of a paced window; 0: blast
  double seconds = 0;                  // the sender's sending time
  std::uint64_t sent = 0, input = 0;   // datagrams sent; accepted by e0 (its rx_packets)
  std::vector<std::uint64_t> delivered;  // per consumer in use (p0 rx_packets)
  double sender_ns = 0, relay_ns = 0;  // thread CPU time
  double softirqd_ns = 0, softirqd_other_ns = 0;  // ksoftirqd of the pinned CPU, of the others
  double stat_softirq_ns = 0;          // /proc/stat softirq, all CPUs (cross-check, not in cpu_ns)
  double steal = 0;                    // share of the CPU the hypervisor took

  bool paced() const { return rate > 0; }
  // A paced window whose input fell short of the rate: its CPU figure is
  // the saturated one.
  bool short_of_rate() const { return paced() && input_pps() < kRateReached * rate; }

  double input_pps() const { return seconds > 0 ? static_cast<double>(input) / seconds : NAN; }
  double delivered_total() const {
    double t = 0;
    for (auto d : delivered) t += static_cast<double>(d);
    return t;
  }
  double delivered_pps() const { return seconds > 0 ? delivered_total() / seconds : NAN; }
  double cpu_ns() const { return sender_ns + relay_ns + softirqd_ns + softirqd_other_ns; }
  double other_ns_per_input() const {
    return input ? softirqd_other_ns / static_cast<double>(input) : NAN;
  }
  double stat_softirq_ns_per_input() const {
    return input ? stat_softirq_ns / static_cast<double>(input) : NAN;
  }
  double cpu_ns_per_input() const { return input ? cpu_ns() / static_cast<double>(input) : NAN; }
  double relay_ns_per_input() const { return input ? relay_ns / static_cast<double>(input) : NAN; }
  double busy() const { return seconds > 0 ? cpu_ns() / (seconds * 1e9) : NAN; }
  // Copies per input datagram (n for keep-all, 5 on average for selective).
  double copies() const { return input ? delivered_total() / static_cast<double>(input) : NAN; }
  double min_share() const {
    double m = NAN;
    for (auto d : delivered) {
      const double s = input ? static_cast<double>(d) / static_cast<double>(input) : 0;
      m = std::isnan(m) ? s : std::min(m, s);
    }
    return m;
  }
};

struct Bench {
  const Options& o;
  std::vector<std::vector<std::uint8_t>> stream;
  std::unique_ptr<Bed> dbed, sbed;
  std::optional<qocnet::Edge> edge;  // in the distinct bed's edge namespace
  std::optional<qocnet::Edge> sedge;  // in the shared bed's (--qocnet-shared)
  qocnet::StreamId sid{kDSensorIp, kSensorPort, kServicePort};
  qocnet::StreamId ssid{kSSensorIp, kSensorPort, kServicePort};
  BridgeNf nf;
  Softirqd softirqd;
  // Processes each Edge took (add_process until the datapath is full), and
  // the Edge's answer to the next one.
  int procs = 0, sprocs = 0;
  std::string procs_full, sprocs_full;
  explicit Bench(const Options& opts) : o(opts), softirqd(opts.cpu) {}

  // Adds processes c0..c(count-1) to `q`, the consumers at `mac`/`ip`
  // (empty: the distinct bed's own); stops at the first the Edge refuses as
  // beyond its limit (resource_exhausted), noting its message in `full`.
  static int add_processes(qocnet::Edge& q, int count, bool distinct, std::string& full) {
    for (int i = 0; i < count; ++i) {
      const qocnet::ProcessSpec spec =
          distinct ? qocnet::ProcessSpec{process_name(i), edge_port(i), d_consumer_mac(i),
                                         d_consumer_ip(i),
                                         static_cast<std::uint16_t>(kConsumerPort + i)}
                   // Every consumer has the same MAC and address: only the
                   // MAC is rewritten (to the value it has), the IPv4
                   // address and port are kept.
                   : qocnet::ProcessSpec{process_name(i), edge_port(i), kSConsumerMac, "", 0};
      auto st = q.add_process(spec);
      if (st) continue;
      if (st.error().code != qocnet::Errc::resource_exhausted)
        throw BenchError("add_process(" + spec.name + "): " + st.error().to_string());
      full = st.error().message;
      return i;
    }
    return count;
  }

  std::vector<std::uint64_t> consumer_rx(const Bed& bed, int n) {
    std::vector<std::uint64_t> v;
    for (int i = 0; i < n; ++i)
      v.push_back(need(bed.consumers[static_cast<std::size_t>(i)].link_stat("p0", "rx_packets"),
                       "read p0 rx_packets"));
    return v;
  }

  // One sending window on `bed` (blast, or paced at `rate` pps), counting on
  // e0 and the first n consumers.
  Window window(Bed& bed, int n, double seconds, Relay* relay, double rate) {
    const auto rx0 = consumer_rx(bed, n);
    const auto in0 = need(bed.edge->link_stat("e0", "rx_packets"), "read e0 rx_packets");
    const double sq0 = softirqd.pinned_ns(), so0 = softirqd.others_ns();
    const double rl0 = relay ? relay->cpu_ns() : 0;
    const CpuStat cs0 = cpu_stat(o.cpu);
    SendResult sr;
    std::thread sender(
        [&] { sr = send_loop(bed.sender->fd(), seconds, stream, bed.pos, relay, rate); });
    sender.join();
    check_stop();
    if (!sr.error.empty()) throw BenchError(sr.error);
    sleep_s(kSettleSeconds);  // backlogs and the relay drain
    const CpuStat cs1 = cpu_stat(o.cpu);
    const double sq1 = softirqd.pinned_ns(), so1 = softirqd.others_ns();
    const double rl1 = relay ? relay->cpu_ns() : 0;
    const auto in1 = need(bed.edge->link_stat("e0", "rx_packets"), "read e0 rx_packets");
    const auto rx1 = consumer_rx(bed, n);
    Window w;
    w.rate = rate;
    w.seconds = sr.seconds;
    w.sent = sr.sent;
    w.input = in1 - in0;
    for (int i = 0; i < n; ++i)
      w.delivered.push_back(rx1[static_cast<std::size_t>(i)] - rx0[static_cast<std::size_t>(i)]);
    w.sender_ns = sr.cpu_ns;
    w.relay_ns = rl1 - rl0;
    w.softirqd_ns = sq1 - sq0;
    w.softirqd_other_ns = so1 - so0;
    w.stat_softirq_ns = (cs1.softirq_all - cs0.softirq_all) * 1e9;
    w.steal = cs1.total > cs0.total ? (cs1.steal - cs0.steal) / (cs1.total - cs0.total) : NAN;
    return w;
  }

  // Activates a configuration, warms up (checking every consumer in use gets
  // traffic), measures a blast window and, with --rate, a paced one, tears
  // it down. Throws Unsupported when the Edge cannot hold the configuration.
  std::vector<Window> run(const Config& c, int round) {
    check_stop();
    Bed& bed = in_shared_bed(c.kind) ? *sbed : *dbed;
    const int n = c.kind == Kind::sink ? 0 : c.n;
    std::optional<Relay> relay;
    std::optional<tb::UdpSocket> sink;
    bool bridge = false, clsact = false, attached = false;
    const bool shared_q = c.kind == Kind::keep_all_shared;
    qocnet::Edge* q = shared_q ? (sedge ? &*sedge : nullptr) : (edge ? &*edge : nullptr);
    const qocnet::StreamId& id = shared_q ? ssid : sid;
    auto teardown = [&] {
      relay.reset();
      sink.reset();
      if (bridge) (void)bed.edge->ip({"link", "del", "br0"});
      if (clsact) (void)tb::run({"tc", "-n", bed.edge->name(), "qdisc", "del", "dev", "e0", "clsact"});
      if (attached) {
        (void)q->set_clone_targets(id, {});
        (void)q->detach_port("e0");
      }
      bridge = clsact = attached = false;
    };
    try {
      switch (c.kind) {
        case Kind::sink:
          sink.emplace(need(tb::UdpSocket::open(*bed.edge, kDEdgeIp, kServicePort, kConsumerRcvbuf),
                            "sink socket"));
          break;
        case Kind::keep_all:
        case Kind::keep_all_shared:
        case Kind::selective: {
          if (!q) throw BenchError("internal: no Edge for " + c.key());
          if (const int took = shared_q ? sprocs : procs; n > took)
            throw Unsupported("the Edge took " + std::to_string(took) + " processes: " +
                              (shared_q ? sprocs_full : procs_full));
          // The stream went on while the program was detached: the DPI
          // starts it afresh (from the next PAT/PMT, within the warm-up)
          // instead of counting a continuity jump.
          need(q->reset_streams(), "reset_streams");
          need(q->attach_port("e0"), "attach_port(e0)");
          attached = true;
          std::vector<std::string> names;
          for (int i = 0; i < n; ++i) names.push_back(process_name(i));
          if (auto st = q->set_clone_targets(id, names); !st) {
            if (st.error().code == qocnet::Errc::resource_exhausted)
              throw Unsupported("set_clone_targets: " + st.error().message);
            throw BenchError("set_clone_targets: " + st.error().to_string());
          }
          for (const auto& p : names)
            need(q->set_policy(p, id,
                               c.kind == Kind::selective ? qocnet::Policy::uniform(kSelectiveDrop)
                                                         : qocnet::Policy::keep()),
                 "set_policy(" + p + ")");
          break;
        }
        case Kind::bridge_nf1:
        case Kind::bridge_nf0: {
          if (nf.present && nf.settable) set_bridge_nf(*bed.edge, c.kind == Kind::bridge_nf1);
          need(bed.edge->ip({"link", "add", "br0", "type", "bridge"}), "create br0");
          bridge = true;
          for (int i = -1; i < n; ++i) {
            const std::string port = i < 0 ? "e0" : edge_port(i);
            need(bed.edge->ip({"link", "set", port, "master", "br0"}), "enslave " + port);
            // The consumers never send, so nothing could teach the bridge
            // their MAC anyway; without learning it surely floods.
            if (i >= 0)
              need(tb::run({"bridge", "-n", bed.edge->name(), "link", "set", "dev", port, "learning",
                            "off"}),
                   "learning off on " + port);
          }
          need(bed.edge->ip({"link", "set", "br0", "up"}), "set br0 up");
          break;
        }
        case Kind::mirred: {
          need(tb::run({"tc", "-n", bed.edge->name(), "qdisc", "add", "dev", "e0", "clsact"}),
               "clsact on e0");
          clsact = true;
          // A filter holds at most 32 actions: filter k (prio k) copies to
          // ports 32(k-1)+1.., the last mirror of all but the last filter
          // ends in "continue" (TC_ACT_UNSPEC: classification goes on with
          // the next filter), the last copy of all is a redirect.
          for (int first = 0, prio = 1; first < n; first += kTcActionsPerFilter, ++prio) {
            std::vector<std::string> cmd{"tc", "-n", bed.edge->name(), "filter", "add", "dev",
                                         "e0", "ingress", "prio", std::to_string(prio),
                                         "protocol", "all", "u32", "match", "u32", "0", "0"};
            const int last = std::min(n, first + kTcActionsPerFilter) - 1;
            for (int i = first; i <= last; ++i) {
              cmd.insert(cmd.end(), {"action", "mirred", "egress", i + 1 < n ? "mirror" : "redirect",
                                     "dev", edge_port(i)});
              if (i == last && i + 1 < n) cmd.push_back("continue");
            }
            need(tb::run(cmd), "u32 + mirred filter " + std::to_string(prio) + " on e0");
          }
          break;
        }
        case Kind::relay:
          relay.emplace(*bed.edge, n);
          break;
      }

      Relay* r = relay ? &*relay : nullptr;
      const Window warm = window(bed, n, kWarmupSeconds, r, 0);
      if (warm.input == 0)
        throw BenchError(c.key() + ": nothing reached e0 in the warm-up (" +
                         std::to_string(warm.sent) + " sent)");
      for (int i = 0; i < n; ++i)
        if (warm.delivered[static_cast<std::size_t>(i)] == 0)
          throw BenchError(c.key() + ": consumer " + std::to_string(i) +
                           " got nothing in the warm-up (" + std::to_string(warm.input) +
                           " datagrams in)");
      std::vector<Window> ws{window(bed, n, o.seconds, r, 0)};
      if (o.rate > 0) ws.push_back(window(bed, n, o.seconds, r, o.rate));
      for (auto& w : ws) {
        w.round = round;
        w.cfg = c;
      }
      teardown();
      return ws;
    } catch (...) {
      teardown();
      throw;
    }
  }
};

// ------------------------------------------------------------ reporting --

struct Summary {
  double input_pps = NAN, delivered_pps = NAN, cpu_ns = NAN, relay_ns = NAN, copies = NAN;
  double other_ns = NAN;       // ksoftirqd of the CPUs not pinned, per input (in cpu_ns)
  double pinned_ns = NAN;      // cpu_ns without other_ns (median of the windows' differences)
  double stat_sirq_ns = NAN;   // /proc/stat softirq of all CPUs, per input (cross-check)
  double min_share = NAN;      // lowest consumer share of the input over the rounds
  int short_of_rate = 0;       // paced windows whose input fell short of the rate
};

// Medians over the rounds of the blast windows (paced = false) or the paced ones.
std::map<std::string, Summary> summarize(const std::vector<Window>& ws, bool paced) {
  std::map<std::string, std::vector<const Window*>> by;
  for (const auto& w : ws)
    if (w.paced() == paced) by[w.cfg.key()].push_back(&w);
  std::map<std::string, Summary> out;
  for (const auto& [k, v] : by) {
    std::vector<double> a, b, c, d, e, f, g, h;
    Summary s;
    for (const Window* w : v) {
      a.push_back(w->input_pps());
      b.push_back(w->delivered_pps());
      c.push_back(w->cpu_ns_per_input());
      d.push_back(w->relay_ns_per_input());
      e.push_back(w->copies());
      f.push_back(w->other_ns_per_input());
      h.push_back(w->cpu_ns_per_input() - w->other_ns_per_input());
      g.push_back(w->stat_softirq_ns_per_input());
      const double m = w->min_share();
      if (!std::isnan(m)) s.min_share = std::isnan(s.min_share) ? m : std::min(s.min_share, m);
      s.short_of_rate += w->short_of_rate() ? 1 : 0;
    }
    s.input_pps = median(a);
    s.delivered_pps = median(b);
    s.cpu_ns = median(c);
    s.relay_ns = median(d);
    s.copies = median(e);
    s.other_ns = median(f);
    s.pinned_ns = median(h);
    s.stat_sirq_ns = median(g);
    out[k] = s;
  }
  return out;
}

// Least-squares slope of y over x (NaN with fewer than two distinct x).
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2) return NAN;
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(y.size());
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return sxx > 0 ? sxy / sxx : NAN;
}

// A table cell: the value rounded, "-" when not measured.
std::string cell(double v) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

struct Target {
  std::string what, metric, vs;
  double limit;
  bool at_most;  // ratio <= limit (else >=)
  std::string needs;  // how to measure it when the run did not
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int status = parse(argc, argv, o); status >= 0) return status;
  if (!require_root("qocnet_replication_bench",
                    "it creates network namespaces, veth pairs, bridges, TC filters and eBPF "
                    "programs",
                    argv[0]))
    return 1;
  if (!pin_to_cpu("qocnet_replication_bench", o.cpu)) return 1;
  stop_on_signals();

  const Machine m = machine();
  std::printf("qocnet_replication_bench: %u CPUs (%s), kernel %s, load %s; pinned to CPU %d\n",
              m.nproc, m.cpu.c_str(), m.kernel.c_str(), m.loadavg.c_str(), o.cpu);
  std::string ns_text;
  for (int n : o.ns) ns_text += (ns_text.empty() ? "" : ",") + std::to_string(n);
  std::printf("  %zu-byte MPEG-TS datagrams (IDR/P/B stretch of %d), sendmmsg x %d; %d round(s) x "
              "%.1f s per configuration, %.1f s warm-up; N = %s\n",
              kPayload, kCycle, kBatch, o.rounds, o.seconds, kWarmupSeconds, ns_text.c_str());
  if (o.rate > 0)
    std::printf("  and a window at a fixed offered rate of %.0f pps per configuration (sendmmsg x %d "
                "at its due time)\n",
                o.rate, std::clamp(static_cast<int>(o.rate / kPacedCallHz), 1, kBatch));
  std::fflush(stdout);

  auto wanted = [&](Kind k) {
    return o.only.empty() || std::find(o.only.begin(), o.only.end(), key_of(k)) != o.only.end();
  };
  const int nmax = o.ns.back();
  // The distinct bed serves keep_all, relay and selective (8 targets); the
  // shared one the bridges, mirred and keep_all_shared.
  const int dcount = std::max(wanted(Kind::keep_all) || wanted(Kind::relay) ? nmax : 1,
                              wanted(Kind::selective) ? kSelectiveTargets : 1);
  const bool shared_wanted = wanted(Kind::bridge_nf1) || wanted(Kind::bridge_nf0) ||
                             wanted(Kind::mirred) || (o.qocnet_shared && wanted(Kind::keep_all_shared));
  const bool qocnet_wanted = wanted(Kind::keep_all) || wanted(Kind::selective);

  JsonLines out;
  std::vector<Window> ws;
  std::vector<Config> plan;
  std::map<std::string, std::string> unsupported;  // config key -> the Edge's reason
  std::string default_bridge;
  try {
    Bench b(o);
    b.stream = make_stream();
    if (!b.softirqd.has_pinned())
      std::printf("  (no ksoftirqd/%d found: its CPU time is not counted)\n", o.cpu);
    const auto tb0 = Clock::now();
    b.dbed = make_bed(true, dcount);
    if (shared_wanted) b.sbed = make_bed(false, nmax);
    std::printf("  testbeds: %d + %d consumer namespaces in %.1f s\n", dcount,
                shared_wanted ? nmax : 0, seconds_since(tb0));
    b.nf = probe_bridge_nf(*b.dbed->edge);
    if (qocnet_wanted) {
      const auto t0 = Clock::now();
      b.edge.emplace(need(tb::in_namespace(*b.dbed->edge, [] { return qocnet::Edge::create(); }),
                          "Edge::create in the edge namespace"));
      std::printf("  Edge::create: %.2f s\n", seconds_since(t0));
      b.procs = Bench::add_processes(*b.edge, dcount, true, b.procs_full);
      if (b.procs < dcount)
        std::printf("  the Edge took %d of %d processes: %s\n", b.procs, dcount, b.procs_full.c_str());
    }
    if (o.qocnet_shared && shared_wanted && wanted(Kind::keep_all_shared)) {
      b.sedge.emplace(need(tb::in_namespace(*b.sbed->edge, [] { return qocnet::Edge::create(); }),
                           "Edge::create in the shared bed's edge namespace"));
      b.sprocs = Bench::add_processes(*b.sedge, nmax, false, b.sprocs_full);
    }

    std::vector<Kind> bridges;
    if (!b.nf.present) {
      bridges = {Kind::bridge_nf0};
      default_bridge = "bridge_nf0";
      std::printf("  br_netfilter is not loaded: one bridge configuration, without its hooks\n");
    } else if (!b.nf.settable) {
      bridges = {b.nf.initial == "1" ? Kind::bridge_nf1 : Kind::bridge_nf0};
      default_bridge = key_of(bridges[0]);
      std::printf("  bridge-nf-call-iptables is global on this kernel: left at %s\n",
                  b.nf.initial.c_str());
    } else {
      bridges = {Kind::bridge_nf1, Kind::bridge_nf0};
      default_bridge = b.nf.initial == "1" ? "bridge_nf1" : "bridge_nf0";
      std::printf("  br_netfilter loaded; a new namespace has bridge-nf-call-iptables = %s "
                  "(the default bridge: %s)\n",
                  b.nf.initial.c_str(), default_bridge.c_str());
    }

    plan.push_back({Kind::sink, 0});
    for (int n : o.ns) {
      std::vector<Kind> kinds{Kind::keep_all};
      if (o.qocnet_shared) kinds.push_back(Kind::keep_all_shared);
      kinds.insert(kinds.end(), bridges.begin(), bridges.end());
      kinds.insert(kinds.end(), {Kind::mirred, Kind::relay});
      for (Kind k : kinds)
        if (wanted(k)) plan.push_back({k, n});
    }
    if (wanted(Kind::selective)) plan.push_back({Kind::selective, kSelectiveTargets});

    std::printf("\n  %-5s %-5s %-16s %11s %11s %11s %7s %7s %9s %8s %6s %6s\n", "round", "mode",
                "config", "sent", "input", "input_pps", "copies", "min%", "cpu_ns/in", "other/in",
                "busy%", "steal%");
    std::fflush(stdout);
    for (int round = 1; round <= o.rounds; ++round)
      for (const Config& c : plan) {
        if (unsupported.count(c.key())) continue;
        std::vector<Window> got;
        try {
          got = b.run(c, round);
        } catch (const Unsupported& e) {
          unsupported[c.key()] = e.what();
          std::printf("  %-5d %-5s %-16s unsupported at this N: %s\n", round, "", c.key().c_str(),
                      e.what());
          std::fflush(stdout);
          continue;
        }
        for (auto& w : got) {
          std::printf("  %-5d %-5s %-16s %11llu %11llu %11.0f %7.2f %7.2f %9.0f %8.0f %6.1f %6.1f%s\n",
                      round, w.paced() ? "rate" : "blast", c.key().c_str(),
                      static_cast<unsigned long long>(w.sent),
                      static_cast<unsigned long long>(w.input), w.input_pps(), w.copies(),
                      100.0 * w.min_share(), w.cpu_ns_per_input(), w.other_ns_per_input(),
                      100.0 * w.busy(), 100.0 * w.steal,
                      w.short_of_rate() ? "  (short of the rate: saturated)" : "");
          ws.push_back(std::move(w));
        }
        std::fflush(stdout);
      }

    if (b.edge) {
      // What the DPI made of the stream, over the whole run.
      auto dc = need(b.edge->dpi_counters(), "dpi_counters");
      std::printf("\n  DPI over the run: %llu datagrams seen, %llu TS; ref %llu, diff %llu, disp %llu, "
                  "other %llu; replicated %llu, clones %llu, all dropped %llu\n",
                  static_cast<unsigned long long>(dc.seen), static_cast<unsigned long long>(dc.ts),
                  static_cast<unsigned long long>(dc.by_class[3]),
                  static_cast<unsigned long long>(dc.by_class[2]),
                  static_cast<unsigned long long>(dc.by_class[1]),
                  static_cast<unsigned long long>(dc.by_class[0]),
                  static_cast<unsigned long long>(dc.replicated),
                  static_cast<unsigned long long>(dc.clones),
                  static_cast<unsigned long long>(dc.all_dropped));
      for (const auto& s : need(b.edge->streams(), "streams"))
        if (s.source_port == kSensorPort)
          std::printf("  stream %s: video PID 0x%x, %s, %u frames, cc errors %llu, misaligned %llu, "
                      "bad sync %llu\n",
                      s.source.c_str(), s.video_pid, qocnet::to_string(s.codec), s.frames,
                      static_cast<unsigned long long>(s.cc_errors),
                      static_cast<unsigned long long>(s.misaligned),
                      static_cast<unsigned long long>(s.ts_bad_sync));
    }
  } catch (const Interrupted&) {
    std::fprintf(stderr, "qocnet_replication_bench: interrupted; namespaces removed\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qocnet_replication_bench: error: %s\n", e.what());
    return 1;
  }

  const auto sum = summarize(ws, false);
  const auto rsum = summarize(ws, true);
  auto from = [](const std::map<std::string, Summary>& in, const std::string& k) -> const Summary& {
    static const Summary none;
    auto it = in.find(k);
    return it == in.end() ? none : it->second;
  };
  auto get = [&](const std::string& k) -> const Summary& { return from(sum, k); };
  auto rget = [&](const std::string& k) -> const Summary& { return from(rsum, k); };
  auto nkey = [](const std::string& kind, int n) { return kind + ".n" + std::to_string(n); };
  const double sink_ns = get("sink").cpu_ns;
  const double rsink_ns = rget("sink").cpu_ns;

  std::vector<std::string> kinds;  // the table's rows: kinds planned at some N
  for (const char* k : {"keep_all", "keep_all_shared", "bridge_nf1", "bridge_nf0", "mirred", "relay"})
    for (int n : o.ns)
      if (std::any_of(plan.begin(), plan.end(), [&](const Config& c) { return c.key() == nkey(k, n); })) {
        kinds.push_back(k);
        break;
      }
  std::vector<std::string> peers;  // what qocnet's input rate is compared with
  for (const auto& k : kinds)
    if (k.rfind("bridge", 0) == 0 || k == "mirred") peers.push_back(k);

  // One table per quantity: a row per kind, a column per N (selective: N=8).
  auto table = [&](const std::map<std::string, Summary>& by, const char* title, const char* note,
                   auto value) {
    std::printf("\n  %-16s", title);
    for (int n : o.ns) std::printf(" %9s", ("N=" + std::to_string(n)).c_str());
    std::printf("   %s\n", note);
    for (const auto& k : kinds) {
      std::printf("  %-16s", k.c_str());
      for (int n : o.ns)
        std::printf(" %9s", unsupported.count(nkey(k, n)) ? "unsup"
                                                          : cell(value(from(by, nkey(k, n)))).c_str());
      std::printf("\n");
    }
    if (by.count("selective.n8"))
      std::printf("  %-16s %9s   (N=8, 8 targets, %.2f copies per input)\n", "selective",
                  cell(value(from(by, "selective.n8"))).c_str(), from(by, "selective.n8").copies);
  };
  std::printf("\n  medians over %d round(s)\n", o.rounds);
  table(sum, "input pps", "", [](const Summary& x) { return x.input_pps; });
  std::printf("  %-16s %9s   (no replication: the sensor's side and one hop)\n", "sink",
              cell(get("sink").input_pps).c_str());
  table(sum, "CPU ns/input", "(sender + relay threads + ksoftirqd, all CPUs)",
        [](const Summary& x) { return x.cpu_ns; });
  std::printf("  %-16s %9s\n", "sink", cell(sink_ns).c_str());
  table(sum, "edge ns/input", "(CPU ns/input - sink's)",
        [&](const Summary& x) { return x.cpu_ns - sink_ns; });
  std::printf("  relay thread alone, ns/input:");
  for (int n : o.ns) std::printf(" N=%d %s", n, cell(get(nkey("relay", n)).relay_ns).c_str());
  std::printf("\n  lowest share of the input any consumer got:");
  for (const auto& [k, s] : sum)
    if (k != "sink") std::printf(" %s %.3f", k.c_str(), s.min_share);
  std::printf("\n");

  // Fixed offered rate: CPU per input, per delivered copy, marginal per copy.
  // The fit runs over the N that keep_all and mirred both have (all of the
  // run's N for a kind when the other did not run), so the ratio compares
  // the same range; the other kinds are fitted over the same N.
  std::vector<int> fit_ns;
  std::map<std::string, double> marginal, marginal_pinned;
  if (o.rate > 0) {
    std::printf("\n  at a fixed offered rate of %.0f pps (medians over %d round(s))\n", o.rate, o.rounds);
    table(rsum, "input pps", "", [](const Summary& x) { return x.input_pps; });
    std::printf("  %-16s %9s\n", "sink", cell(rget("sink").input_pps).c_str());
    table(rsum, "CPU ns/input", "(sender + relay threads + ksoftirqd, all CPUs)",
          [](const Summary& x) { return x.cpu_ns; });
    std::printf("  %-16s %9s\n", "sink", cell(rsink_ns).c_str());
    table(rsum, "edge ns/copy", "((CPU ns/input - sink's) / copies per input)",
          [&](const Summary& x) { return (x.cpu_ns - rsink_ns) / x.copies; });
    table(rsum, "other CPUs ns/in", "(ksoftirqd not on the pinned CPU; in CPU ns/input)",
          [](const Summary& x) { return x.other_ns; });
    table(rsum, "/proc/stat sirq", "(softirq ns/input, all CPUs, tick-sampled; not added)",
          [](const Summary& x) { return x.stat_sirq_ns; });
    int short_windows = 0;
    for (const auto& [k, s] : rsum) short_windows += s.short_of_rate;
    if (short_windows)
      std::printf("  %d paced window(s) fell short of %.0f pps (saturated); their configurations:",
                  short_windows, o.rate);
    for (const auto& [k, s] : rsum)
      if (s.short_of_rate) std::printf(" %s", k.c_str());
    if (short_windows) std::printf("\n");

    auto has = [&](const std::string& k, int n) { return rsum.count(nkey(k, n)) > 0; };
    const bool both = std::count(kinds.begin(), kinds.end(), "keep_all") &&
                      std::count(kinds.begin(), kinds.end(), "mirred");
    for (int n : o.ns)
      if (both ? has("keep_all", n) && has("mirred", n)
               : std::any_of(kinds.begin(), kinds.end(), [&](const auto& k) { return has(k, n); }))
        fit_ns.push_back(n);
    std::printf("\n  marginal CPU per copy (least-squares slope of CPU ns/input over N = ");
    for (std::size_t i = 0; i < fit_ns.size(); ++i) std::printf("%s%d", i ? "," : "", fit_ns[i]);
    std::printf("):");
    for (const auto& k : kinds) {
      std::vector<double> x, y, yp;
      for (int n : fit_ns)
        if (has(k, n)) {
          x.push_back(static_cast<double>(n));
          y.push_back(rget(nkey(k, n)).cpu_ns);
          yp.push_back(rget(nkey(k, n)).pinned_ns);
        }
      marginal[k] = x.size() == fit_ns.size() ? slope(x, y) : NAN;
      marginal_pinned[k] = x.size() == fit_ns.size() ? slope(x, yp) : NAN;
      std::printf(" %s %s", k.c_str(), cell(marginal[k]).c_str());
    }
    std::printf(" ns\n  the same without the other CPUs' ksoftirqd (the pinned CPU only):");
    for (const auto& k : kinds) std::printf(" %s %s", k.c_str(), cell(marginal_pinned[k]).c_str());
    std::printf(" ns\n");
    // Each kind over all the N it ran at (differs where qocnet's limit cut the range).
    std::printf("  over all the N each ran at:");
    for (const auto& k : kinds) {
      std::vector<double> x, y;
      for (int n : o.ns)
        if (has(k, n)) {
          x.push_back(static_cast<double>(n));
          y.push_back(rget(nkey(k, n)).cpu_ns);
        }
      std::printf(" %s %s (N=%s..%s)", k.c_str(), cell(slope(x, y)).c_str(),
                  x.empty() ? "-" : cell(x.front()).c_str(), x.empty() ? "-" : cell(x.back()).c_str());
    }
    std::printf(" ns\n");
  }

  // JSON lines: every figure, then the comparisons. Every planned
  // configuration has its lines; an unsupported one has null values and
  // <key>.unsupported = 1.
  std::vector<std::string> keys;
  for (const auto& c : plan)
    if (std::find(keys.begin(), keys.end(), c.key()) == keys.end()) keys.push_back(c.key());
  for (const auto& k : keys) {
    const Summary& s = get(k);
    if (unsupported.count(k)) out.add(kBench, k + ".unsupported", 1, "flag", 0);
    out.add(kBench, k + ".input_pps", s.input_pps, "pps", 0);
    if (k != "sink") out.add(kBench, k + ".delivered_pps", s.delivered_pps, "pps", 0);
    out.add(kBench, k + ".cpu_ns_per_input", s.cpu_ns, "ns", 0);
    if (k != "sink") out.add(kBench, k + ".edge_cpu_ns_per_input", s.cpu_ns - sink_ns, "ns", 0);
    if (k.rfind("relay.", 0) == 0) out.add(kBench, k + ".relay_thread_ns_per_input", s.relay_ns, "ns", 0);
    if (o.rate > 0) {
      const Summary& r = rget(k);
      out.add(kBench, k + ".rate_input_pps", r.input_pps, "pps", 0);
      out.add(kBench, k + ".rate_cpu_ns_per_input", r.cpu_ns, "ns", 0);
      out.add(kBench, k + ".rate_other_cpus_ns_per_input", r.other_ns, "ns", 0);
      if (k != "sink") {
        out.add(kBench, k + ".rate_edge_cpu_ns_per_input", r.cpu_ns - rsink_ns, "ns", 0);
        out.add(kBench, k + ".rate_edge_cpu_ns_per_copy", (r.cpu_ns - rsink_ns) / r.copies, "ns", 0);
      }
    }
  }
  if (o.rate > 0) {
    out.add(kBench, "rate_offered_pps", o.rate, "pps", 0);
    out.add(kBench, "marginal.n_min", fit_ns.empty() ? NAN : static_cast<double>(fit_ns.front()), "N", 0);
    out.add(kBench, "marginal.n_max", fit_ns.empty() ? NAN : static_cast<double>(fit_ns.back()), "N", 0);
    for (const auto& [k, v] : marginal) out.add(kBench, k + ".marginal_cpu_ns_per_copy", v, "ns", 0);
    for (const auto& [k, v] : marginal_pinned)
      out.add(kBench, k + ".marginal_cpu_pinned_ns_per_copy", v, "ns", 0);
  }
  // Comparisons between configurations this run planned (an unsupported
  // one included: its ratio is null).
  auto planned = [&](const std::string& key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  auto compare = [&](const std::string& a, const std::string& b, const std::string& metric) {
    if (planned(a) && planned(b)) out.compare(kBench, a + metric, b + metric);
  };
  for (int n : o.ns) {
    const std::string q = nkey("keep_all", n), relay = nkey("relay", n);
    for (const auto& k : peers) compare(q, nkey(k, n), ".input_pps");
    compare(q, relay, ".edge_cpu_ns_per_input");
    compare(q, relay, ".cpu_ns_per_input");
    if (o.rate > 0) {
      for (const auto& k : peers) compare(q, nkey(k, n), ".rate_cpu_ns_per_input");
      compare(q, relay, ".rate_edge_cpu_ns_per_input");
      if (n > 8) compare(q, "keep_all.n8", ".rate_edge_cpu_ns_per_copy");
    }
  }
  for (const auto& k : peers) compare("selective.n8", nkey(k, 8), ".input_pps");
  if (o.rate > 0 && std::count(kinds.begin(), kinds.end(), "keep_all"))
    for (const auto& k : kinds)
      if (k != "keep_all")
        for (const char* metric : {".marginal_cpu_ns_per_copy", ".marginal_cpu_pinned_ns_per_copy"})
          out.compare(kBench, std::string("keep_all") + metric, k + metric);

  // Issue 14's replication targets (docs/BENCHMARKS.md, Replication).
  const std::string rate_cmd = "--rate R, keep_all and mirred at two or more N (to 64: --n 1,2,4,8,16,32,64)";
  const std::vector<Target> targets{
      {"keep-all >= 0.9x mirred, N=8 (stretch 1.0)", "keep_all.n8.input_pps", "mirred.n8.input_pps", 0.9, false, "keep_all and mirred at N=8"},
      {"keep-all >= 1.25x default bridge, N=1", "keep_all.n1.input_pps", default_bridge + ".n1.input_pps", 1.25, false, "keep_all and " + default_bridge + " at N=1"},
      {"keep-all >= 1.15x default bridge, N=8", "keep_all.n8.input_pps", default_bridge + ".n8.input_pps", 1.15, false, "keep_all and " + default_bridge + " at N=8"},
      {"selective >= 1.3x mirred copying all 8", "selective.n8.input_pps", "mirred.n8.input_pps", 1.3, false, "selective, and mirred at N=8"},
      {"marginal CPU/copy <= 1.15x mirred's", "keep_all.marginal_cpu_ns_per_copy", "mirred.marginal_cpu_ns_per_copy", 1.15, true, rate_cmd},
      {"CPU per copy, N=64 <= 1.1x N=8", "keep_all.n64.rate_edge_cpu_ns_per_copy", "keep_all.n8.rate_edge_cpu_ns_per_copy", 1.1, true, "--rate R, keep_all at N=8 and 64"},
      {"keep-all CPU <= 0.30x relay, N=8", "keep_all.n8.edge_cpu_ns_per_input", "relay.n8.edge_cpu_ns_per_input", 0.30, true, "keep_all and relay at N=8"},
  };
  std::printf("\n  targets (default bridge = %s", default_bridge.c_str());
  if (!fit_ns.empty()) std::printf("; marginal over N = %d..%d", fit_ns.front(), fit_ns.back());
  std::printf(")\n");
  for (const auto& t : targets) {
    const double r = out.value(kBench, t.metric) / out.value(kBench, t.vs);
    std::printf("  %-44s ", t.what.c_str());
    if (!std::isfinite(r)) {
      const auto un = [&](const std::string& metric) {
        const auto dot = metric.find('.', metric.find('.') + 1);
        return unsupported.count(metric.substr(0, dot)) > 0;
      };
      std::printf("not measured (%s)\n", un(t.metric) || un(t.vs)
                                             ? "unsupported at this N"
                                             : ("needs " + t.needs).c_str());
      continue;
    }
    const bool pass = t.at_most ? r <= t.limit : r >= t.limit;
    std::printf("ratio %6.3f  %s", r, pass ? "PASS" : "MISS");
    if (!pass) std::printf(" (%+.1f%% of the target)", 100.0 * (r / t.limit - 1.0));
    std::printf("\n");
  }
  if (default_bridge == "bridge_nf1" && sum.count("bridge_nf0.n1"))
    std::printf("  against the bridge without br_netfilter: keep-all N=1 %.3f, N=8 %.3f; selective %.3f\n",
                get("keep_all.n1").input_pps / get("bridge_nf0.n1").input_pps,
                get("keep_all.n8").input_pps / get("bridge_nf0.n8").input_pps,
                get("selective.n8").input_pps / get("bridge_nf0.n8").input_pps);
  if (sum.count("keep_all.n8") && sum.count("relay.n8"))
    std::printf("  whole-path CPU ns/input, keep-all / relay at N=8: %.3f\n",
                get("keep_all.n8").cpu_ns / get("relay.n8").cpu_ns);
  std::printf("\n");
  std::fflush(stdout);
  out.print(stdout);
  return 0;
}
