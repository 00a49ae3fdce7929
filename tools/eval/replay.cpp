// SPDX-License-Identifier: Apache-2.0
// qocnet-eval-replay: replays a camera's datagrams through a qocnet Edge to
// several computation processes, each under its own drop policy, and keeps
// what each process's socket received.
//
//   qocnet-eval-replay --capture vtest.aligned.pcap --out DIR
//       --policy keep --policy 'uniform(0.02)' --policy 'differential(0.02)'
//       --policy 'frame_aware(0.02)' [--rate-mbps 40] [--ts-per-datagram 7]
//
// The testbed (namespaces: one sensor, the edge, up to 8 processes with their
// own addresses) is built once; the policies are run in passes of at most 8
// targets on the same datagram sequence (a fresh set of processes and fresh
// stream state for every pass). For policy i the tool writes DIR/<i>.ts (the
// UDP payloads the process's socket received, in order) and DIR/replay.json:
// per policy the kernel's per-class counters (delivered, dropped, bytes,
// partial deliveries), what the socket received, and the stream's DPI view.
// A socket that received other than what the kernel delivered is an error
// (exit 1): lower --rate-mbps.
//
// uniform draws from the kernel's prandom: repeat a policy for more samples.
// Needs root.
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "qocnet/classify.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
namespace fs = std::filesystem;

namespace {

constexpr int kMaxTargets = 8;
constexpr std::uint16_t kSensorPort = 40000, kServicePort = 5000;
std::atomic<bool> g_stop{false};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "qocnet-eval-replay: %s\n", what.c_str());
  std::exit(1);
}
template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.error().to_string());
  return std::move(r).value();
}
void must(Status s, const std::string& what) {
  if (!s) die(what + ": " + s.error().to_string());
}

void usage() {
  std::fprintf(stderr,
               "usage: qocnet-eval-replay --capture FILE --out DIR --policy P [--policy P ...]\n"
               "         [--rate-mbps R] [--ts-per-datagram N]\n"
               "FILE: pcap (Ethernet/IPv4/UDP) or .ts (cut into N-packet datagrams, default 7)\n"
               "P: keep | uniform(p) | differential(p) | frame_aware(p)\n");
  std::exit(2);
}

// UDP payloads of the capture's frames (IPv4 over Ethernet).
std::vector<std::vector<std::uint8_t>> payloads(const Capture& cap) {
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& f : cap.frames) {
    if (f.size() < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0x00) continue;
    const std::size_t ihl = static_cast<std::size_t>(f[14] & 0x0f) * 4;
    if (f[14 + 9] != 17 || f.size() < 14 + ihl + 8) continue;
    out.emplace_back(f.begin() + static_cast<long>(14 + ihl + 8), f.end());
  }
  return out;
}

struct Received {
  std::vector<std::uint8_t> bytes;
  std::uint64_t datagrams = 0;
};

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}
std::string json_arr(const std::uint64_t (&a)[4]) {
  return "[" + std::to_string(a[0]) + "," + std::to_string(a[1]) + "," + std::to_string(a[2]) + "," +
         std::to_string(a[3]) + "]";
}
std::uint64_t sum4(const std::uint64_t (&a)[4]) { return a[0] + a[1] + a[2] + a[3]; }

}  // namespace

int main(int argc, char** argv) {
  std::string capture_file, out_dir;
  std::vector<Policy> policies;
  double rate_mbps = 40;
  int per_dgram = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--capture") capture_file = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--policy") policies.push_back(must(parse_policy(next()), "--policy"));
    else if (a == "--rate-mbps") rate_mbps = std::stod(next());
    else if (a == "--ts-per-datagram") per_dgram = std::stoi(next());
    else usage();
  }
  if (capture_file.empty() || out_dir.empty() || policies.empty() || rate_mbps <= 0) usage();
  if (::geteuid() != 0) die("needs root (BPF programs, network namespaces)");

  const auto cap = must(read_capture(capture_file, per_dgram), "read " + capture_file);
  const auto dg = payloads(cap);
  if (dg.empty()) die(capture_file + " holds no UDP datagram");
  std::uint64_t sent_payload = 0;
  for (const auto& d : dg) sent_payload += d.size();
  fs::create_directories(out_dir);

  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  testbed::sweep_stale_namespaces();
  const int width = static_cast<int>(std::min<std::size_t>(policies.size(), kMaxTargets));
  auto net = must(testbed::Topology::create(width, /*distinct_addresses=*/true), "build namespaces");
  Edge edge = must(testbed::in_namespace(net->edge, [] { return Edge::create(); }), "create edge");
  must(edge.attach_port("e0"), "attach e0");
  const StreamId stream{testbed::Topology::sensor_ip, kSensorPort, kServicePort};
  auto sensor = must(testbed::UdpSocket::open(net->sensor, testbed::Topology::sensor_ip, kSensorPort),
                     "open sensor socket");

  std::string json = "{\"capture\":" + json_str(capture_file) + ",\"sent_datagrams\":" +
                     std::to_string(dg.size()) + ",\"sent_payload_bytes\":" + std::to_string(sent_payload) +
                     ",\"rate_mbps\":" + std::to_string(rate_mbps) + ",\"targets\":[";
  bool first_target = true;
  std::string stream_json;
  const auto t_start = std::chrono::steady_clock::now();

  for (std::size_t base = 0; base < policies.size() && !g_stop; base += kMaxTargets) {
    const std::size_t n = std::min<std::size_t>(kMaxTargets, policies.size() - base);
    // Fresh processes (remove_process forgets counters and frame_aware
    // state) and fresh stream state for every pass.
    for (const auto& p : edge.processes()) must(edge.remove_process(p.name), "remove process");
    must(edge.reset_streams(), "reset streams");
    std::vector<std::string> names;
    std::vector<testbed::UdpSocket> socks;
    for (std::size_t i = 0; i < n; ++i) {
      const int slot = static_cast<int>(i);
      const auto port = static_cast<std::uint16_t>(6000 + slot);
      names.push_back("t" + std::to_string(base + i));
      must(edge.add_process({names.back(), testbed::Topology::edge_port_to_process(slot),
                             testbed::Topology::process_mac(slot), testbed::Topology::process_ip(slot), port}),
           "add process");
      socks.push_back(must(testbed::UdpSocket::open(net->procs[i], testbed::Topology::process_ip(slot), port,
                                                    64 << 20),
                           "open process socket"));
    }
    must(edge.set_clone_targets(stream, names), "set clone targets");
    for (std::size_t i = 0; i < n; ++i)
      must(edge.set_policy(names[i], stream, policies[base + i]), "set policy " + to_string(policies[base + i]));

    std::vector<Received> rx(n);
    std::atomic<bool> running{true};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i)
      threads.emplace_back([&, i] {
        std::uint8_t buf[65536];
        auto drain = [&](int timeout_ms) {
          for (;;) {
            pollfd p{socks[i].fd(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return;
            const ssize_t got = ::recv(socks[i].fd(), buf, sizeof buf, MSG_DONTWAIT);
            if (got <= 0) continue;
            rx[i].bytes.insert(rx[i].bytes.end(), buf, buf + got);
            rx[i].datagrams++;
          }
        };
        while (running) drain(20);
        drain(300);
      });
    // The sensor: paced at rate_mbps, from one CPU (frame_aware's decisions
    // follow the stream's order).
    std::thread sender([&] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(0, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      const auto t0 = std::chrono::steady_clock::now();
      double due_us = 0;
      for (const auto& d : dg) {
        if (g_stop) break;
        must(sensor.send_to(testbed::Topology::service_ip, kServicePort, d), "send");
        due_us += static_cast<double>(d.size() + 42) * 8 / rate_mbps;
        const auto due = t0 + std::chrono::microseconds(static_cast<long>(due_us));
        if (due > std::chrono::steady_clock::now() + std::chrono::microseconds(200))
          std::this_thread::sleep_until(due);
      }
    });
    sender.join();
    running = false;
    for (auto& t : threads) t.join();
    if (g_stop) break;

    const auto stats = must(edge.target_stats(stream), "read target stats");
    if (stats.size() != n) die("target stats: expected " + std::to_string(n) + " targets");
    for (std::size_t i = 0; i < n; ++i) {
      const auto& s = stats[i];
      if (s.process != names[i]) die("target stats out of order");
      const std::uint64_t delivered = sum4(s.delivered), dropped = sum4(s.dropped);
      if (delivered + dropped != dg.size())
        die(names[i] + ": the kernel counted " + std::to_string(delivered + dropped) + " datagrams of " +
            std::to_string(dg.size()) + " sent");
      if (rx[i].datagrams != delivered)
        die(names[i] + " (" + to_string(s.policy) + "): its socket received " + std::to_string(rx[i].datagrams) +
            " datagrams but the kernel delivered " + std::to_string(delivered) +
            " (socket drops or reordering pressure): lower --rate-mbps (now " + std::to_string(rate_mbps) + ")");
      const fs::path file = fs::path(out_dir) / (std::to_string(base + i) + ".ts");
      std::ofstream f(file, std::ios::binary);
      f.write(reinterpret_cast<const char*>(rx[i].bytes.data()), static_cast<std::streamsize>(rx[i].bytes.size()));
      if (!f) die("write " + file.string());
      json += std::string(first_target ? "" : ",") + "\n {\"index\":" + std::to_string(base + i) +
              ",\"policy\":" + json_str(to_string(s.policy)) + ",\"file\":" + json_str(file.string()) +
              ",\"delivered\":" + json_arr(s.delivered) + ",\"delivered_bytes\":" + json_arr(s.delivered_bytes) +
              ",\"dropped\":" + json_arr(s.dropped) + ",\"dropped_bytes\":" + json_arr(s.dropped_bytes) +
              ",\"partial\":" + std::to_string(s.partial) + ",\"clones\":" + std::to_string(s.clones) +
              ",\"socket_datagrams\":" + std::to_string(rx[i].datagrams) +
              ",\"socket_bytes\":" + std::to_string(rx[i].bytes.size()) + "}";
      first_target = false;
    }
    if (stream_json.empty()) {
      for (const auto& st : must(edge.streams(), "read streams"))
        if (st.source_port == kSensorPort && st.destination_port == kServicePort)
          stream_json = "{\"frames\":" + std::to_string(st.frames) + ",\"datagrams\":" + json_arr(st.datagrams) +
                        ",\"bytes\":" + json_arr(st.bytes) + ",\"misaligned\":" + std::to_string(st.misaligned) +
                        ",\"cc_errors\":" + std::to_string(st.cc_errors) + "}";
    }
  }
  if (g_stop) die("interrupted");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  json += "\n],\"stream\":" + (stream_json.empty() ? std::string("null") : stream_json) +
          ",\"classes\":[\"other\",\"disp\",\"diff\",\"ref\"],\"seconds\":" + std::to_string(secs) + "}\n";
  const fs::path jf = fs::path(out_dir) / "replay.json";
  std::ofstream(jf) << json;
  std::printf("%s: %zu datagrams to %zu targets in %.1f s; %s\n", capture_file.c_str(), dg.size(),
              policies.size(), secs, jf.c_str());
  return 0;
}
