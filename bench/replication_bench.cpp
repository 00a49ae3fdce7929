// qocnet_replication_bench — one UDP video stream replicated to N consumers,
// qocnet against the kernel's and user space's ways of doing it (needs root).
//
//   sensor [s0] ---- [e0] edge [e1] ---- [p0] consumer 0
//                             [e2] ---- [p0] consumer 1 ... (up to 8)
//
// Two such beds. In the "distinct" bed every consumer has its own MAC, IPv4
// address and UDP port, as containers do: qocnet rewrites each copy
// (Edge::add_process), and a user-space relay sends to each address. In the
// "shared" bed every consumer's p0 has the same MAC and address, because a
// bridge or tc mirred copies frames without rewriting them: each consumer
// then accepts its copy. Configurations, one active at a time, per N:
//
//   keep_all     qocnet, set_clone_targets on the sensor's stream, keep for all
//   bridge_nf1   br0 holding e0..eN, flooding (no fdb entry for the consumers'
//                MAC, learning off on e1..eN), bridge-nf-call-* = 1
//   bridge_nf0   the same with bridge-nf-call-* = 0
//   mirred       clsact on e0, u32 match-all, mirred egress mirror to e1..eN-1
//                and redirect to eN
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
// The sensor blasts 1316-byte MPEG-TS datagrams (sendmmsg) from a thread on
// one pinned CPU; over veth the whole path runs on that CPU. Input = e0's
// rx_packets, delivered = each consumer's p0 rx_packets. CPU = the sender's
// and the relay's thread CPU time plus ksoftirqd on that CPU, per input packet.
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
constexpr int kMaxConsumers = 8;
constexpr std::array<int, 4> kCounts{1, 2, 4, 8};
constexpr std::size_t kPayload = 1316;   // 7 TS packets
constexpr int kCycle = 62;               // datagrams per repeated stretch of the stream
constexpr int kBatch = 64;               // datagrams per sendmmsg / recvmmsg call
constexpr double kWarmupSeconds = 0.3;   // per configuration activation
constexpr double kSettleSeconds = 0.1;   // after sending, before reading counters
constexpr std::uint32_t kRelayWindow = 256;  // datagrams the sensor may be ahead of the relay
constexpr double kSelectiveDrop = 0.375;     // uniform(p) on 8 targets: 5 kept on average
constexpr int kConsumerRcvbuf = 1 << 16;     // consumers never read: small buffers

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
  char b[18];
  std::snprintf(b, sizeof b, "02:%02x:00:00:%02x:%02x", bed, kind, i + 1);
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
  bool qocnet_shared = false;     // also qocnet on the shared bed (keep_all_shared)
  std::vector<std::string> only;  // configuration kinds to run (empty: all)
};

// Parses the command line into `o`: -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& o) {
  CLI::App app{"One MPEG-TS stream replicated to 1..8 consumer namespaces by qocnet, a Linux "
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
  return parse_command_line(app, argc, argv);
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
std::unique_ptr<Bed> make_bed(bool distinct) {
  auto bed = std::make_unique<Bed>();
  bed->label = distinct ? "distinct" : "shared";
  const std::string tag = distinct ? "d" : "s";
  bed->sensor.emplace(need(tb::Namespace::create(tb::unique_name(tag + "s")), "create namespace"));
  bed->edge.emplace(need(tb::Namespace::create(tb::unique_name(tag + "e")), "create namespace"));
  bed->consumers.reserve(kMaxConsumers);
  for (int i = 0; i < kMaxConsumers; ++i)
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
  for (int i = 0; i < kMaxConsumers; ++i) {
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

// Blasts the stream on the connected socket until the deadline; with a relay,
// stays at most kRelayWindow datagrams ahead of it (a relay on the same CPU
// would otherwise lose most of them at its socket).
// `pos` is where in the stream to go on (the next datagram to send): every
// window continues the stream where the last one on the bed stopped.
SendResult send_loop(int fd, double seconds, const std::vector<std::vector<std::uint8_t>>& stream,
                     std::size_t& pos, Relay* relay) {
  SendResult r;
  std::vector<iovec> iov(stream.size());
  for (std::size_t i = 0; i < stream.size(); ++i)
    iov[i] = {const_cast<std::uint8_t*>(stream[i].data()), stream[i].size()};
  std::array<mmsghdr, kBatch> msgs{};
  for (auto& m : msgs) m.msg_hdr.msg_iovlen = 1;
  const std::uint32_t base = relay ? relay->relayed.load() : 0;  // relayed before this window
  const double cpu0 = thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (!g_stop && Clock::now() < deadline) {
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
    for (auto& m : msgs) {
      m.msg_hdr.msg_iov = &iov[pos];
      pos = pos + 1 == iov.size() ? 0 : pos + 1;
    }
    int n = ::sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n > 0) {
      r.sent += static_cast<std::uint64_t>(n);
      if (n < kBatch) pos = (pos + iov.size() - static_cast<std::size_t>(kBatch - n) % iov.size()) % iov.size();
      continue;
    }
    if (n < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)) {
      ++r.retries;
      pos = (pos + iov.size() - static_cast<std::size_t>(kBatch) % iov.size()) % iov.size();
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

// ksoftirqd/<cpu>: softirq work the sending threads did not do inline.
struct Softirqd {
  std::string schedstat;  // /proc/<pid>/schedstat, empty if not found
  explicit Softirqd(int cpu) {
    const std::string want = "ksoftirqd/" + std::to_string(cpu);
    for (const auto& d : std::filesystem::directory_iterator("/proc")) {
      const std::string pid = d.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream f(d.path() / "comm");
      std::string comm;
      if (std::getline(f, comm) && comm == want) {
        schedstat = (d.path() / "schedstat").string();
        return;
      }
    }
  }
  double ns() const {  // run time in ns (0 if unknown)
    if (schedstat.empty()) return 0;
    std::ifstream f(schedstat);
    double v = 0;
    f >> v;
    return v;
  }
};

// The pinned CPU's line of /proc/stat: total and steal time, in USER_HZ.
struct CpuStat {
  double total = 0, steal = 0;
};
CpuStat cpu_stat(int cpu) {
  std::ifstream f("/proc/stat");
  std::string line, want = "cpu" + std::to_string(cpu) + " ";
  CpuStat s;
  while (std::getline(f, line))
    if (line.rfind(want, 0) == 0) {
      std::istringstream in(line.substr(want.size()));
      double v[8] = {};
      for (double& x : v) in >> x;
      for (double x : v) s.total += x;
      s.steal = v[7];
      break;
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

struct Window {
  int round = 0;
  Config cfg{Kind::sink, 0};
  double seconds = 0;                  // the sender's sending time
  std::uint64_t sent = 0, input = 0;   // datagrams sent; accepted by e0 (its rx_packets)
  std::vector<std::uint64_t> delivered;  // per consumer in use (p0 rx_packets)
  double sender_ns = 0, relay_ns = 0, softirqd_ns = 0;  // CPU time
  double steal = 0;                    // share of the CPU the hypervisor took

  double input_pps() const { return seconds > 0 ? static_cast<double>(input) / seconds : NAN; }
  double delivered_total() const {
    double t = 0;
    for (auto d : delivered) t += static_cast<double>(d);
    return t;
  }
  double delivered_pps() const { return seconds > 0 ? delivered_total() / seconds : NAN; }
  double cpu_ns() const { return sender_ns + relay_ns + softirqd_ns; }
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
  explicit Bench(const Options& opts) : o(opts), softirqd(opts.cpu) {}

  std::vector<std::uint64_t> consumer_rx(const Bed& bed, int n) {
    std::vector<std::uint64_t> v;
    for (int i = 0; i < n; ++i)
      v.push_back(need(bed.consumers[static_cast<std::size_t>(i)].link_stat("p0", "rx_packets"),
                       "read p0 rx_packets"));
    return v;
  }

  // One sending window on `bed`, counting on e0 and the first n consumers.
  Window blast(Bed& bed, int n, double seconds, Relay* relay) {
    const auto rx0 = consumer_rx(bed, n);
    const auto in0 = need(bed.edge->link_stat("e0", "rx_packets"), "read e0 rx_packets");
    const double sq0 = softirqd.ns(), rl0 = relay ? relay->cpu_ns() : 0;
    const CpuStat cs0 = cpu_stat(o.cpu);
    SendResult sr;
    std::thread sender([&] { sr = send_loop(bed.sender->fd(), seconds, stream, bed.pos, relay); });
    sender.join();
    check_stop();
    if (!sr.error.empty()) throw BenchError(sr.error);
    sleep_s(kSettleSeconds);  // backlogs and the relay drain
    const CpuStat cs1 = cpu_stat(o.cpu);
    const double sq1 = softirqd.ns(), rl1 = relay ? relay->cpu_ns() : 0;
    const auto in1 = need(bed.edge->link_stat("e0", "rx_packets"), "read e0 rx_packets");
    const auto rx1 = consumer_rx(bed, n);
    Window w;
    w.seconds = sr.seconds;
    w.sent = sr.sent;
    w.input = in1 - in0;
    for (int i = 0; i < n; ++i)
      w.delivered.push_back(rx1[static_cast<std::size_t>(i)] - rx0[static_cast<std::size_t>(i)]);
    w.sender_ns = sr.cpu_ns;
    w.relay_ns = rl1 - rl0;
    w.softirqd_ns = sq1 - sq0;
    w.steal = cs1.total > cs0.total ? (cs1.steal - cs0.steal) / (cs1.total - cs0.total) : NAN;
    return w;
  }

  // Activates a configuration, warms up (checking every consumer in use gets
  // traffic), measures, tears it down.
  Window run(const Config& c, int round) {
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
          // The stream went on while the program was detached: the DPI
          // starts it afresh (from the next PAT/PMT, within the warm-up)
          // instead of counting a continuity jump.
          need(q->reset_streams(), "reset_streams");
          need(q->attach_port("e0"), "attach_port(e0)");
          attached = true;
          std::vector<std::string> names;
          for (int i = 0; i < n; ++i) names.push_back(process_name(i));
          need(q->set_clone_targets(id, names), "set_clone_targets");
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
          std::vector<std::string> cmd{"tc", "-n", bed.edge->name(), "filter", "add", "dev", "e0",
                                       "ingress", "prio", "1", "protocol", "all", "u32", "match",
                                       "u32", "0", "0"};
          for (int i = 0; i < n; ++i) {
            cmd.insert(cmd.end(), {"action", "mirred", "egress", i + 1 < n ? "mirror" : "redirect",
                                   "dev", edge_port(i)});
          }
          need(tb::run(cmd), "u32 + mirred filter on e0");
          break;
        }
        case Kind::relay:
          relay.emplace(*bed.edge, n);
          break;
      }

      const Window warm = blast(bed, n, kWarmupSeconds, relay ? &*relay : nullptr);
      if (warm.input == 0)
        throw BenchError(c.key() + ": nothing reached e0 in the warm-up (" +
                         std::to_string(warm.sent) + " sent)");
      for (int i = 0; i < n; ++i)
        if (warm.delivered[static_cast<std::size_t>(i)] == 0)
          throw BenchError(c.key() + ": consumer " + std::to_string(i) +
                           " got nothing in the warm-up (" + std::to_string(warm.input) +
                           " datagrams in)");
      Window w = blast(bed, n, o.seconds, relay ? &*relay : nullptr);
      w.round = round;
      w.cfg = c;
      teardown();
      return w;
    } catch (...) {
      teardown();
      throw;
    }
  }
};

// ------------------------------------------------------------ reporting --

struct Summary {
  double input_pps = NAN, delivered_pps = NAN, cpu_ns = NAN, relay_ns = NAN, copies = NAN;
  double min_share = NAN;  // lowest consumer share of the input over the rounds
};

std::map<std::string, Summary> summarize(const std::vector<Window>& ws) {
  std::map<std::string, std::vector<const Window*>> by;
  for (const auto& w : ws) by[w.cfg.key()].push_back(&w);
  std::map<std::string, Summary> out;
  for (const auto& [k, v] : by) {
    std::vector<double> a, b, c, d, e;
    Summary s;
    for (const Window* w : v) {
      a.push_back(w->input_pps());
      b.push_back(w->delivered_pps());
      c.push_back(w->cpu_ns_per_input());
      d.push_back(w->relay_ns_per_input());
      e.push_back(w->copies());
      const double m = w->min_share();
      if (!std::isnan(m)) s.min_share = std::isnan(s.min_share) ? m : std::min(s.min_share, m);
    }
    s.input_pps = median(a);
    s.delivered_pps = median(b);
    s.cpu_ns = median(c);
    s.relay_ns = median(d);
    s.copies = median(e);
    out[k] = s;
  }
  return out;
}

struct Target {
  std::string what, metric, vs;
  double limit;
  bool at_most;  // ratio <= limit (else >=)
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
  std::printf("  %zu-byte MPEG-TS datagrams (IDR/P/B stretch of %d), sendmmsg x %d; %d round(s) x "
              "%.1f s per configuration, %.1f s warm-up\n",
              kPayload, kCycle, kBatch, o.rounds, o.seconds, kWarmupSeconds);
  std::fflush(stdout);

  JsonLines out;
  std::vector<Window> ws;
  std::map<std::string, Summary> sum;
  std::string default_bridge;
  try {
    Bench b(o);
    b.stream = make_stream();
    if (b.softirqd.schedstat.empty())
      std::printf("  (no ksoftirqd/%d found: its CPU time is not counted)\n", o.cpu);
    b.dbed = make_bed(true);
    b.sbed = make_bed(false);
    b.nf = probe_bridge_nf(*b.sbed->edge);
    const auto t0 = Clock::now();
    b.edge.emplace(need(tb::in_namespace(*b.dbed->edge, [] { return qocnet::Edge::create(); }),
                        "Edge::create in the edge namespace"));
    std::printf("  Edge::create: %.2f s\n", seconds_since(t0));
    for (int i = 0; i < kMaxConsumers; ++i)
      need(b.edge->add_process({process_name(i), edge_port(i), d_consumer_mac(i), d_consumer_ip(i),
                                static_cast<std::uint16_t>(kConsumerPort + i)}),
           "add_process");
    if (o.qocnet_shared) {
      b.sedge.emplace(need(tb::in_namespace(*b.sbed->edge, [] { return qocnet::Edge::create(); }),
                           "Edge::create in the shared bed's edge namespace"));
      // Every consumer has the same MAC and address: only the MAC is
      // rewritten (to the value it has), the IPv4 address and port are kept.
      for (int i = 0; i < kMaxConsumers; ++i)
        need(b.sedge->add_process({process_name(i), edge_port(i), kSConsumerMac, "", 0}),
             "add_process (shared bed)");
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

    auto wanted = [&](Kind k) {
      return o.only.empty() || std::find(o.only.begin(), o.only.end(), key_of(k)) != o.only.end();
    };
    std::vector<Config> plan{{Kind::sink, 0}};
    for (int n : kCounts) {
      std::vector<Kind> kinds{Kind::keep_all};
      if (o.qocnet_shared) kinds.push_back(Kind::keep_all_shared);
      kinds.insert(kinds.end(), bridges.begin(), bridges.end());
      kinds.insert(kinds.end(), {Kind::mirred, Kind::relay});
      for (Kind k : kinds)
        if (wanted(k)) plan.push_back({k, n});
    }
    if (wanted(Kind::selective)) plan.push_back({Kind::selective, kMaxConsumers});

    std::printf("\n  %-5s %-14s %12s %12s %12s %7s %7s %9s %6s %6s\n", "round", "config", "sent",
                "input", "input_pps", "copies", "min%", "cpu_ns/in", "busy%", "steal%");
    std::fflush(stdout);
    for (int round = 1; round <= o.rounds; ++round)
      for (const Config& c : plan) {
        Window w = b.run(c, round);
        std::printf("  %-5d %-14s %12llu %12llu %12.0f %7.2f %7.2f %9.0f %6.1f %6.1f\n", round,
                    c.key().c_str(), static_cast<unsigned long long>(w.sent),
                    static_cast<unsigned long long>(w.input), w.input_pps(), w.copies(),
                    100.0 * w.min_share(), w.cpu_ns_per_input(), 100.0 * w.busy(), 100.0 * w.steal);
        std::fflush(stdout);
        ws.push_back(std::move(w));
      }

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
  } catch (const Interrupted&) {
    std::fprintf(stderr, "qocnet_replication_bench: interrupted; namespaces removed\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qocnet_replication_bench: error: %s\n", e.what());
    return 1;
  }

  sum = summarize(ws);
  auto get = [&](const std::string& k) -> const Summary& {
    static const Summary none;
    auto it = sum.find(k);
    return it == sum.end() ? none : it->second;
  };
  const double sink_ns = get("sink").cpu_ns;

  std::vector<std::string> kinds;
  for (const char* k : {"keep_all", "keep_all_shared", "bridge_nf1", "bridge_nf0", "mirred", "relay"})
    if (sum.count(std::string(k) + ".n1")) kinds.push_back(k);
  std::vector<std::string> peers;  // what qocnet's input rate is compared with
  for (const auto& k : kinds)
    if (k.rfind("bridge", 0) == 0 || k == "mirred") peers.push_back(k);

  // One table per quantity: a row per kind, a column per N (selective: N=8).
  auto table = [&](const char* title, const char* note, auto value) {
    std::printf("\n  %-16s %10s %10s %10s %10s   %s\n", title, "N=1", "N=2", "N=4", "N=8", note);
    for (const auto& k : kinds) {
      std::printf("  %-16s", k.c_str());
      for (int n : kCounts) std::printf(" %10.0f", value(get(k + ".n" + std::to_string(n))));
      std::printf("\n");
    }
    if (sum.count("selective.n8"))
      std::printf("  %-16s %10s %10s %10s %10.0f   (8 targets, %.2f copies per input)\n", "selective",
                  "", "", "", value(get("selective.n8")), get("selective.n8").copies);
  };
  std::printf("\n  medians over %d round(s)\n", o.rounds);
  table("input pps", "", [](const Summary& x) { return x.input_pps; });
  std::printf("  %-16s %10.0f   (no replication: the sensor's side and one hop)\n", "sink",
              get("sink").input_pps);
  table("CPU ns/input", "(sender + relay threads + ksoftirqd)", [](const Summary& x) { return x.cpu_ns; });
  std::printf("  %-16s %10.0f\n", "sink", sink_ns);
  table("edge ns/input", "(CPU ns/input - sink's)",
        [&](const Summary& x) { return x.cpu_ns - sink_ns; });
  std::printf("  relay thread alone, ns/input:");
  for (int n : kCounts) std::printf(" N=%d %.0f", n, get("relay.n" + std::to_string(n)).relay_ns);
  std::printf("\n  lowest share of the input any consumer got:");
  for (const auto& [k, s] : sum)
    if (k != "sink") std::printf(" %s %.3f", k.c_str(), s.min_share);
  std::printf("\n");

  // JSON lines: every figure, then the comparisons.
  for (const auto& [k, s] : sum) {
    out.add(kBench, k + ".input_pps", s.input_pps, "pps", 0);
    if (k != "sink") out.add(kBench, k + ".delivered_pps", s.delivered_pps, "pps", 0);
    out.add(kBench, k + ".cpu_ns_per_input", s.cpu_ns, "ns", 0);
    if (k != "sink") out.add(kBench, k + ".edge_cpu_ns_per_input", s.cpu_ns - sink_ns, "ns", 0);
    if (k.rfind("relay.", 0) == 0) out.add(kBench, k + ".relay_thread_ns_per_input", s.relay_ns, "ns", 0);
  }
  for (int n : kCounts) {
    const std::string sn = ".n" + std::to_string(n);
    for (const auto& k : peers) out.compare(kBench, "keep_all" + sn + ".input_pps", k + sn + ".input_pps");
    out.compare(kBench, "keep_all" + sn + ".edge_cpu_ns_per_input", "relay" + sn + ".edge_cpu_ns_per_input");
    out.compare(kBench, "keep_all" + sn + ".cpu_ns_per_input", "relay" + sn + ".cpu_ns_per_input");
  }
  for (const auto& k : peers) out.compare(kBench, "selective.n8.input_pps", k + ".n8.input_pps");

  const std::vector<Target> targets{
      {"keep-all >= 1.25x default bridge, N=1", "keep_all.n1.input_pps", default_bridge + ".n1.input_pps", 1.25, false},
      {"keep-all >= 1.15x default bridge, N=8", "keep_all.n8.input_pps", default_bridge + ".n8.input_pps", 1.15, false},
      {"keep-all >= 1.0x mirred, N=8", "keep_all.n8.input_pps", "mirred.n8.input_pps", 1.0, false},
      {"selective >= 1.5x default bridge (N=8)", "selective.n8.input_pps", default_bridge + ".n8.input_pps", 1.5, false},
      {"selective >= 1.25x mirred (N=8)", "selective.n8.input_pps", "mirred.n8.input_pps", 1.25, false},
      {"keep-all CPU <= 0.33x relay, N=8", "keep_all.n8.edge_cpu_ns_per_input", "relay.n8.edge_cpu_ns_per_input", 0.33, true},
  };
  std::printf("\n  targets (default bridge = %s)\n", default_bridge.c_str());
  for (const auto& t : targets) {
    const double r = out.value(kBench, t.metric) / out.value(kBench, t.vs);
    const bool pass = t.at_most ? r <= t.limit : r >= t.limit;
    std::printf("  %-42s ratio %6.3f  %s", t.what.c_str(), r, pass ? "PASS" : "MISS");
    if (!pass) std::printf(" (%+.1f%% of the target)", 100.0 * (r / t.limit - 1.0));
    std::printf("\n");
  }
  if (default_bridge == "bridge_nf1" && sum.count("bridge_nf0.n1"))
    std::printf("  against the bridge without br_netfilter: keep-all N=1 %.3f, N=8 %.3f; selective %.3f\n",
                get("keep_all.n1").input_pps / get("bridge_nf0.n1").input_pps,
                get("keep_all.n8").input_pps / get("bridge_nf0.n8").input_pps,
                get("selective.n8").input_pps / get("bridge_nf0.n8").input_pps);
  std::printf("  whole-path CPU ns/input, keep-all / relay at N=8: %.3f\n\n",
              get("keep_all.n8").cpu_ns / get("relay.n8").cpu_ns);
  std::fflush(stdout);
  out.print(stdout);
  return 0;
}
