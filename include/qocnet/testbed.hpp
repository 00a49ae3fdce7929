// SPDX-License-Identifier: Apache-2.0
// qocnet::testbed — sensors, an edge and computation processes on one machine,
// as network namespaces joined by veth pairs. Used by qocnet's tests, demo and
// benchmarks, and by applications that want to try their analytics against a
// real datapath. Every object removes what it created when destroyed, also
// when a test fails (exceptions unwind through it).
//
// Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's `ip`.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet::testbed {

// Runs argv (no shell) and returns its stdout; the error carries its stderr.
Result<std::string> run(const std::vector<std::string>& argv);

// A process-unique, kernel-legal name: "qn<pid>x<n><role>", at most 15 chars.
std::string unique_name(std::string_view role);

// Deletes namespaces named "qn<pid>x..." whose process <pid> is gone (left by
// a test that crashed). Returns how many it deleted.
int sweep_stale_namespaces();

// A named network namespace (`ip netns add`), deleted with everything in it
// when the object is destroyed.
class Namespace {
 public:
  static Result<Namespace> create(std::string name);
  Namespace(Namespace&&) noexcept;
  Namespace& operator=(Namespace&&) = delete;
  Namespace(const Namespace&) = delete;
  ~Namespace();

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // Runs `ip -n <name> args...`.
  Status ip(const std::vector<std::string>& args) const;
  // Reads an interface counter from /sys/class/net/<ifname>/statistics/ (inside).
  Result<std::uint64_t> link_stat(const std::string& ifname, const std::string& stat) const;

 private:
  explicit Namespace(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// Runs `fn` with the calling thread inside `ns`, then returns it.
template <class Fn>
auto in_namespace(const Namespace& ns, Fn&& fn) -> decltype(fn());

// One end of a veth pair.
struct VethEnd {
  const Namespace* ns = nullptr;  // where the end lives
  std::string ifname;
  std::string mac;   // empty: kernel-chosen
  std::string cidr;  // empty: no address
};

// Creates a veth pair with the ends in their namespaces, addressed and up.
Status add_veth(const VethEnd& a, const VethEnd& b);

// A UDP socket created inside a namespace (it stays there whatever namespace
// the thread enters later).
class UdpSocket {
 public:
  static Result<UdpSocket> open(const Namespace& ns, const std::string& bind_ip,
                                std::uint16_t port, int rcvbuf_bytes = 8 << 20);
  UdpSocket(UdpSocket&&) noexcept;
  UdpSocket& operator=(UdpSocket&&) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  ~UdpSocket();

  Status send_to(const std::string& ip, std::uint16_t port, std::span<const std::uint8_t> data);
  // Sends a datagram of `size` bytes whose first 8 bytes are `seq` (host order).
  Status send_seq(const std::string& ip, std::uint16_t port, std::uint64_t seq,
                  std::size_t size = 64);
  // Receives datagrams until `quiet` passes with none (or `max` arrived), and
  // returns their sequence numbers in arrival order.
  std::vector<std::uint64_t> drain_seqs(std::chrono::milliseconds quiet,
                                        std::size_t max = SIZE_MAX);
  int fd() const { return fd_; }

 private:
  explicit UdpSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The standard picture: one sensor namespace, an edge namespace, and N
// computation-process namespaces, joined by veth pairs:
//
//   sensor [s0] ---- [e0] edge [e1] ---- [p0] proc 0
//                             [e2] ---- [p0] proc 1 ...
//
// The sensor addresses `service_ip` / `service_mac`; the edge's e0 and every
// process's p0 carry that address too, so a frame is accepted by whichever
// of them the datapath delivers it to (the edge's own stack when no port
// pair applies). The sensor has a static neighbour entry for it.
struct Topology {
  static constexpr const char* sensor_ip = "10.77.0.1";
  static constexpr const char* service_ip = "10.77.0.2";
  static constexpr const char* sensor_mac = "02:71:00:00:00:01";
  static constexpr const char* service_mac = "02:71:00:00:00:02";

  // With `distinct_addresses`, process i's p0 has its own address instead
  // (process_ip(i) / process_mac(i)), as containers do; the edge must then
  // rewrite each copy (Edge::add_process).
  static Result<std::unique_ptr<Topology>> create(int processes, bool distinct_addresses = false);

  // Interface names: edge side "e0" (sensor), "e1".."eN" (processes).
  static std::string edge_port_to_process(int i) { return "e" + std::to_string(i + 1); }
  // Process i (0..kMaxProcesses-1): 10.77.1.1 .. 10.77.1.250, then 10.77.2.1 ...
  static std::string process_ip(int i) {
    return "10.77." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
  }
  static std::string process_mac(int i) {
    char b[24];
    std::snprintf(b, sizeof b, "02:71:00:%02x:01:%02x", ((i + 1) >> 8) & 0xff, (i + 1) & 0xff);
    return b;
  }
  static constexpr int kMaxProcesses = 256;

  Namespace sensor;
  Namespace edge;
  std::vector<Namespace> procs;

 private:
  Topology(Namespace s, Namespace e) : sensor(std::move(s)), edge(std::move(e)) {}
};

// --- implementation of in_namespace -------------------------------------
namespace detail {
class ThreadNetns {
 public:
  explicit ThreadNetns(const Namespace& ns);
  ~ThreadNetns();
  ThreadNetns(const ThreadNetns&) = delete;
  ThreadNetns& operator=(const ThreadNetns&) = delete;

 private:
  int back_ = -1;
};
}  // namespace detail

template <class Fn>
auto in_namespace(const Namespace& ns, Fn&& fn) -> decltype(fn()) {
  detail::ThreadNetns enter(ns);
  return fn();
}

}  // namespace qocnet::testbed
