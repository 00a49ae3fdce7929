#include "qocnet/edge.hpp"

#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include <map>
#include <mutex>

#include "bpf_objects.hpp"
#include "compiler.hpp"
#include "netns.hpp"
#include "preflight.hpp"
#include "qoc_abi.h"
#include "tc.hpp"

namespace qocnet {

using namespace detail;

namespace {
constexpr const char* kEntry = "edge_ingress.c";
constexpr const char* kProgram = "qoc_edge_in";

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
  if (o.lock_dir.empty() || !o.lock_dir.is_absolute())
    return make_error(Errc::invalid_argument,
                      "EdgeOptions::lock_dir '" + o.lock_dir.string() + "' is not an absolute path",
                      "use an absolute directory such as /run/qocnet/locks");
  std::error_code ec;
  if (!o.bpf_src_dir.empty() && !std::filesystem::is_directory(o.bpf_src_dir, ec))
    return make_error(Errc::not_found,
                      "EdgeOptions::bpf_src_dir '" + o.bpf_src_dir.string() + "' is not a directory",
                      "point it at qocnet's bpf_src/ or leave it empty for the built-in sources");
  return {};
}

struct Edge::Impl {
  EdgeOptions options;
  UniqueFd netns;
  Program program;
  TypedMap<__u32, qoc_port_pair> pairs;
  PerCpuMap<__u32, qoc_port_stats> stats;
  std::map<unsigned, TcAttachment> attached;  // by ifindex
  mutable std::mutex mu;

  Impl(EdgeOptions o, UniqueFd ns, Program p, TypedMap<__u32, qoc_port_pair> pm,
       PerCpuMap<__u32, qoc_port_stats> sm)
      : options(std::move(o)), netns(std::move(ns)), program(std::move(p)),
        pairs(std::move(pm)), stats(std::move(sm)) {}

  Result<NetnsGuard> enter() const { return NetnsGuard::enter(netns.get()); }

  Result<PortCounters> counters_of(unsigned ifindex) const {
    QOCNET_ASSIGN(vals, stats.lookup_all(ifindex));
    PortCounters c = vals ? sum_counters(*vals) : PortCounters{};
    c.ifindex = ifindex;
    c.name = interface_name(ifindex);
    return c;
  }
};

Edge::Edge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Edge::Edge(Edge&&) noexcept = default;
Edge& Edge::operator=(Edge&&) noexcept = default;
Edge::~Edge() = default;

Result<Edge> Edge::create(EdgeOptions options) {
  QOCNET_TRY(validate(options));
  QOCNET_TRY(check_privileges());
  CompileRequest req;
  req.entry = kEntry;
  req.programs = {kProgram};
  req.defines = {"QOC_MAX_PORTS=" + std::to_string(options.max_ports)};
  req.src_dir = options.bpf_src_dir;
  req.kernel_headers = options.kernel_headers;
  QOCNET_ASSIGN(obj, compile_bpf(req));
  QOCNET_ASSIGN(pairs_map, find_map(obj, "qoc_port_pairs"));
  QOCNET_ASSIGN(stats_map, find_map(obj, "qoc_port_stats"));
  QOCNET_ASSIGN(pairs, (TypedMap<__u32, qoc_port_pair>::open(*pairs_map)));
  QOCNET_ASSIGN(stats, (PerCpuMap<__u32, qoc_port_stats>::open(*stats_map)));
  QOCNET_ASSIGN(ns, open_current_netns());
  auto prog = std::move(obj.programs.at(kProgram));
  return Edge(std::make_unique<Impl>(std::move(options), std::move(ns), std::move(prog),
                                     std::move(pairs), std::move(stats)));
}

Status Edge::attach_port(std::string_view ifname) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  const std::string name(ifname);
  QOCNET_ASSIGN(idx, resolve_interface(name));
  if (impl_->attached.count(idx))
    return make_error(Errc::already_exists, "port " + name + " is already attached to this edge",
                      "attach each port once; detach_port first to re-attach");
  QOCNET_ASSIGN(att, TcAttachment::attach(impl_->program, idx, name, TcDirection::ingress,
                                          impl_->options.lock_dir));
  (void)impl_->stats.update_all(idx, qoc_port_stats{}, BPF_NOEXIST);  // exists already: fine
  impl_->attached.emplace(idx, std::move(att));
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
  QOCNET_TRY(impl_->pairs.erase(idx));
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
  (void)impl_->stats.update_all(out, qoc_port_stats{}, BPF_NOEXIST);
  return impl_->pairs.update(in, qoc_port_pair{out, 0});
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
  if (frame.size() < 14)
    return make_error(Errc::invalid_argument,
                      "frame of " + std::to_string(frame.size()) +
                          " bytes is shorter than an Ethernet header (14)",
                      "pass a whole Ethernet frame");
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  __sk_buff ctx{};
  ctx.ifindex = ingress_ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.repeat = 1;
  if (bpf_prog_test_run_opts(impl_->program.fd(), &opts) != 0) {
    int err = errno;
    return make_error(err == ENODEV ? Errc::not_found : Errc::internal,
                      "test run of " + impl_->program.name() + " on ifindex " +
                          std::to_string(ingress_ifindex) + " failed",
                      err == ENODEV ? "use the ifindex of an interface in the edge's namespace" : "",
                      err);
  }
  return Verdict{static_cast<int>(opts.retval), opts.duration};
}

std::uint32_t Edge::program_id() const { return impl_->program.id(); }

}  // namespace qocnet
