// SPDX-License-Identifier: Apache-2.0
// qocnet::Sensor — the sensor's datapath: a libbcc-compiled TC egress program
// on the sensor's uplink that runs the edge's DPI on every outgoing datagram
// and applies its stream's policy (keep, uniform, differential, frame_aware)
// before it leaves, so the uplink carries no more than the stream's effective
// quality (DESIGN.md, Eq. 3). The edge decides the policy; the sensor agent
// (qocnet-sensor) passes it in here.
//
//   auto sensor = qocnet::Sensor::create();                  // compile + load
//   sensor->attach_uplink("wlan0");                          // TC egress
//   sensor->set_policy({"10.0.0.1", 40000, 5000},
//                      qocnet::Policy::differential(0.2));   // live
//   auto s = sensor->streams();                              // sent / dropped
//
// A Sensor owns every kernel object it made: destroying it detaches its
// filter and removes a clsact qdisc only if it created that qdisc. Interface
// names are resolved in the network namespace the Sensor was created in,
// whatever namespace the calling thread is in later. Calls are serialised.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet {

struct SensorOptions {
  // Directory holding the BPF C sources (sensor_egress.c and its headers).
  // Empty: the QOCNET_BPF_SRC_DIR environment variable, else the sources
  // embedded in the library at build time.
  std::filesystem::path bpf_src_dir;
  // Kernel headers libbcc compiles against. Empty: BCC_KERNEL_SOURCE, else
  // /lib/modules/$(uname -r)/build.
  std::filesystem::path kernel_headers;
  // Directory for the uplink hook's ownership lock (one owner per hook).
  std::filesystem::path lock_dir = "/run/qocnet/locks";
  // Streams whose DPI and policy state the sensor keeps (LRU: under flow
  // churn the least recently seen go first). A datagram whose stream gets no
  // state leaves untouched and counts as DpiCounters::stream_table_full.
  std::uint32_t max_streams = 1024;
};

// Checks the options without touching the kernel.
Status validate(const SensorOptions& options);

// One stream leaving the sensor: what the DPI learnt of it, the policy it is
// under and what that policy let through (summed over CPUs), by FrameClass.
// Frame bytes as the uplink's TC hook sees them (Ethernet header included).
struct SensorStreamStats {
  StreamId stream;
  StreamStats dpi;             // facts and counters of the DPI (as the edge's)
  Policy policy;               // its own policy, else the default
  bool own_policy = false;     // set_policy was called for it
  std::uint64_t sent[4] = {}, sent_bytes[4] = {};        // left on the uplink
  std::uint64_t dropped[4] = {}, dropped_bytes[4] = {};  // dropped by the policy
  std::uint64_t partial = 0;   // frame_aware: datagrams sent with packets of a
                               // dropped frame in them (misaligned senders)
  // Video datagrams held back (and counted in `dropped`) while the stream
  // restarted after a policy that dropped everything: the uplink sends its
  // video again from the stream's next random access point.
  std::uint64_t held_until_rap = 0, held_until_rap_bytes = 0;
};

class Sensor {
 public:
  // Checks privileges and kernel headers, compiles bpf_src/sensor_egress.c
  // through libbcc and loads it. Nothing is attached yet; every stream is
  // under keep until told otherwise.
  static Result<Sensor> create(SensorOptions options = {});

  Sensor(Sensor&&) noexcept;
  Sensor& operator=(Sensor&&) noexcept;
  Sensor(const Sensor&) = delete;
  Sensor& operator=(const Sensor&) = delete;
  ~Sensor();

  // Attaches the program to the TC egress of the uplink (one uplink per
  // Sensor). A filter left by an earlier qocnet run that died is replaced.
  Status attach_uplink(std::string_view ifname);
  Status detach_uplink();
  // The attached uplink's name; empty when none is attached.
  std::string uplink() const;

  // The policy of one stream, and of every stream without its own: live map
  // updates, no recompile. Every datagram follows either the old or the new
  // policy. Validated as Edge::set_policy validates.
  Status set_policy(const StreamId& stream, const Policy& policy);
  Status set_default_policy(const Policy& policy);
  // The stream goes back to the default policy (not_found if it had none).
  Status remove_policy(const StreamId& stream);
  // The policy the stream's datagrams are under: its own, else the default.
  Result<Policy> policy(const StreamId& stream) const;
  Policy default_policy() const;

  // Every stream the DPI has seen leave, with what its policy sent and dropped.
  Result<std::vector<SensorStreamStats>> streams() const;
  // The parser's tallies over every frame the program saw.
  Result<DpiCounters> dpi_counters() const;

  // Runs the loaded egress program on one Ethernet frame as if it left
  // through the uplink (`ifindex`: 1 when none is attached), without sending
  // it: action TC_ACT_OK (0) sent, TC_ACT_SHOT (2) dropped by the policy.
  // Counters and the stream's state do count it.
  Result<Verdict> test_run(std::span<const std::uint8_t> frame) const;

  // The loaded program's kernel id (for bpftool / tc filter show).
  std::uint32_t program_id() const;
  // The egress program and the DPI's slow path (a tail call).
  std::vector<ProgramInfo> programs() const;

 private:
  struct Impl;
  explicit Sensor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qocnet
