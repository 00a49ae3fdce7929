// SPDX-License-Identifier: Apache-2.0
// qocnet::Edge — the edge datapath: a libbcc-compiled TC ingress program on
// the sensor-facing ports, and the maps that steer it while it runs.
//
//   auto edge = qocnet::Edge::create();            // compile + load
//   edge->attach_port("e0");                       // TC ingress of e0
//   edge->set_port_pair("e0", "e1");               // e0 -> e1, live
//   auto c = edge->port_counters("e1");            // packets, bytes
//
// An Edge owns every kernel object it made: destroying it detaches its
// filters and removes a clsact qdisc only if it created that qdisc, unless
// it was asked to keep its (pinned) datapath (EdgeOptions::keep_datapath).
// All interface names are resolved in the network namespace the Edge was
// created in, whatever namespace the calling thread is in later.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

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
  // Streams whose DPI state the datapath keeps (LRU: the least recently seen
  // goes first; a datagram whose stream gets no state follows the port pairs
  // untouched and counts as DpiCounters::stream_table_full). Also sizes the
  // subscriptions (streams with clone targets) and per-target state. A
  // pinned datapath keeps the size it was created with.
  std::uint32_t max_streams = 1024;
  // Directory for per-port ownership locks (one owner per port hook). The
  // control-plane state of a pinned edge goes next to it, in
  // <lock_dir>/../state/ (docs/ARCHITECTURE.md, Pinning and restart).
  std::filesystem::path lock_dir = "/run/qocnet/locks";
  // Directory on a BPF filesystem where the datapath's maps and programs are
  // pinned, e.g. /sys/fs/bpf/qocnet/edge. Empty: nothing is pinned. With it
  // set, create() re-adopts what an earlier run pinned there (without
  // compiling when the sources are unchanged) and the Edge's ports,
  // processes, targets and policies survive a restart of the process.
  std::filesystem::path pin_dir;
  // Destroying the Edge leaves its TC filters, programs, pins and state in
  // place, so traffic keeps flowing with no process (needs pin_dir).
  bool keep_datapath = false;
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

// What a datagram carries (DESIGN.md, Vocabulary), in rising importance for
// video; `other` is never dropped by a content policy.
enum class FrameClass : std::uint8_t { other = 0, disp = 1, diff = 2, ref = 3 };
const char* to_string(FrameClass c) noexcept;

enum class Codec : std::uint8_t { unknown = 0, h264 = 1, hevc = 2 };
const char* to_string(Codec c) noexcept;

// What the edge program decided for one frame (BPF_PROG_TEST_RUN).
struct Verdict {
  int action = 0;                 // TC action: 0 OK, 2 SHOT, 7 REDIRECT, ...
  std::uint32_t duration_ns = 0;  // kernel-measured run time
  FrameClass cls = FrameClass::other;  // the datagram's class
  bool ts = false;                // the UDP payload is MPEG-TS
  bool video = false;             // it holds video TS packets
  bool psi = false;               // it holds PAT/PMT packets
  bool new_frame = false;         // a video frame (PES) starts in it
  bool pending = false;           // the current frame's class is not known yet
  bool misaligned = false;        // it holds packets of two video frames
  bool unparsed = false;          // it holds TS packets the DPI did not inspect
                                  // (a GSO super-packet, a long datagram): ref
  std::uint32_t frames = 0;       // the stream's video PES starts so far
  FrameClass frame_class = FrameClass::other;  // the current frame's class after it
  std::uint16_t history = 0;      // classes of frames frames-7 .. frames, 2 bits each
  // Class of frame number n (1-based, as counted by `frames`) if it is one of
  // the last 8; ref while a frame's class is not known yet.
  FrameClass class_of_frame(std::uint32_t n) const {
    if (n == 0 || n > frames || frames - n >= 8) return FrameClass::other;
    return static_cast<FrameClass>((history >> (2 * (frames - n))) & 3);
  }
  bool knows_frame(std::uint32_t n) const { return n >= 1 && n <= frames && frames - n < 8; }
  std::uint16_t video_pid = 0;    // learnt from the PMT (0: not yet)
  Codec codec = Codec::unknown;
};

// What the DPI learnt of one stream (a UDP flow of TS packets) and its counters.
struct StreamId;  // below

// A stream's identity as a value, the one key type from the API boundary to
// the kernel: the source address's 16 bytes (IPv4 as IPv4-mapped IPv6, as in
// the datapath's qoc_stream_key) and the two ports in host order. Every
// spelling of one address ("2001:db8::1", "2001:0db8:0:0::1",
// "::ffff:10.0.0.1" for 10.0.0.1) is one key; maps are keyed by it, never by
// text.
struct StreamKey {
  std::array<std::uint8_t, 16> address{};
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  auto operator<=>(const StreamKey&) const = default;
};
// invalid_argument names a source that is not an IP address (ports are
// taken as they are; the Edge refuses zero ones).
Result<StreamKey> stream_key(const StreamId& s);
// The canonical StreamId of a key (inet_ntop's text, IPv4-mapped as IPv4).
StreamId stream_id_of(const StreamKey& k);
std::string to_string(const StreamKey& k);
// True if both name one stream (whatever the spelling of the address).
bool same_stream(const StreamId& a, const StreamId& b);

struct StreamStats {
  StreamKey key;                  // the stream (its identity; `source` and the ports spell it)
  std::string source;             // "10.0.0.1:40000" or "[fd00::1]:40000"
  std::uint16_t source_port = 0, destination_port = 0;
  std::uint16_t pmt_pid = 0, video_pid = 0;
  Codec codec = Codec::unknown;
  std::uint32_t frames = 0;       // video PES starts
  std::uint64_t datagrams[4] = {};  // by FrameClass
  std::uint64_t bytes[4] = {};
  std::uint64_t misaligned = 0;   // datagrams with packets of two video frames
  std::uint64_t cc_errors = 0;    // continuity counter jumps on the video PID
  std::uint64_t ts_partial = 0;   // datagrams ending in a partial TS packet
  std::uint64_t ts_bad_sync = 0;  // datagrams where a TS packet lacked 0x47
  std::uint64_t ts_malformed = 0; // TS/PSI/PES headers that contradict themselves
  std::uint64_t ts_unparsed = 0;  // datagrams with more TS packets than inspected
  // HEVC frames whose slice_type was read without a PPS of theirs seen on
  // the stream (num_extra_slice_header_bits taken as 0; docs/DPI.md).
  std::uint32_t hevc_pps_unknown = 0;
};

// The parser's tallies over every frame the program saw (summed over CPUs).
// seen = not_udp + not_ts + ts, and ts = the sum of by_class.
struct DpiCounters {
  std::uint64_t seen = 0, not_udp = 0, not_ts = 0, ts = 0;
  std::uint64_t by_class[4] = {};  // TS datagrams, by FrameClass
  std::uint64_t truncated = 0, vlan_too_deep = 0, ipv6_ext_too_deep = 0, fragments = 0;
  std::uint64_t udp_length_bad = 0, gso_packets = 0, gso_segments = 0, pulled = 0;
  std::uint64_t stream_table_full = 0;
  std::uint64_t replicated = 0;   // datagrams of streams with clone targets
  std::uint64_t clones = 0;       // bpf_clone_redirect copies
  std::uint64_t all_dropped = 0;  // datagrams every target dropped
  std::uint64_t peer_redirects = 0;  // last copies sent with bpf_redirect_peer
  std::uint64_t targets_cut = 0;  // datagrams whose later targets got nothing:
                                  // the kernel's tail-call limit was reached
};

// A computation process: where the edge sends its copies of a stream.
struct ProcessSpec {
  std::string name;             // unique on the edge
  std::string port;             // the edge's interface toward the process
  std::string mac;              // destination MAC of its copies, "02:00:00:00:00:01"
  std::string ip;               // destination IPv4 address; empty: keep the sensor's
  std::uint16_t udp_port = 0;   // destination UDP port; 0: keep the sensor's
};

// A stream as a sensor sends it: (source address, source port, destination port).
struct StreamId {
  std::string source;           // IPv4 or IPv6 literal
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
};
std::string to_string(const StreamId& s);  // "10.0.0.1:40000->:5000"
// Parses what to_string prints: "10.0.0.1:40000->:5000", "[fd00::1]:40000->:5000"
// (also "10.0.0.1:40000:5000"). The error names the part that is wrong.
Result<StreamId> parse_stream_id(const std::string& text);


// What one process got of one stream (summed over CPUs), by FrameClass.
struct TargetStats {
  std::string process;
  Policy policy;
  std::uint64_t delivered[4] = {}, delivered_bytes[4] = {};
  std::uint64_t dropped[4] = {}, dropped_bytes[4] = {};
  std::uint64_t clones = 0;     // copies made for it with bpf_clone_redirect
  std::uint64_t partial = 0;    // frame_aware: datagrams delivered with packets of a
                                // dropped frame in them (misaligned senders)
  // Video datagrams held back while the target joined the stream (added,
  // re-added, or moved from a policy that drops everything), until the
  // stream's next random access point; counted as dropped too.
  std::uint64_t held_until_rap = 0, held_until_rap_bytes = 0;
  // departed_stats: the process has left the stream, and these are the
  // counters its subscriptions had when they ended (final; `policy` unset).
  bool departed = false;
};

// A loaded program as the kernel reports it.
struct ProgramInfo {
  std::string name;
  std::uint32_t id = 0;
  std::uint32_t verified_insns = 0;  // instructions the verifier processed
  std::uint32_t xlated_insns = 0;    // instructions after the kernel's rewrite
};

// How Edge::create came up.
struct StartInfo {
  bool adopted = false;            // pinned maps (and ports, state) were re-adopted
  bool replaced_programs = false;  // the sources changed: new programs, same maps
  double compile_seconds = 0;      // 0 when nothing was compiled
  std::uint64_t source_hash = 0;   // of the flattened sources and -D flags
  std::vector<std::string> adopted_ports;  // ports whose filters were taken over
};

// Returns "TC_ACT_OK", "TC_ACT_REDIRECT", ... for a TC action value.
std::string tc_action_name(int action);

class Edge {
 public:
  // Checks privileges and kernel headers, compiles bpf_src/edge_ingress.c
  // through libbcc and loads it. Nothing is attached yet.
  // With options.pin_dir holding a pinned datapath of the same map layout:
  // same source hash -> its programs and maps are adopted without compiling;
  // another hash -> the sources are compiled against the pinned maps and the
  // filters are replaced in place. Either way the ports, processes, targets,
  // policies and QoC table of the earlier run are restored. A pin of another
  // layout is failed_precondition, naming the pin dir and the fix.
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

  // How create() came up (adopted, replaced, compile time, source hash).
  const StartInfo& start_info() const;
  // true: destroying the Edge leaves filters, programs, pins and state in
  // place (as EdgeOptions::keep_datapath). Has an effect only with a pin_dir
  // (keeps_datapath() tells): without pins the kernel would empty the
  // tail-call table when the process exits.
  void keep_datapath(bool keep);
  bool keeps_datapath() const;

  // The loaded program's kernel id (for bpftool / tc filter show).
  std::uint32_t program_id() const;
  // The edge program, the DPI's slow path and replication (tail calls).
  std::vector<ProgramInfo> programs() const;

  // Computation processes (the paper's Listing 1). Adding checks the port
  // and the addresses; removing takes the process off every stream.
  Status add_process(const ProcessSpec& spec);
  Status remove_process(std::string_view name);
  std::vector<ProcessSpec> processes() const;

  // The processes a stream is replicated to, in order (at most 8 by default).
  // Processes already targets keep their policy; new ones start with keep.
  // An empty list stops replicating the stream (it follows port pairs again).
  Status set_clone_targets(const StreamId& stream, const std::vector<std::string>& processes);
  // What `process` gets of `stream` (keep, uniform, differential,
  // frame_aware): a live map update, no recompile.
  Status set_policy(std::string_view process, const StreamId& stream, const Policy& policy);
  Result<std::vector<TargetStats>> target_stats(const StreamId& stream) const;
  // What the datapath counted for each process that has left `stream`
  // (removed, or taken off its targets), read when its subscription ended,
  // after every datagram the datapath was still sending it had been counted:
  // its final count, summed over its ended subscriptions of the stream.
  // Empty when none left; the last QOC_MAX_SUBS (stream, process) pairs
  // are kept.
  Result<std::vector<TargetStats>> departed_stats(const StreamId& stream) const;

  // QoC (docs/QOC.md). The table used to turn requirements into policies
  // (default: the paper's Table 1).
  void set_qoc_table(QocTable table);
  // As set_qoc_table, but says when the table could not be saved in the
  // pinned edge's state file (then the old table stays).
  Status replace_qoc_table(QocTable table);
  // The table in use (the last set, or the one a pinned edge brought back).
  QocTable qoc_table() const;
  // A process requires `metric >= required` on `stream`: the policy with the
  // lowest bandwidth that meets it is chosen from the table and applied.
  Result<Policy> report_qoc(std::string_view process, const StreamId& stream, double required);
  // The stream's effective quality (Eq. 3) over its targets' policies.
  Result<Policy> effective_policy(const StreamId& stream) const;
  // Naive (Eq. 1), replication and qocnet bandwidth of the stream from the
  // bytes the DPI counted, and the reduction (Eq. 4).
  Result<Bandwidth> stream_bandwidth(const StreamId& stream) const;

  // What the DPI learnt of each stream, and its counters.
  Result<std::vector<StreamStats>> streams() const;
  Result<DpiCounters> dpi_counters() const;
  // Forgets every stream's state (the next datagram starts it afresh).
  Status reset_streams();

 private:
  struct Impl;
  explicit Edge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qocnet
