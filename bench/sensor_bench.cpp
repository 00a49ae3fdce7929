// SPDX-License-Identifier: Apache-2.0
// qocnet_sensor_bench — what the sensor's egress program costs a sender, per
// datagram (needs root).
//
//   sensor [s0] ---- [e0] edge (a UDP socket on e0's address, never read)
//
// A thread pinned to one CPU sends an ffmpeg-made H.264 MPEG-TS stream
// (7 TS packets, 1316 bytes a datagram) with send() on a connected UDP
// socket through s0. Over veth the whole path, the receiving side included,
// runs on that CPU, in the sender's system call. Variants, one at a time:
//
//   none                no program on s0 (Sensor::detach_uplink)
//   keep                qocnet::Sensor on s0's TC egress, every stream keep
//   differential(0.25)  the same, default policy differential(0.25)
//   frame_aware(0.25)   the same, default policy frame_aware(0.25)
//
// Each round measures every variant once, in turn (the starting variant
// rotates); reported is each variant's median over the rounds of the wall
// time and of the sender thread's CPU time per datagram sent, and the
// difference to `none`. The dropping variants skip the rest of the path for
// the datagrams they drop, so they may cost less than `none`.
//
// Prints a table; with --jsonl, the results as JSON lines of scripts/bench's
// format as well. See docs/BENCHMARKS.md and docs/SENSOR.md.
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "qocnet/sensor.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet::bench;
namespace tb = qocnet::testbed;

namespace {

constexpr std::uint16_t kSensorPort = 40000;
constexpr std::uint16_t kServicePort = 5000;
constexpr int kWarmup = 2000;

struct Options {
  int datagrams = 100000;
  int rounds = 5;
  int cpu = 0;
  bool jsonl = false;
};

struct Variant {
  std::string name;
  bool attached;
  qocnet::Policy policy;
};

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// 10 s of 640x480 H.264 with B-frames, cut into 1316-byte datagrams.
std::vector<std::vector<std::uint8_t>> make_stream() {
  const std::string path = "/tmp/qocnet-sensor-bench-" + std::to_string(::getpid()) + ".ts";
  need(tb::run({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                "testsrc2=size=640x480:rate=25", "-t", "10", "-c:v", "libx264", "-preset",
                "veryfast", "-b:v", "4M", "-bf", "3", "-g", "50", "-x264-params", "b-pyramid=none",
                "-f", "mpegts", path}),
       "ffmpeg (install it with scripts/bootstrap)");
  std::ifstream f(path, std::ios::binary);
  std::vector<std::uint8_t> ts((std::istreambuf_iterator<char>(f)), {});
  ::unlink(path.c_str());
  std::vector<std::vector<std::uint8_t>> out;
  for (std::size_t off = 0; off + 1316 <= ts.size(); off += 1316)
    out.emplace_back(ts.begin() + static_cast<long>(off), ts.begin() + static_cast<long>(off + 1316));
  if (out.size() < 1000) throw BenchError("ffmpeg made only " + std::to_string(out.size()) + " datagrams");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"qocnet_sensor_bench: per-datagram cost of the sensor's egress program for a sender"};
  option_defaults(app);
  app.add_option("--datagrams", o.datagrams, "datagrams timed per variant and round")
      ->transform(integer_in(1000, 100000000));
  app.add_option("--rounds", o.rounds, "rounds (each variant once per round)")
      ->transform(integer_in(1, 1000));
  app.add_option("--cpu", o.cpu, "CPU the sender is pinned to")->transform(integer_in(0, 4095));
  app.add_flag("--jsonl", o.jsonl, "also print the results as JSON lines (scripts/bench)");
  if (const int status = parse_command_line(app, argc, argv); status >= 0) return status;
  if (!require_root("qocnet_sensor_bench",
                    "it creates network namespaces, veth pairs, TC filters and eBPF programs", argv[0]))
    return 1;
  if (!pin_to_cpu("qocnet_sensor_bench", o.cpu)) return 1;
  stop_on_signals();

  const Machine m = machine();
  std::printf("qocnet_sensor_bench: %u CPUs (%s), kernel %s, load %s; pinned to CPU %d\n", m.nproc,
              m.cpu.c_str(), m.kernel.c_str(), m.loadavg.c_str(), o.cpu);
  std::printf("  1316-byte MPEG-TS datagrams, send() on a connected socket; %d round(s) x %d "
              "datagrams per variant\n",
              o.rounds, o.datagrams);
  std::fflush(stdout);

  const std::vector<Variant> variants = {
      {"none", false, qocnet::Policy::keep()},
      {"keep", true, qocnet::Policy::keep()},
      {"differential(0.25)", true, qocnet::Policy::differential(0.25)},
      {"frame_aware(0.25)", true, qocnet::Policy::frame_aware(0.25)},
  };
  std::map<std::string, std::vector<double>> wall, cpu;
  try {
    const auto stream = make_stream();
    auto topo = need(tb::Topology::create(1), "the namespaces");
    no_ipv6(topo->sensor);
    no_ipv6(topo->edge);
    auto sensor = need(tb::in_namespace(topo->sensor, [] { return qocnet::Sensor::create(); }),
                       "Sensor::create in the sensor namespace");
    auto sink = need(tb::UdpSocket::open(topo->edge, tb::Topology::service_ip, kServicePort),
                     "the sink socket");
    auto tx = need(tb::UdpSocket::open(topo->sensor, tb::Topology::sensor_ip, kSensorPort),
                   "the sender's socket");
    connect_udp(tx.fd(), tb::Topology::service_ip, kServicePort, "the sender's socket");
    std::size_t next = 0;
    auto send_n = [&](int n) {
      for (int i = 0; i < n; ++i) {
        const auto& d = stream[next++ % stream.size()];
        if (::send(tx.fd(), d.data(), d.size(), 0) < 0 && errno != ENOBUFS)
          throw BenchError(std::string("send: ") + std::strerror(errno));
      }
    };
    for (int r = 0; r < o.rounds; ++r) {
      for (std::size_t k = 0; k < variants.size(); ++k) {
        check_stop();
        const Variant& v = variants[(k + static_cast<std::size_t>(r)) % variants.size()];
        const bool on = !sensor.uplink().empty();
        if (v.attached && !on) need(sensor.attach_uplink("s0"), "attach_uplink s0");
        if (!v.attached && on) need(sensor.detach_uplink(), "detach_uplink");
        if (v.attached) need(sensor.set_default_policy(v.policy), "set_default_policy");
        send_n(kWarmup);
        const double c0 = thread_cpu_ns();
        const auto t0 = Clock::now();
        send_n(o.datagrams);
        const double secs = seconds_since(t0);
        const double c1 = thread_cpu_ns();
        wall[v.name].push_back(secs * 1e9 / o.datagrams);
        cpu[v.name].push_back((c1 - c0) / o.datagrams);
      }
    }
    auto st = need(sensor.streams(), "Sensor::streams");
    for (const auto& s : st) {
      std::uint64_t sent = 0, dropped = 0;
      for (int c = 0; c < 4; ++c) {
        sent += s.sent[c];
        dropped += s.dropped[c];
      }
      std::printf("  stream %s: %llu sent, %llu dropped by the sensor over the run\n",
                  qocnet::to_string(s.stream).c_str(), static_cast<unsigned long long>(sent),
                  static_cast<unsigned long long>(dropped));
    }
  } catch (const Interrupted&) {
    std::fprintf(stderr, "qocnet_sensor_bench: interrupted\n");
    return 130;
  } catch (const BenchError& e) {
    std::fprintf(stderr, "qocnet_sensor_bench: %s\n", e.what());
    return 1;
  }

  JsonLines out;
  const double none_wall = median(wall["none"]), none_cpu = median(cpu["none"]);
  std::printf("\n  %-20s %14s %12s %14s %12s\n", "variant", "wall ns/dgram", "vs none", "cpu ns/dgram",
              "vs none");
  for (const auto& v : variants) {
    const double w = median(wall[v.name]), c = median(cpu[v.name]);
    std::printf("  %-20s %14.1f %+12.1f %14.1f %+12.1f\n", v.name.c_str(), w, w - none_wall, c,
                c - none_cpu);
    out.add("sensor", v.name + " wall per datagram", w, "ns", 1);
    out.add("sensor", v.name + " cpu per datagram", c, "ns", 1);
  }
  for (const auto& v : variants) {
    if (v.name == "none") continue;
    out.compare("sensor", v.name + " wall per datagram", "none wall per datagram");
    out.compare("sensor", v.name + " cpu per datagram", "none cpu per datagram");
  }
  if (o.jsonl) out.print(stdout);
  return 0;
}
