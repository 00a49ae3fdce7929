// SPDX-License-Identifier: Apache-2.0
// edge_app: a complete qocnet edge application in the style of the paper's
// Listing 1. It builds a small edge in network namespaces (one camera, the
// edge, three analytics containers with their own addresses), replays an
// H.264 MPEG-TS stream from the camera, and lets each container get only
// what its Quality of Computing needs.
//
//   sudo ./edge_app [FILE.ts]     (without FILE it makes one with ffmpeg)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>

#include "qocnet/edge.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;

namespace {

template <class T>
T must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "edge_app: %s: %s\n", what, r.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}
void must(Status s, const char* what) {
  if (!s) {
    std::fprintf(stderr, "edge_app: %s: %s\n", what, s.error().to_string().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "edge_app: needs root (BPF programs, network namespaces); run: sudo %s\n", argv[0]);
    return 1;
  }
  std::string file = argc > 1 ? argv[1] : "";
  if (file.empty()) {
    file = "/tmp/qocnet-edge-app-" + std::to_string(::getpid()) + ".ts";
    must(testbed::run({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                       "testsrc2=size=640x480:rate=25", "-t", "10", "-c:v", "libx264", "-preset",
                       "veryfast", "-b:v", "3M", "-bf", "3", "-g", "50", "-x264-params",
                       "b-pyramid=none", "-f", "mpegts", file}),
         "make a test stream with ffmpeg");
  }
  std::ifstream in(file, std::ios::binary);
  std::vector<std::uint8_t> ts((std::istreambuf_iterator<char>(in)), {});
  if (argc <= 1) ::unlink(file.c_str());
  if (ts.size() < 1316) {
    std::fprintf(stderr, "edge_app: %s holds no MPEG-TS datagram\n", file.c_str());
    return 2;
  }

  // The network: camera -> [e0] edge [e1, e2, e3] -> three containers.
  testbed::sweep_stale_namespaces();
  auto net = must(testbed::Topology::create(3, /*distinct_addresses=*/true), "build namespaces");

  // Listing 1: an edge on its sensor-facing port ...
  Edge edge = must(testbed::in_namespace(net->edge, [] { return Edge::create(); }), "create edge");
  must(edge.attach_port("e0"), "attach e0");

  // ... the computation processes and where their copies go ...
  const char* names[] = {"detector", "counter", "recorder"};
  for (int i = 0; i < 3; ++i)
    must(edge.add_process({names[i], testbed::Topology::edge_port_to_process(i),
                           testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
                           static_cast<std::uint16_t>(6000 + i)}),
         "add process");

  // ... the camera's stream, cloned to all three ...
  const StreamId camera{testbed::Topology::sensor_ip, 40000, 5000};
  must(edge.set_clone_targets(camera, {"detector", "counter", "recorder"}), "set clone targets");

  // ... and each one's quality: from a QoC requirement through the QoC table,
  // or as an explicit drop policy.
  const Policy det = must(edge.report_qoc("detector", camera, 0.95), "report QoC");
  must(edge.set_policy("counter", camera, Policy::differential(0.4)), "set policy");
  must(edge.set_policy("recorder", camera, Policy::keep()), "set policy");
  std::printf("detector requires detection rate >= 0.95 -> %s\n", to_string(det).c_str());

  // The camera streams (paced at about 10 Mbit/s) while the containers listen.
  std::vector<testbed::UdpSocket> sinks;
  for (int i = 0; i < 3; ++i)
    sinks.push_back(must(testbed::UdpSocket::open(net->procs[static_cast<std::size_t>(i)],
                                                  testbed::Topology::process_ip(i),
                                                  static_cast<std::uint16_t>(6000 + i), 32 << 20),
                         "open receiver"));
  auto cam = must(testbed::UdpSocket::open(net->sensor, testbed::Topology::sensor_ip, 40000), "open camera");
  std::size_t sent = 0;
  for (std::size_t off = 0; off + 1316 <= ts.size(); off += 1316, ++sent) {
    must(cam.send_to(testbed::Topology::service_ip, 5000,
                     std::span<const std::uint8_t>(ts.data() + off, 1316)),
         "send");
    if (sent % 8 == 7) std::this_thread::sleep_for(std::chrono::microseconds(800));
  }
  std::printf("camera sent %zu datagrams\n\n", sent);

  // What each container received, from the datapath's counters and its socket.
  std::printf("%-9s %-22s %9s %9s %8s %8s %8s %9s\n", "process", "policy", "received", "dropped",
              "ref", "diff", "disp", "socket");
  const auto stats = must(edge.target_stats(camera), "read statistics");
  for (std::size_t i = 0; i < stats.size(); ++i) {
    const auto& s = stats[i];
    const std::uint64_t got = s.delivered[0] + s.delivered[1] + s.delivered[2] + s.delivered[3];
    const std::uint64_t lost = s.dropped[0] + s.dropped[1] + s.dropped[2] + s.dropped[3];
    const std::size_t at_socket = sinks[i].drain_seqs(std::chrono::milliseconds(200)).size();
    std::printf("%-9s %-22s %9llu %9llu %8llu %8llu %8llu %9zu\n", s.process.c_str(),
                to_string(s.policy).c_str(), (unsigned long long)got, (unsigned long long)lost,
                (unsigned long long)s.delivered[3], (unsigned long long)s.delivered[2],
                (unsigned long long)s.delivered[1], at_socket);
  }
  const Policy eff = must(edge.effective_policy(camera), "effective quality");
  const Bandwidth bw = must(edge.stream_bandwidth(camera), "bandwidth");
  std::printf("\neffective quality of the camera's stream (Eq. 3): %s\n", to_string(eff).c_str());
  std::printf("bytes: naive %.0f (Eq. 1), replication %.0f, qocnet %.0f: reduction %.1f %% (Eq. 4)\n",
              bw.naive_bytes, bw.replication_bytes, bw.qocnet_bytes, 100 * bw.reduction);
  return 0;
}
