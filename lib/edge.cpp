// SPDX-License-Identifier: Apache-2.0
#include "qocnet/edge.hpp"

#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <mutex>

#include "bpf_objects.hpp"
#include "compiler.hpp"
#include "netns.hpp"
#include "preflight.hpp"
#include "qoc_abi.h"
#include "tc.hpp"
#include "dpi_view.hpp"
#include "edge_impl.hpp"

namespace qocnet {

using namespace detail;

namespace {
constexpr const char* kEntry = "edge_ingress.c";
constexpr const char* kProgram = "qoc_edge_in";
constexpr const char* kSlowProgram = "qoc_ts_slow";    // tail-called by the DPI
constexpr const char* kDeliverProgram = "qoc_deliver";  // tail-called for replication

Result<const Map*> find_map(const CompiledObject& obj, const char* name) {
  auto it = obj.maps.find(name);
  if (it == obj.maps.end())
    return make_error(Errc::internal, std::string("the compiled datapath has no map ") + name,
                      "bpf_src/qoc_maps.h must declare it; rebuild or fix QOCNET_BPF_SRC_DIR");
  return &it->second;
}

PortCounters sum_counters(const std::vector<qoc_port_stats>& per_cpu) {
  PortCounters c;
  for (const auto& s : per_cpu) {
    c.rx_packets += s.rx_packets;
    c.rx_bytes += s.rx_bytes;
    c.fwd_packets += s.fwd_packets;
    c.fwd_bytes += s.fwd_bytes;
    c.pass_packets += s.pass_packets;
    c.pass_bytes += s.pass_bytes;
    c.tx_packets += s.tx_packets;
    c.tx_bytes += s.tx_bytes;
  }
  return c;
}

}  // namespace

const char* to_string(FrameClass c) noexcept {
  switch (c) {
    case FrameClass::other: return "other";
    case FrameClass::disp: return "disp";
    case FrameClass::diff: return "diff";
    case FrameClass::ref: return "ref";
  }
  return "?";
}

const char* to_string(Codec c) noexcept {
  switch (c) {
    case Codec::unknown: return "unknown";
    case Codec::h264: return "h264";
    case Codec::hevc: return "hevc";
  }
  return "?";
}

std::string tc_action_name(int action) {
  switch (action) {
    case TC_ACT_UNSPEC: return "TC_ACT_UNSPEC";
    case TC_ACT_OK: return "TC_ACT_OK";
    case TC_ACT_RECLASSIFY: return "TC_ACT_RECLASSIFY";
    case TC_ACT_SHOT: return "TC_ACT_SHOT";
    case TC_ACT_PIPE: return "TC_ACT_PIPE";
    case TC_ACT_STOLEN: return "TC_ACT_STOLEN";
    case TC_ACT_QUEUED: return "TC_ACT_QUEUED";
    case TC_ACT_REPEAT: return "TC_ACT_REPEAT";
    case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
    default: return "TC_ACT(" + std::to_string(action) + ")";
  }
}

Status validate(const EdgeOptions& o) {
  if (o.max_ports < 2 || o.max_ports > 65536)
    return make_error(Errc::invalid_argument,
                      "EdgeOptions::max_ports is " + std::to_string(o.max_ports) +
                          ", outside [2, 65536]",
                      "set max_ports to the number of interfaces the edge serves (default 256)");
  if (o.max_streams < 1 || o.max_streams > (1u << 20))
    return make_error(Errc::invalid_argument,
                      "EdgeOptions::max_streams is " + std::to_string(o.max_streams) +
                          ", outside [1, 1048576]",
                      "set max_streams to the number of streams the edge serves at once (default 1024)");
  if (o.lock_dir.empty() || !o.lock_dir.is_absolute())
    return make_error(Errc::invalid_argument,
                      "EdgeOptions::lock_dir '" + o.lock_dir.string() + "' is not an absolute path",
                      "use an absolute directory such as /run/qocnet/locks");
  if (!o.pin_dir.empty() && !o.pin_dir.is_absolute())
    return make_error(Errc::invalid_argument,
                      "EdgeOptions::pin_dir '" + o.pin_dir.string() + "' is not an absolute path",
                      "use a directory on the BPF filesystem such as /sys/fs/bpf/qocnet/edge");
  if (o.keep_datapath && o.pin_dir.empty())
    return make_error(Errc::invalid_argument,
                      "EdgeOptions::keep_datapath needs a pin_dir: without pins the kernel empties "
                      "the datapath's tail-call table when the process exits",
                      "set pin_dir too, e.g. /sys/fs/bpf/qocnet/edge");
  std::error_code ec;
  if (!o.bpf_src_dir.empty() && !std::filesystem::is_directory(o.bpf_src_dir, ec))
    return make_error(Errc::not_found,
                      "EdgeOptions::bpf_src_dir '" + o.bpf_src_dir.string() + "' is not a directory",
                      "point it at qocnet's bpf_src/ or leave it empty for the built-in sources");
  return {};
}

Result<PortCounters> Edge::Impl::counters_of(unsigned ifindex) const {
  QOCNET_ASSIGN(vals, stats.lookup_all(ifindex));
  PortCounters c = vals ? sum_counters(*vals) : PortCounters{};
  c.ifindex = ifindex;
  c.name = interface_name(ifindex);
  return c;
}

Status Edge::Impl::open_maps(const CompiledObject& obj) {
  QOCNET_ASSIGN(m_pairs, find_map(obj, "qoc_port_pairs"));
  QOCNET_ASSIGN(m_stats, find_map(obj, "qoc_port_stats"));
  QOCNET_ASSIGN(m_streams, find_map(obj, "qoc_streams"));
  QOCNET_ASSIGN(m_counters, find_map(obj, "qoc_counters"));
  QOCNET_ASSIGN(m_progs, find_map(obj, "qoc_progs"));
  QOCNET_ASSIGN(m_procs, find_map(obj, "qoc_procs"));
  QOCNET_ASSIGN(m_subs, find_map(obj, "qoc_subs"));
  QOCNET_ASSIGN(m_sub_stats, find_map(obj, "qoc_sub_stats"));
  QOCNET_ASSIGN(m_sub_fstate, find_map(obj, "qoc_sub_fstate"));
  QOCNET_ASSIGN(a, (TypedMap<__u32, qoc_port_pair>::open(*m_pairs)));
  QOCNET_ASSIGN(b, (PerCpuMap<__u32, qoc_port_stats>::open(*m_stats)));
  QOCNET_ASSIGN(c, (TypedMap<qoc_stream_key, qoc_stream>::open(*m_streams)));
  QOCNET_ASSIGN(d, (PerCpuMap<__u32, qoc_counters>::open(*m_counters)));
  QOCNET_ASSIGN(e, m_progs->dup());
  QOCNET_ASSIGN(f, (TypedMap<__u32, qoc_proc>::open(*m_procs)));
  QOCNET_ASSIGN(g, (TypedMap<qoc_stream_key, qoc_targets>::open(*m_subs)));
  QOCNET_ASSIGN(h, (PerCpuMap<__u32, qoc_tstats>::open(*m_sub_stats)));
  QOCNET_ASSIGN(i, (TypedMap<__u32, qoc_fstate>::open(*m_sub_fstate)));
  pairs = std::move(a);
  stats = std::move(b);
  streams = std::move(c);
  counters = std::move(d);
  prog_array = std::move(e);
  procs = std::move(f);
  subs = std::move(g);
  sub_stats = std::move(h);
  sub_fstate = std::move(i);
  return {};
}

Status Edge::Impl::take(CompiledObject& obj) {
  for (const char* name : {kProgram, kSlowProgram, kDeliverProgram})
    if (!obj.programs.count(name))
      return make_error(Errc::internal, std::string("the datapath has no program ") + name,
                        "bpf_src/edge_ingress.c must define it");
  QOCNET_TRY(open_maps(obj));
  // The DPI's slow path and replication are reached by tail call through
  // qoc_progs (QOC_PROG_SLOW, QOC_PROG_DELIVER).
  for (auto [slot, name] : {std::pair<__u32, const char*>{QOC_PROG_SLOW_SLOT, kSlowProgram},
                            std::pair<__u32, const char*>{QOC_PROG_DELIVER_SLOT, kDeliverProgram}}) {
    const int fd = obj.programs.at(name).fd();
    if (bpf_map_update_elem(prog_array.fd(), &slot, &fd, BPF_ANY) != 0)
      return make_error(Errc::internal, std::string("cannot install ") + name + " in qoc_progs", {},
                        errno);
  }
  program = std::move(obj.programs.at(kProgram));
  slow_program = std::move(obj.programs.at(kSlowProgram));
  deliver_program = std::move(obj.programs.at(kDeliverProgram));
  return {};
}

Edge::Edge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Edge::Edge(Edge&&) noexcept = default;
Edge& Edge::operator=(Edge&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->shutdown();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Edge::~Edge() {
  if (impl_) impl_->shutdown();
}

Result<Edge> Edge::create(EdgeOptions options) {
  QOCNET_TRY(validate(options));
  QOCNET_TRY(check_privileges());
  CompileRequest req;
  req.entry = kEntry;
  req.programs = {kProgram, kSlowProgram, kDeliverProgram};
  req.defines = {"QOC_MAX_PORTS=" + std::to_string(options.max_ports)};
  if (options.max_streams != QOC_MAX_STREAMS)
    req.defines.push_back("QOC_MAX_STREAMS=" + std::to_string(options.max_streams));
  req.src_dir = options.bpf_src_dir;
  req.kernel_headers = options.kernel_headers;
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->keep = impl->options.keep_datapath;
  impl->netns_inode = current_netns_inode();
  QOCNET_ASSIGN(ns, open_current_netns());
  impl->netns = std::move(ns);
  if (impl->pinned()) {
    QOCNET_TRY(impl->start_pinned(std::move(req)));
  } else {
    QOCNET_ASSIGN(obj, compile_bpf(req));
    impl->start.compile_seconds = obj.compile_seconds;
    impl->start.source_hash = obj.source_hash;
    QOCNET_TRY(impl->take(obj));
  }
  return Edge(std::move(impl));
}

const StartInfo& Edge::start_info() const { return impl_->start; }

void Edge::keep_datapath(bool keep) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->keep = keep && impl_->pinned();
}

bool Edge::keeps_datapath() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->keep;
}

Status Edge::attach_port(std::string_view ifname) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  const std::string name(ifname);
  QOCNET_ASSIGN(idx, resolve_interface(name));
  if (impl_->attached.count(idx))
    return make_error(Errc::already_exists, "port " + name + " is already attached to this edge",
                      "attach each port once; detach_port first to re-attach");
  QOCNET_ASSIGN(had_stats, impl_->stats.lookup_all(idx));
  QOCNET_ASSIGN(att, TcAttachment::attach(impl_->program, idx, name, TcDirection::ingress,
                                          impl_->options.lock_dir));
  (void)impl_->stats.update_all(idx, qoc_port_stats{}, BPF_NOEXIST);  // exists already: fine
  impl_->attached.emplace(idx, std::move(att));
  if (Status st = impl_->save_state(); !st) {
    // Not saved: a restart would not know the filter. Take it off again
    // (with the clsact qdisc if attach made it) and the counters it made.
    auto it = impl_->attached.find(idx);
    (void)it->second.detach();
    impl_->attached.erase(it);
    if (!had_stats) (void)impl_->stats.erase(idx);
    return st;
  }
  return {};
}

Status Edge::detach_port(std::string_view ifname) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  const std::string name(ifname);
  QOCNET_ASSIGN(idx, resolve_interface(name));
  auto it = impl_->attached.find(idx);
  if (it == impl_->attached.end())
    return make_error(Errc::not_found, "port " + name + " is not attached to this edge",
                      "list attached ports with attached_ports()");
  // The state without the port is saved first: if that fails, the port
  // stays attached with its pair.
  SavedState next = impl_->snapshot();
  std::erase_if(next.ports, [&](const SavedPort& p) { return p.ifindex == idx; });
  QOCNET_TRY(impl_->write_state(next));
  if (auto erased = impl_->pairs.erase(idx); !erased) {
    (void)impl_->save_state();
    return std::move(erased).error();
  }
  Status st = it->second.detach();
  impl_->attached.erase(it);
  return st;
}

std::vector<std::string> Edge::attached_ports() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [idx, att] : impl_->attached) out.push_back(att.ifname());
  return out;
}

Status Edge::set_port_pair(std::string_view ingress, std::string_view egress) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  const std::string in_name(ingress), out_name(egress);
  QOCNET_ASSIGN(in, resolve_interface(in_name));
  QOCNET_ASSIGN(out, resolve_interface(out_name));
  if (in == out)
    return make_error(Errc::invalid_argument,
                      "port pair " + in_name + " -> " + out_name +
                          " would send frames back out of the port they arrived on",
                      "pair the port with a different egress port");
  if (!impl_->attached.count(in))
    return make_error(Errc::failed_precondition,
                      "port " + in_name + " is not attached, so nothing would follow its pair",
                      "call attach_port(\"" + in_name + "\") first");
  QOCNET_ASSIGN(had_stats, impl_->stats.lookup_all(out));
  (void)impl_->stats.update_all(out, qoc_port_stats{}, BPF_NOEXIST);
  if (Status st = impl_->pairs.update(in, qoc_port_pair{out, 0}); !st) {
    if (!had_stats) (void)impl_->stats.erase(out);
    return st;
  }
  return {};
}

Status Edge::remove_port_pair(std::string_view ingress) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  const std::string name(ingress);
  QOCNET_ASSIGN(in, resolve_interface(name));
  QOCNET_ASSIGN(existed, impl_->pairs.erase(in));
  if (!existed)
    return make_error(Errc::not_found, "port " + name + " has no port pair",
                      "list the pairs with port_pairs()");
  return {};
}

Result<std::vector<PortPair>> Edge::port_pairs() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  QOCNET_ASSIGN(keys, impl_->pairs.keys());
  std::vector<PortPair> out;
  for (__u32 k : keys) {
    QOCNET_ASSIGN(v, impl_->pairs.lookup(k));
    if (!v) continue;  // removed meanwhile
    out.push_back({interface_name(k), interface_name(v->egress_ifindex), k, v->egress_ifindex});
  }
  return out;
}

Result<PortCounters> Edge::port_counters(std::string_view ifname) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  QOCNET_ASSIGN(idx, resolve_interface(std::string(ifname)));
  return impl_->counters_of(idx);
}

Result<std::vector<PortCounters>> Edge::all_port_counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  QOCNET_ASSIGN(keys, impl_->stats.keys());
  std::vector<PortCounters> out;
  for (__u32 k : keys) {
    QOCNET_ASSIGN(c, impl_->counters_of(k));
    out.push_back(std::move(c));
  }
  return out;
}

Result<Verdict> Edge::test_run(std::span<const std::uint8_t> frame,
                               std::uint32_t ingress_ifindex) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  return test_run_dpi(impl_->program, frame, ingress_ifindex);
}

std::uint32_t Edge::program_id() const { return impl_->program.id(); }

std::vector<ProgramInfo> Edge::programs() const {
  std::vector<ProgramInfo> out;
  for (const Program* p : {&impl_->program, &impl_->slow_program, &impl_->deliver_program}) {
    auto info = program_info_of(*p);
    if (info) out.push_back(*info);
  }
  return out;
}

Result<std::vector<StreamStats>> Edge::streams() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(keys, impl_->streams.keys());
  std::vector<StreamStats> out;
  for (const auto& k : keys) {
    QOCNET_ASSIGN(v, impl_->streams.lookup(k));
    if (!v) continue;  // evicted meanwhile
    out.push_back(stream_stats_of(k, *v));
  }
  return out;
}

Result<DpiCounters> Edge::dpi_counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(vals, impl_->counters.lookup_all(0));
  return vals ? sum_dpi_counters(*vals) : DpiCounters{};
}

Status Edge::reset_streams() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(keys, impl_->streams.keys());
  for (const auto& k : keys) QOCNET_TRY(impl_->streams.erase(k));
  return {};
}

}  // namespace qocnet
