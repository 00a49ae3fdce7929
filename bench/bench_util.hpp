// SPDX-License-Identifier: Apache-2.0
// Helpers shared by qocnet's benchmark programs: the command line (CLI11),
// errors and interruption, statistics, JSON output (the common JSON-lines
// format of scripts/bench), a description of the machine a run was made on,
// and br_netfilter's switches in a testbed namespace.
#pragma once

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "qocnet/error.hpp"
#include "qocnet/testbed.hpp"

namespace qocnet::bench {

// ------------------------------------------------------------ command line --

// The options' defaults for a bench's CLI11 app: given twice, an option keeps
// its last value (CLI11's default is to refuse).
inline void option_defaults(CLI::App& app) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

// A decimal integer in [lo, hi], for CLI::Option::transform(). CLI11 reads
// integers in base 0 (010 is 8, 0x10 is 16); the benches read them in base 10
// (strtol), and hand CLI11 the plain decimal value.
inline CLI::Validator integer_in(long lo, long hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& v) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long x = std::strtol(v.c_str(), &end, 10);
        if (errno || end == v.c_str() || *end || x < lo || x > hi)
          return "wants an integer in " + range + ", not '" + v + "'";
        v = std::to_string(x);
        return {};
      },
      "INT in " + range);
}

// A number in [lo, hi] (strtod; NaN is not in any range), for transform().
inline CLI::Validator number_in(double lo, double hi) {
  char b[64];
  std::snprintf(b, sizeof b, "[%g, %g]", lo, hi);
  const std::string range = b;
  return CLI::Validator(
      [lo, hi, range](std::string& v) -> std::string {
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end || !(x >= lo && x <= hi))
          return "wants a number in " + range + ", not '" + v + "'";
        char d[64];
        std::snprintf(d, sizeof d, "%.17g", x);
        v = d;
        return {};
      },
      "NUM in " + range);
}

// Parses the command line. Returns -1 to go on, else the exit status: 0 after
// --help (printed to stdout), 2 after a bad command line (the error, which
// names the option, on stderr).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "%s: %s\nRun with --help for more information.\n", app.get_name().c_str(),
                 e.what());
    return 2;
  }
}

// ---------------------------------------------------- errors, interruption --

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

template <class T>
T need(qocnet::Result<T> r, const std::string& what) {
  if (!r) throw BenchError(what + ": " + r.error().to_string());
  return std::move(r).value();
}
inline void need(const qocnet::Status& s, const std::string& what) {
  if (!s) throw BenchError(what + ": " + s.error().to_string());
}

// Set by SIGINT and SIGTERM once stop_on_signals() has run.
inline std::atomic<bool> g_stop{false};
extern "C" inline void qocnet_bench_on_signal(int) { g_stop = true; }

// SIGINT and SIGTERM set g_stop (system calls restart): the bench then
// unwinds by Interrupted, and its testbed objects remove what they made.
inline void stop_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = qocnet_bench_on_signal;
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

inline void check_stop() {
  if (g_stop) throw Interrupted();
}

// Whether the process runs as root; if not, says on stderr why `prog` needs
// to (`what`: "it creates ...") and how to run it.
inline bool require_root(const char* prog, const char* what, const char* argv0) {
  if (::geteuid() == 0) return true;
  std::fprintf(stderr, "%s: must run as root: %s. Try: sudo %s\n", prog, what, argv0);
  return false;
}

// Pins the process to `cpu`; on failure says so on stderr.
inline bool pin_to_cpu(const char* prog, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) == 0) return true;
  std::fprintf(stderr, "%s: cannot pin to CPU %d: %s\n", prog, cpu, std::strerror(errno));
  return false;
}

// ------------------------------------------------------------------- time --

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ------------------------------------------------------------- statistics --

// Median of the values (NaN for none: printed as null by num()).
inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A JSON string literal of s (control characters become spaces).
inline std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

// A JSON number with `precision` decimals, or null when not finite.
inline std::string num(double v, int precision) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", precision, v);
  return b;
}

// Results in the common line format of scripts/bench, one JSON object a line:
//   {"bench":B,"metric":M,"value":V,"unit":U}
//   {"bench":B,"metric":M,"value":V,"unit":U,"vs":P,"ratio":R}
// The second form repeats metric M of bench B and compares it with metric P
// of the same bench: R = V / P's value (a line per comparison, so a metric
// compared with two peers has two such lines). Values that could not be
// measured are null.
class JsonLines {
 public:
  // A figure, `precision` decimals.
  void add(std::string bench, std::string metric, double value, std::string unit, int precision) {
    lines_.push_back({std::move(bench), std::move(metric), value, std::move(unit), precision, {}, NAN});
  }
  // A comparison of two figures added before (NaN ratio if either is missing).
  void compare(const std::string& bench, const std::string& metric, const std::string& vs) {
    const Line* a = find(bench, metric);
    const Line* b = find(bench, vs);
    Line l = a ? *a : Line{bench, metric, NAN, "", 0, {}, NAN};
    l.vs = vs;
    l.ratio = a && b && b->value != 0 ? a->value / b->value : NAN;
    lines_.push_back(std::move(l));
  }
  double value(const std::string& bench, const std::string& metric) const {
    const Line* l = find(bench, metric);
    return l ? l->value : NAN;
  }
  void print(std::FILE* to) const {
    for (const auto& l : lines_) {
      std::string s = "{\"bench\":" + json_str(l.bench) + ",\"metric\":" + json_str(l.metric) +
                      ",\"value\":" + num(l.value, l.precision) + ",\"unit\":" + json_str(l.unit);
      if (!l.vs.empty()) s += ",\"vs\":" + json_str(l.vs) + ",\"ratio\":" + num(l.ratio, 4);
      std::fprintf(to, "%s}\n", s.c_str());
    }
    std::fflush(to);
  }

 private:
  struct Line {
    std::string bench, metric;
    double value;
    std::string unit;
    int precision;
    std::string vs;
    double ratio;
  };
  const Line* find(const std::string& bench, const std::string& metric) const {
    for (const auto& l : lines_)
      if (l.vs.empty() && l.bench == bench && l.metric == metric) return &l;
    return nullptr;
  }
  std::vector<Line> lines_;
};

struct Machine {
  unsigned nproc = 0;
  std::string kernel, cpu, loadavg;
};

inline Machine machine() {
  Machine m;
  m.nproc = static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN));
  utsname u{};
  if (::uname(&u) == 0) m.kernel = u.release;
  std::ifstream ci("/proc/cpuinfo");
  std::string line;
  while (std::getline(ci, line))
    if (line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      if (c != std::string::npos) m.cpu = trim(line.substr(line.find_first_not_of(" \t", c + 1)));
      break;
    }
  std::ifstream la("/proc/loadavg");
  std::string a, b, c;
  la >> a >> b >> c;
  m.loadavg = a + " " + b + " " + c;
  return m;
}

// ---------------------------------------------------------------- testbed --

// No IPv6 in `ns`: no autoconfiguration chatter in the interface counters.
inline void no_ipv6(const qocnet::testbed::Namespace& ns) {
  need(qocnet::testbed::run({"ip", "netns", "exec", ns.name(), "sysctl", "-qw",
                             "net.ipv6.conf.all.disable_ipv6=1",
                             "net.ipv6.conf.default.disable_ipv6=1"}),
       "disable IPv6 in " + ns.name());
}

// Connects the UDP socket `fd` to ip:port; `what` names it in the error.
inline void connect_udp(int fd, const char* ip, std::uint16_t port, const std::string& what) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
    throw BenchError("connect " + what + ": " + std::strerror(errno));
}

// ------------------------------------------------- bridge and br_netfilter --

// br_netfilter, as seen from a testbed's edge namespace. Its sysctls are per
// network namespace since Linux 5.3; on older kernels they are global, so the
// benches leave them alone there.
struct BridgeNf {
  bool present = false;   // /proc/sys/net/bridge exists: br_netfilter is loaded
  bool settable = false;  // per namespace: the bench may set them in its own
  std::string initial;    // net.bridge.bridge-nf-call-iptables there before the bench
};

inline BridgeNf probe_bridge_nf(const qocnet::testbed::Namespace& edge) {
  BridgeNf b;
  auto v = qocnet::testbed::run({"ip", "netns", "exec", edge.name(), "sysctl", "-n",
                                 "net.bridge.bridge-nf-call-iptables"});
  if (!v) return b;
  b.present = true;
  b.initial = trim(*v);
  utsname u{};
  int major = 0, minor = 0;
  if (::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2)
    b.settable = major > 5 || (major == 5 && minor >= 3);
  return b;
}

// net.bridge.bridge-nf-call-{iptables,ip6tables,arptables} in `edge`.
inline void set_bridge_nf(const qocnet::testbed::Namespace& edge, bool on) {
  const std::string v = on ? "1" : "0";
  need(qocnet::testbed::run({"ip", "netns", "exec", edge.name(), "sysctl", "-qw",
                             "net.bridge.bridge-nf-call-iptables=" + v,
                             "net.bridge.bridge-nf-call-ip6tables=" + v,
                             "net.bridge.bridge-nf-call-arptables=" + v}),
       "set net.bridge.bridge-nf-call-* = " + v + " in the edge namespace");
}

}  // namespace qocnet::bench
