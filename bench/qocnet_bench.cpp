// SPDX-License-Identifier: Apache-2.0
// qocnet_bench — two figures of the edge datapath, in one run (needs root):
//
//  1. cold compile+attach: each trial is a fresh process (this program,
//     re-executed with a hidden flag) that enters a testbed namespace, calls
//     Edge::create() and attach_port() on a veth end, and reports the wall
//     time of those calls and its peak RSS (VmHWM).
//  2. port-pair forwarding vs the Linux bridge: UDP from a sensor namespace
//     through an edge namespace to a receiver namespace,
//
//       sensor [s0] ---- [e0] edge [e1] ---- [p0] receiver
//
//     with the edge forwarding e0 -> e1 by qocnet's port pair, or by a bridge
//     br0 holding e0 and e1 (without, and when br_netfilter is loaded also
//     with, br_netfilter's hooks). The configurations alternate, one active at
//     a time; delivered packets are counted on p0.
//
// Prints a table, and a single JSON object as the last line of stdout; with
// --jsonl, the results as JSON lines of scripts/bench's format instead of
// that object. See docs/BENCHMARKS.md.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"
#include "bench_util.hpp"

using namespace qocnet::bench;

namespace {

namespace tb = qocnet::testbed;

constexpr const char* kChildFlag = "--child-compile";
constexpr const char* kChildTag = "QOCNET_BENCH_CHILD";
constexpr double kTargetSeconds = 1.0;  // compile+attach target on this machine
constexpr double kWarmupSeconds = 0.3;  // per configuration activation
constexpr int kBatch = 64;              // datagrams per sendmmsg call

// Forwarding topology. e0's MAC differs from p0's, so a bridge forwards the
// frames instead of delivering them to its own stack.
constexpr const char* kSensorIp = "10.78.0.1";
constexpr const char* kRecvIp = "10.78.0.2";
constexpr const char* kS0Mac = "02:78:00:00:00:01";
constexpr const char* kE0Mac = "02:78:00:00:00:02";
constexpr const char* kE1Mac = "02:78:00:00:00:03";
constexpr const char* kP0Mac = "02:78:00:00:00:04";
constexpr std::uint16_t kRecvPort = 9000;

// ---------------------------------------------------------------- basics --

// A value of /proc/self/status in kB ("VmHWM:  12345 kB"), -1 if absent.
long status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::strtol(line.c_str() + key.size() + 1, nullptr, 10);
  return -1;
}

// --------------------------------------------------------------- options --

struct Options {
  int trials = 5;
  int rounds = 3;
  double seconds = 2.0;
  int payload = 512;
  bool compile = true, forward = true;
  bool jsonl = false;
  bool child = false;    // kChildFlag given: a compile trial's child process,
  std::string child_ns;  // in this namespace
};

// Parses the command line into `o`: -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& o) {
  CLI::App app{"Cold compile+attach time of qocnet's edge datapath, and port-pair forwarding "
               "rate against the Linux bridge (docs/BENCHMARKS.md).",
               "qocnet_bench"};
  app.footer("Needs root. Prints a table, and one JSON object as the last line.");
  option_defaults(app);
  std::vector<CLI::Option*> opts;
  opts.push_back(app.add_option("--trials", o.trials,
                                "cold compile+attach trials, each a fresh process")
                     ->type_name("N")
                     ->transform(integer_in(1, 100))
                     ->capture_default_str());
  opts.push_back(app.add_option("--rounds", o.rounds,
                                "forwarding rounds; each runs qocnet, bridge, bridge+nf")
                     ->type_name("N")
                     ->transform(integer_in(1, 100))
                     ->capture_default_str());
  opts.push_back(app.add_option("--seconds", o.seconds, "sending time per forwarding run")
                     ->type_name("S")
                     ->transform(number_in(0.1, 600))
                     ->capture_default_str());
  opts.push_back(app.add_option("--payload", o.payload, "UDP payload bytes")
                     ->type_name("B")
                     ->transform(integer_in(1, 1472))
                     ->capture_default_str());
  std::vector<std::string> only;
  opts.push_back(app.add_option("--only", only, "run only the compile or the forward part")
                     ->type_name("X")
                     ->check(CLI::IsMember({"compile", "forward"}))
                     ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                     ->allow_extra_args(false));
  opts.push_back(app.add_flag("--jsonl", o.jsonl,
                              "end with the results as JSON lines (scripts/bench's format) "
                              "instead of one JSON object"));
  // Internal, hidden (no group): how compile_trial re-executes this program.
  auto* child = app.add_option(kChildFlag, o.child_ns)->type_name("NETNS")->group("");
  if (const int status = parse_command_line(app, argc, argv); status >= 0) return status;
  o.child = child->count() > 0;
  if (o.child && std::any_of(opts.begin(), opts.end(), [](auto* x) { return x->count() > 0; })) {
    std::fprintf(stderr, "qocnet_bench: %s is internal and takes no other option\n", kChildFlag);
    return 2;
  }
  // Each --only takes the other part away ("--only compile --only forward": none).
  for (const auto& w : only) (w == "compile" ? o.forward : o.compile) = false;
  return -1;
}

// ------------------------------------------------ part 1: compile+attach --

// The child: enters the namespace, then times Edge::create() + attach_port().
int child_compile(const std::string& ns_name) {
  // Only namespaces our parent made through the testbed ("qn<ppid>x...").
  const std::string prefix = "qn" + std::to_string(::getppid()) + "x";
  if (ns_name.rfind(prefix, 0) != 0 || ns_name.find('/') != std::string::npos) {
    std::fprintf(stderr, "%s is internal to qocnet_bench\n", kChildFlag);
    return 2;
  }
  const std::string path = "/run/netns/" + ns_name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "cannot enter %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  ::close(fd);

  const long base_kb = status_kb("VmHWM");
  const auto t0 = Clock::now();
  auto edge = qocnet::Edge::create();
  const auto t1 = Clock::now();
  if (!edge) {
    std::fprintf(stderr, "Edge::create failed: %s\n", edge.error().to_string().c_str());
    return 1;
  }
  auto st = edge->attach_port("c0");
  const auto t2 = Clock::now();
  if (!st) {
    std::fprintf(stderr, "attach_port(c0) failed: %s\n", st.error().to_string().c_str());
    return 1;
  }
  const long hwm_kb = status_kb("VmHWM");
  std::printf("%s create_s=%.6f attach_s=%.6f hwm_kb=%ld base_hwm_kb=%ld\n", kChildTag,
              std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count(), hwm_kb, base_kb);
  std::fflush(stdout);
  return 0;  // the Edge detaches on the way out
}

struct CompileTrial {
  double create_s = 0, attach_s = 0, process_s = 0;
  long hwm_kb = 0, base_hwm_kb = 0;
  double total_s() const { return create_s + attach_s; }
};

CompileTrial compile_trial() {
  auto ns = need(tb::Namespace::create(tb::unique_name("cmp")), "create namespace");
  need(tb::add_veth({&ns, "c0", "", ""}, {&ns, "c1", "", ""}), "create veth c0/c1");
  const auto t0 = Clock::now();
  auto out = tb::run({"/proc/self/exe", kChildFlag, ns.name()});  // fork + exec
  const double process_s = seconds_since(t0);
  check_stop();
  if (!out) throw BenchError("compile trial: " + out.error().message);  // the child's stderr
  CompileTrial t;
  t.process_s = process_s;
  std::istringstream in(*out);
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    if (line.rfind(kChildTag, 0) != 0) continue;
    found = std::sscanf(line.c_str() + std::strlen(kChildTag),
                        " create_s=%lf attach_s=%lf hwm_kb=%ld base_hwm_kb=%ld", &t.create_s,
                        &t.attach_s, &t.hwm_kb, &t.base_hwm_kb) == 4;
  }
  if (!found) throw BenchError("compile trial: no result line in the child's output:\n" + *out);
  return t;
}

struct CompileResult {
  std::vector<CompileTrial> trials;
  double create_s = 0, attach_s = 0, total_s = 0, process_s = 0, hwm_mib = 0, base_mib = 0;
  bool pass() const { return total_s <= kTargetSeconds; }
};

CompileResult run_compile(const Options& o) {
  CompileResult r;
  std::printf("\n[1] cold compile+attach: Edge::create() + attach_port(), fresh process per trial\n");
  std::printf("  %-6s %10s %10s %10s %14s %10s\n", "trial", "create_s", "attach_s", "total_s",
              "peak_rss_MiB", "process_s");
  std::fflush(stdout);
  for (int i = 0; i < o.trials; ++i) {
    check_stop();
    CompileTrial t = compile_trial();
    std::printf("  %-6d %10.3f %10.3f %10.3f %14.1f %10.3f\n", i + 1, t.create_s, t.attach_s,
                t.total_s(), static_cast<double>(t.hwm_kb) / 1024.0, t.process_s);
    std::fflush(stdout);
    r.trials.push_back(t);
  }
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const auto& t : r.trials) v.push_back(field(t));
    return median(v);
  };
  r.create_s = med([](const CompileTrial& t) { return t.create_s; });
  r.attach_s = med([](const CompileTrial& t) { return t.attach_s; });
  r.total_s = med([](const CompileTrial& t) { return t.total_s(); });
  r.process_s = med([](const CompileTrial& t) { return t.process_s; });
  r.hwm_mib = med([](const CompileTrial& t) { return static_cast<double>(t.hwm_kb) / 1024.0; });
  r.base_mib = med([](const CompileTrial& t) { return static_cast<double>(t.base_hwm_kb) / 1024.0; });
  std::printf("  %-6s %10.3f %10.3f %10.3f %14.1f %10.3f\n", "median", r.create_s, r.attach_s,
              r.total_s, r.hwm_mib, r.process_s);
  std::printf("  (peak RSS before create: %.1f MiB; process_s = fork to exit, seen by the parent)\n",
              r.base_mib);
  std::printf("  compile+attach median %.3f s, target <= %.1f s: %s\n", r.total_s, kTargetSeconds,
              r.pass() ? "PASS" : "MISS");
  std::fflush(stdout);
  return r;
}

// ------------------------------------------------ part 2: forwarding rate --

struct ForwardBed {
  ForwardBed(tb::Namespace s, tb::Namespace e, tb::Namespace r)
      : sensor(std::move(s)), edge(std::move(e)), recv(std::move(r)) {}
  tb::Namespace sensor, edge, recv;
};

std::unique_ptr<ForwardBed> make_forward_bed() {
  auto s = need(tb::Namespace::create(tb::unique_name("sen")), "create sensor namespace");
  auto e = need(tb::Namespace::create(tb::unique_name("edg")), "create edge namespace");
  auto r = need(tb::Namespace::create(tb::unique_name("rcv")), "create receiver namespace");
  auto bed = std::make_unique<ForwardBed>(std::move(s), std::move(e), std::move(r));
  // No IPv6 autoconfiguration chatter: p0's counter then counts our datagrams.
  for (const tb::Namespace* ns : {&bed->sensor, &bed->edge, &bed->recv}) no_ipv6(*ns);
  need(tb::add_veth({&bed->sensor, "s0", kS0Mac, std::string(kSensorIp) + "/24"},
                    {&bed->edge, "e0", kE0Mac, ""}),
       "create veth s0/e0");
  need(tb::add_veth({&bed->edge, "e1", kE1Mac, ""},
                    {&bed->recv, "p0", kP0Mac, std::string(kRecvIp) + "/24"}),
       "create veth e1/p0");
  need(bed->sensor.ip({"neigh", "replace", kRecvIp, "lladdr", kP0Mac, "dev", "s0", "nud",
                       "permanent"}),
       "static neighbour entry in the sensor namespace");
  return bed;
}

struct SendResult {
  std::uint64_t sent = 0, retries = 0;
  double seconds = 0;
  std::string error;
};

// Blasts `payload`-byte datagrams on the connected socket until the deadline.
SendResult send_loop(int fd, double seconds, std::size_t payload) {
  SendResult r;
  std::vector<std::uint8_t> buf(payload, 0x5a);
  iovec iov{buf.data(), buf.size()};
  std::array<mmsghdr, kBatch> msgs{};
  for (auto& m : msgs) {
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (!g_stop && Clock::now() < deadline) {
    int n = ::sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n > 0) {
      r.sent += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)) {
      ++r.retries;
      continue;
    }
    r.error = std::string("sendmmsg: ") + (n < 0 ? std::strerror(errno) : "sent nothing");
    break;
  }
  r.seconds = seconds_since(start);
  return r;
}

struct Window {
  std::uint64_t sent = 0, delivered = 0, send_retries = 0;
  double seconds = 0;
  double sender_pps() const { return seconds > 0 ? static_cast<double>(sent) / seconds : 0; }
  double delivered_pps() const { return seconds > 0 ? static_cast<double>(delivered) / seconds : 0; }
};

// One sending window: a sender thread runs the loop, p0's rx_packets counts.
Window blast(const ForwardBed& bed, int fd, double seconds, std::size_t payload) {
  const auto rx0 = need(bed.recv.link_stat("p0", "rx_packets"), "read p0 rx_packets");
  SendResult sr;
  std::thread sender([&] { sr = send_loop(fd, seconds, payload); });
  sender.join();
  check_stop();
  if (!sr.error.empty()) throw BenchError(sr.error);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // backlogs drain
  const auto rx1 = need(bed.recv.link_stat("p0", "rx_packets"), "read p0 rx_packets");
  Window w;
  w.sent = sr.sent;
  w.send_retries = sr.retries;
  w.delivered = rx1 - rx0;
  w.seconds = sr.seconds;
  return w;
}

// The configurations of the edge namespace that forward e0 -> e1.
//   qocnet     Edge with attach_port(e0) and set_port_pair(e0, e1)
//   bridge     br0 holding e0 and e1, br_netfilter's hooks off in the edge
//              namespace (net.bridge.bridge-nf-call-* = 0): the bridge itself
//   bridge+nf  the same bridge with those sysctls at 1, this kernel's default
//              when br_netfilter is loaded: bridged frames also pass the
//              namespace's (empty) iptables/arptables hooks
enum class Config { qocnet, bridge, bridge_nf };
constexpr int kConfigs = 3;
int index_of(Config c) { return static_cast<int>(c); }
const char* config_name(Config c) {
  switch (c) {
    case Config::qocnet: return "qocnet";
    case Config::bridge: return "bridge";
    case Config::bridge_nf: return "bridge+nf";
  }
  return "?";
}
const char* config_key(Config c) { return c == Config::bridge_nf ? "bridge_nf" : config_name(c); }

// Deletes br0 when the bridge run ends (the namespace would take it anyway).
class BridgeGuard {
 public:
  explicit BridgeGuard(const tb::Namespace& ns) : ns_(ns) {}
  BridgeGuard(const BridgeGuard&) = delete;
  BridgeGuard& operator=(const BridgeGuard&) = delete;
  ~BridgeGuard() { (void)ns_.ip({"link", "del", "br0"}); }

 private:
  const tb::Namespace& ns_;
};

struct Run {
  int round = 0;
  Config config = Config::qocnet;
  Window w;
};

// Activates one configuration, warms up, measures, and tears it down.
Run forward_run(const ForwardBed& bed, const BridgeNf& nf, int fd, const Options& o, int round,
                Config cfg) {
  check_stop();
  std::optional<qocnet::Edge> edge;
  std::optional<BridgeGuard> bridge;
  if (cfg == Config::qocnet) {
    edge.emplace(need(tb::in_namespace(bed.edge, [] { return qocnet::Edge::create(); }),
                      "Edge::create in the edge namespace"));
    need(edge->attach_port("e0"), "attach_port(e0)");
    need(edge->set_port_pair("e0", "e1"), "set_port_pair(e0, e1)");
  } else {
    if (nf.present && nf.settable) set_bridge_nf(bed.edge, cfg == Config::bridge_nf);
    need(bed.edge.ip({"link", "add", "br0", "type", "bridge"}), "create br0");
    bridge.emplace(bed.edge);
    need(bed.edge.ip({"link", "set", "e0", "master", "br0"}), "enslave e0");
    need(bed.edge.ip({"link", "set", "e1", "master", "br0"}), "enslave e1");
    need(bed.edge.ip({"link", "set", "br0", "up"}), "set br0 up");
    need(tb::run({"bridge", "-n", bed.edge.name(), "fdb", "add", kP0Mac, "dev", "e1", "master",
                  "static"}),
         "static fdb entry for p0's MAC on e1");
  }

  const Window warm = blast(bed, fd, kWarmupSeconds, static_cast<std::size_t>(o.payload));
  if (warm.delivered == 0)
    throw BenchError(std::string(config_name(cfg)) + ": nothing reached p0 during the warm-up (" +
                     std::to_string(warm.sent) + " sent); the topology does not forward");
  if (edge) {
    auto c = need(edge->port_counters("e0"), "port_counters(e0)");
    if (c.fwd_packets == 0)
      throw BenchError("qocnet: p0 got packets but e0's port pair forwarded none");
  }
  Run r;
  r.round = round;
  r.config = cfg;
  r.w = blast(bed, fd, o.seconds, static_cast<std::size_t>(o.payload));
  return r;  // the Edge (filters, clsact) or br0 goes here
}

struct ForwardResult {
  std::vector<Config> configs;
  std::vector<Run> runs;
  BridgeNf nf;
  std::array<double, kConfigs> delivered{}, sender{};  // medians, pps
  std::array<bool, kConfigs> measured{};

  double median_delivered(Config c) const { return measured[index_of(c)] ? delivered[index_of(c)] : NAN; }
  double median_sender(Config c) const { return measured[index_of(c)] ? sender[index_of(c)] : NAN; }
  // qocnet over a bridge config; NaN when not measured.
  double ratio_delivered(Config c) const { return ratio(median_delivered(Config::qocnet), median_delivered(c)); }
  double ratio_sender(Config c) const { return ratio(median_sender(Config::qocnet), median_sender(c)); }
  static double ratio(double a, double b) { return b > 0 ? a / b : NAN; }
  // What the "bridge" runs had for net.bridge.bridge-nf-call-iptables.
  std::string bridge_nf_setting() const {
    if (!nf.present) return "absent";
    return nf.settable ? "0" : nf.initial;
  }
};

ForwardResult run_forward(const Options& o) {
  ForwardResult res;
  std::printf("\n[2] port-pair forwarding vs Linux bridge: UDP, %d B payload, %.1f s per run, "
              "%d round(s)\n",
              o.payload, o.seconds, o.rounds);
  std::printf("    sensor [s0] -- [e0] edge [e1] -- [p0] receiver; delivered = p0 rx_packets\n");
  std::fflush(stdout);
  auto bed = make_forward_bed();
  res.nf = probe_bridge_nf(bed->edge);
  res.configs = {Config::qocnet, Config::bridge};
  // Where br_netfilter's switches are global (before Linux 5.3): no bridge+nf.
  if (res.nf.present && res.nf.settable) res.configs.push_back(Config::bridge_nf);

  // The receiver's socket is never read: the stack has a port to deliver to,
  // so it sends no ICMP port-unreachable, and drops what does not fit.
  auto sink = need(tb::UdpSocket::open(bed->recv, kRecvIp, kRecvPort, 1 << 16),
                   "receiver socket");
  auto sender = need(tb::UdpSocket::open(bed->sensor, kSensorIp, 0), "sender socket");
  connect_udp(sender.fd(), kRecvIp, kRecvPort, "sender socket");

  std::printf("  %-5s %-9s %12s %12s %12s %14s %7s\n", "round", "config", "sent", "delivered",
              "sender_pps", "delivered_pps", "loss%");
  std::fflush(stdout);
  for (int round = 1; round <= o.rounds; ++round)
    for (Config cfg : res.configs) {
      Run r = forward_run(*bed, res.nf, sender.fd(), o, round, cfg);
      const double loss =
          r.w.sent ? 100.0 * (1.0 - static_cast<double>(r.w.delivered) / static_cast<double>(r.w.sent))
                   : 0.0;
      std::printf("  %-5d %-9s %12llu %12llu %12.0f %14.0f %7.2f\n", round, config_name(cfg),
                  static_cast<unsigned long long>(r.w.sent),
                  static_cast<unsigned long long>(r.w.delivered), r.w.sender_pps(),
                  r.w.delivered_pps(), loss);
      std::fflush(stdout);
      res.runs.push_back(r);
    }

  for (Config cfg : res.configs) {
    std::vector<double> d, s;
    for (const auto& r : res.runs)
      if (r.config == cfg) {
        d.push_back(r.w.delivered_pps());
        s.push_back(r.w.sender_pps());
      }
    res.delivered[index_of(cfg)] = median(d);
    res.sender[index_of(cfg)] = median(s);
    res.measured[index_of(cfg)] = true;
  }
  std::printf("  median delivered pps:");
  for (Config cfg : res.configs) std::printf("  %s %.0f", config_name(cfg), res.median_delivered(cfg));
  std::printf("\n  median sender pps:   ");
  for (Config cfg : res.configs) std::printf("  %s %.0f", config_name(cfg), res.median_sender(cfg));
  std::printf("\n");
  for (Config cfg : res.configs) {
    if (cfg == Config::qocnet) continue;
    std::printf("  ratio qocnet/%-9s delivered %s, sender %s\n", config_name(cfg),
                num(res.ratio_delivered(cfg), 3).c_str(), num(res.ratio_sender(cfg), 3).c_str());
  }
  if (!res.nf.present)
    std::printf("  (br_netfilter is not loaded: the bridge has no netfilter hooks)\n");
  else if (res.nf.settable)
    std::printf("  (bridge: net.bridge.bridge-nf-call-* = 0 in the edge namespace; bridge+nf: = 1,"
                " the default there was %s)\n",
                res.nf.initial.c_str());
  else
    std::printf("  (bridge: net.bridge.bridge-nf-call-iptables = %s; global on this kernel, left as"
                " is)\n",
                res.nf.initial.c_str());
  std::fflush(stdout);
  return res;
}

// ------------------------------------------------------------------- JSON --

std::string to_json(const Machine& m, const Options& o, const std::optional<CompileResult>& c,
                    const std::optional<ForwardResult>& f) {
  std::ostringstream j;
  j << "{\"bench\":\"qocnet_bench\",\"machine\":{\"nproc\":" << m.nproc
    << ",\"kernel\":" << json_str(m.kernel) << ",\"cpu\":" << json_str(m.cpu)
    << ",\"loadavg_at_start\":" << json_str(m.loadavg) << "}";
  j << ",\"params\":{\"trials\":" << o.trials << ",\"rounds\":" << o.rounds
    << ",\"seconds\":" << num(o.seconds, 3) << ",\"payload_bytes\":" << o.payload
    << ",\"warmup_seconds\":" << num(kWarmupSeconds, 3) << ",\"sendmmsg_batch\":" << kBatch << "}";
  j << ",\"compile\":";
  if (!c) {
    j << "null";
  } else {
    j << "{\"trials\":[";
    for (std::size_t i = 0; i < c->trials.size(); ++i) {
      const auto& t = c->trials[i];
      j << (i ? "," : "") << "{\"create_s\":" << num(t.create_s, 6)
        << ",\"attach_s\":" << num(t.attach_s, 6) << ",\"total_s\":" << num(t.total_s(), 6)
        << ",\"peak_rss_kib\":" << t.hwm_kb << ",\"peak_rss_before_create_kib\":" << t.base_hwm_kb
        << ",\"process_s\":" << num(t.process_s, 6) << "}";
    }
    j << "],\"median_create_s\":" << num(c->create_s, 6)
      << ",\"median_attach_s\":" << num(c->attach_s, 6)
      << ",\"median_total_s\":" << num(c->total_s, 6)
      << ",\"median_peak_rss_mib\":" << num(c->hwm_mib, 1)
      << ",\"median_process_s\":" << num(c->process_s, 6)
      << ",\"target_total_s\":" << num(kTargetSeconds, 1)
      << ",\"result\":" << json_str(c->pass() ? "PASS" : "MISS") << "}";
  }
  j << ",\"forward\":";
  if (!f) {
    j << "null";
  } else {
    j << "{\"runs\":[";
    for (std::size_t i = 0; i < f->runs.size(); ++i) {
      const auto& r = f->runs[i];
      j << (i ? "," : "") << "{\"round\":" << r.round << ",\"config\":" << json_str(config_name(r.config))
        << ",\"seconds\":" << num(r.w.seconds, 6) << ",\"sent\":" << r.w.sent
        << ",\"delivered\":" << r.w.delivered << ",\"send_retries\":" << r.w.send_retries
        << ",\"sender_pps\":" << num(r.w.sender_pps(), 0)
        << ",\"delivered_pps\":" << num(r.w.delivered_pps(), 0) << "}";
    }
    j << "]";
    auto per_config = [&](const char* key, auto value, int precision) {
      j << ",\"" << key << "\":{";
      for (int i = 0; i < kConfigs; ++i) {
        const auto cfg = static_cast<Config>(i);
        j << (i ? "," : "") << "\"" << config_key(cfg) << "\":" << num(value(cfg), precision);
      }
      j << "}";
    };
    per_config("median_delivered_pps", [&](Config k) { return f->median_delivered(k); }, 0);
    per_config("median_sender_pps", [&](Config k) { return f->median_sender(k); }, 0);
    j << ",\"ratio_delivered_qocnet_over_bridge\":" << num(f->ratio_delivered(Config::bridge), 4)
      << ",\"ratio_sender_qocnet_over_bridge\":" << num(f->ratio_sender(Config::bridge), 4)
      << ",\"ratio_delivered_qocnet_over_bridge_nf\":" << num(f->ratio_delivered(Config::bridge_nf), 4)
      << ",\"ratio_sender_qocnet_over_bridge_nf\":" << num(f->ratio_sender(Config::bridge_nf), 4)
      << ",\"br_netfilter\":{\"loaded\":" << (f->nf.present ? "true" : "false")
      << ",\"per_namespace\":" << (f->nf.settable ? "true" : "false")
      << ",\"edge_ns_default_call_iptables\":" << (f->nf.present ? json_str(f->nf.initial) : "null")
      << ",\"bridge_runs_call_iptables\":" << json_str(f->bridge_nf_setting()) << "}}";
  }
  j << "}";
  return j.str();
}

// The results as JSON lines (bench_util.hpp): bench "compile" and "forward".
void print_jsonl(const std::optional<CompileResult>& c, const std::optional<ForwardResult>& f) {
  JsonLines out;
  if (c) {
    out.add("compile", "compile_attach_s", c->total_s, "s", 3);
    out.add("compile", "create_s", c->create_s, "s", 3);
    out.add("compile", "attach_s", c->attach_s, "s", 3);
    out.add("compile", "process_s", c->process_s, "s", 3);
    out.add("compile", "peak_rss", c->hwm_mib, "MiB", 1);
  }
  if (f) {
    for (Config cfg : f->configs) {
      out.add("forward", std::string(config_key(cfg)) + ".delivered_pps", f->median_delivered(cfg), "pps", 0);
      out.add("forward", std::string(config_key(cfg)) + ".sender_pps", f->median_sender(cfg), "pps", 0);
    }
    for (Config cfg : f->configs)
      if (cfg != Config::qocnet)
        out.compare("forward", "qocnet.delivered_pps", std::string(config_key(cfg)) + ".delivered_pps");
  }
  out.print(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int status = parse(argc, argv, o); status >= 0) return status;
  if (o.child) return child_compile(o.child_ns);
  if (!require_root("qocnet_bench",
                    "it creates network namespaces, veth pairs, a bridge, TC filters and eBPF "
                    "programs",
                    argv[0]))
    return 1;
  stop_on_signals();

  const Machine m = machine();
  std::printf("qocnet_bench: %u CPUs (%s), kernel %s, load %s\n", m.nproc, m.cpu.c_str(),
              m.kernel.c_str(), m.loadavg.c_str());
  std::fflush(stdout);
  std::optional<CompileResult> c;
  std::optional<ForwardResult> f;
  try {
    if (o.compile) c = run_compile(o);
    if (o.forward) f = run_forward(o);
  } catch (const Interrupted&) {
    std::fprintf(stderr, "qocnet_bench: interrupted; namespaces removed\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qocnet_bench: error: %s\n", e.what());
    return 1;
  }
  if (o.jsonl) {
    std::printf("\n");
    print_jsonl(c, f);
  } else {
    std::printf("\n%s\n", to_json(m, o, c, f).c_str());
  }
  std::fflush(stdout);
  return 0;
}
