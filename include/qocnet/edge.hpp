// qocnet::Edge — the edge datapath: a libbcc-compiled TC ingress program on
// the sensor-facing ports, and the maps that steer it while it runs.
//
//   auto edge = qocnet::Edge::create();            // compile + load
//   edge->attach_port("e0");                       // TC ingress of e0
//   edge->set_port_pair("e0", "e1");               // e0 -> e1, live
//   auto c = edge->port_counters("e1");            // packets, bytes
//
// An Edge owns every kernel object it made: destroying it detaches its
// filters and removes a clsact qdisc only if it created that qdisc.
// All interface names are resolved in the network namespace the Edge was
// created in, whatever namespace the calling thread is in later.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet {

struct EdgeOptions {
  // Directory holding the BPF C sources (edge_ingress.c and its headers).
  // Empty: the QOCNET_BPF_SRC_DIR environment variable, else the sources
  // embedded in the library at build time.
  std::filesystem::path bpf_src_dir;
  // Kernel headers libbcc compiles against. Empty: BCC_KERNEL_SOURCE, else
  // /lib/modules/$(uname -r)/build.
  std::filesystem::path kernel_headers;
  // Number of interfaces the datapath can hold state for (map sizes).
  std::uint32_t max_ports = 256;
  // Directory for per-port ownership locks (one owner per port hook).
  std::filesystem::path lock_dir = "/run/qocnet/locks";
};

// Checks the options without touching the kernel.
Status validate(const EdgeOptions& options);

struct PortPair {
  std::string ingress;  // interface name
  std::string egress;
  std::uint32_t ingress_ifindex = 0;
  std::uint32_t egress_ifindex = 0;
};

struct PortCounters {
  std::string name;
  std::uint32_t ifindex = 0;
  std::uint64_t rx_packets = 0, rx_bytes = 0;      // arrived on the port
  std::uint64_t fwd_packets = 0, fwd_bytes = 0;    // of those, sent along its pair
  std::uint64_t pass_packets = 0, pass_bytes = 0;  // of those, left to the stack
  std::uint64_t tx_packets = 0, tx_bytes = 0;      // sent out of it by a pair
};

// What the edge program decided for one frame (BPF_PROG_TEST_RUN).
struct Verdict {
  int action = 0;                 // TC action: 0 OK, 2 SHOT, 7 REDIRECT, ...
  std::uint32_t duration_ns = 0;  // kernel-measured run time
};

// Returns "TC_ACT_OK", "TC_ACT_REDIRECT", ... for a TC action value.
std::string tc_action_name(int action);

class Edge {
 public:
  // Checks privileges and kernel headers, compiles bpf_src/edge_ingress.c
  // through libbcc and loads it. Nothing is attached yet.
  static Result<Edge> create(EdgeOptions options = {});

  Edge(Edge&&) noexcept;
  Edge& operator=(Edge&&) noexcept;
  Edge(const Edge&) = delete;
  Edge& operator=(const Edge&) = delete;
  ~Edge();

  // Attaches the edge program to the TC ingress of a sensor-facing port.
  // A filter left by an earlier qocnet run that died is replaced.
  Status attach_port(std::string_view ifname);
  Status detach_port(std::string_view ifname);
  std::vector<std::string> attached_ports() const;

  // Frames arriving on `ingress` (an attached port) leave through `egress`.
  // Setting a pair again changes it atomically: every frame follows either the
  // old or the new pair, never both, never neither.
  Status set_port_pair(std::string_view ingress, std::string_view egress);
  // Frames arriving on `ingress` go back to the normal stack path.
  Status remove_port_pair(std::string_view ingress);
  Result<std::vector<PortPair>> port_pairs() const;

  // Counters of one interface (summed over CPUs), and of every interface the
  // datapath has seen.
  Result<PortCounters> port_counters(std::string_view ifname) const;
  Result<std::vector<PortCounters>> all_port_counters() const;

  // Runs the loaded program on one Ethernet frame as if it had arrived on
  // `ingress_ifindex`, without sending anything. Counters do count it.
  Result<Verdict> test_run(std::span<const std::uint8_t> frame,
                           std::uint32_t ingress_ifindex) const;

  // The loaded program's kernel id (for bpftool / tc filter show).
  std::uint32_t program_id() const;

 private:
  struct Impl;
  explicit Edge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qocnet
