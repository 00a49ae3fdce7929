// SPDX-License-Identifier: Apache-2.0
// Sensor: the DPI and the edge's drop policies on the TC egress of the
// sensor's uplink (bpf_src/sensor_egress.c, qoc_sensor.h; docs/SENSOR.md).
#include "qocnet/sensor.hpp"

#include <bpf/bpf.h>

#include <map>
#include <mutex>
#include <optional>

#include "bpf_objects.hpp"
#include "compiler.hpp"
#include "dpi_view.hpp"
#include "netns.hpp"
#include "preflight.hpp"
#include "qoc_abi.h"
#include "tc.hpp"

namespace qocnet {

using namespace detail;

namespace {
constexpr const char* kEntry = "sensor_egress.c";
constexpr const char* kProgram = "qoc_sensor_out";
constexpr const char* kSlowProgram = "qoc_sensor_slow";  // tail-called by the DPI

Result<const Map*> find_map(const CompiledObject& obj, const char* name) {
  auto it = obj.maps.find(name);
  if (it == obj.maps.end())
    return make_error(Errc::internal, std::string("the compiled sensor datapath has no map ") + name,
                      "bpf_src/qoc_maps.h and qoc_sensor.h must declare it; rebuild or fix "
                      "QOCNET_BPF_SRC_DIR");
  return &it->second;
}

// The policy as the datapath holds it (p in ppm, as the edge writes it).
qoc_target to_target(const Policy& p, std::uint16_t join) {
  qoc_target t{};
  t.proc = QOC_SENSOR_SLOT;
  t.policy = static_cast<__u8>(p.kind);
  t.order = static_cast<__u8>(p.order);
  t.join = join;
  t.drop_ppm = static_cast<__u32>(p.drop * QOC_PPM + 0.5);
  return t;
}

// A policy under which the uplink carries none of a stream's video.
bool drops_all(const Policy& p) { return p.kind != PolicyKind::keep && p.drop >= 1.0; }

// What Edge::set_policy accepts, and a kind the datapath knows.
Status check_policy(const Policy& p, const std::string& what) {
  const auto kind = static_cast<unsigned>(p.kind);
  if (kind > static_cast<unsigned>(PolicyKind::frame_aware))
    return make_error(Errc::invalid_argument,
                      what + ": policy kind " + std::to_string(kind) + " is not a policy",
                      "use keep, uniform, differential or frame_aware");
  Status st = validate(p);
  if (!st.ok()) return std::move(st).error().context(what);
  return {};
}

}  // namespace

struct Sensor::Impl {
  SensorOptions options;
  UniqueFd netns;
  Program program;
  Program slow_program;
  TypedMap<qoc_stream_key, qoc_stream> streams;
  PerCpuMap<__u32, qoc_counters> counters;
  Map prog_array;  // keeps the tail-call table (and so the slow path) alive
  TypedMap<qoc_stream_key, qoc_target> spolicy;
  TypedMap<__u32, qoc_target> sdefault;
  PerCpuMap<qoc_tkey, qoc_tstats> tstats;
  TypedMap<qoc_tkey, qoc_fstate> fstate;
  std::optional<TcAttachment> uplink;
  std::map<std::string, Policy> policies;  // streams' own, by key bytes
  Policy default_policy = Policy::keep();
  // Join epochs (qoc_target.join, docs/SENSOR.md, Restarting a stream): the
  // epoch each policy entry carries, by key bytes, and the default's. A
  // stream whose own policy was removed while it dropped everything, and
  // the default sends, keeps an entry of its own ("shadow": the default's
  // policy with an epoch of its own) so it restarts at its next random
  // access point; set_default_policy rewrites shadows with the default.
  std::map<std::string, std::uint16_t> joins;
  std::map<std::string, qoc_stream_key> shadows;
  std::uint16_t default_join = 0;
  std::uint16_t last_join = 0;
  mutable std::mutex mu;

  std::uint16_t next_join() {
    if (++last_join == 0) last_join = 1;
    return last_join;
  }
  // The join epoch and policy a stream follows now.
  std::pair<Policy, std::uint16_t> followed(const std::string& kb) const {
    auto own = policies.find(kb);
    auto j = joins.find(kb);
    const std::uint16_t join = j != joins.end() ? j->second : default_join;
    return {own != policies.end() ? own->second : default_policy, join};
  }

  Status open_maps(const CompiledObject& obj);
  Result<NetnsGuard> enter() const { return NetnsGuard::enter(netns.get()); }
};

Status validate(const SensorOptions& o) {
  if (o.max_streams < 1 || o.max_streams > (1u << 20))
    return make_error(Errc::invalid_argument,
                      "SensorOptions::max_streams is " + std::to_string(o.max_streams) +
                          ", outside [1, 1048576]",
                      "set max_streams to the number of streams the sensor sends at once (default 1024)");
  if (o.lock_dir.empty() || !o.lock_dir.is_absolute())
    return make_error(Errc::invalid_argument,
                      "SensorOptions::lock_dir '" + o.lock_dir.string() + "' is not an absolute path",
                      "use an absolute directory such as /run/qocnet/locks");
  std::error_code ec;
  if (!o.bpf_src_dir.empty() && !std::filesystem::is_directory(o.bpf_src_dir, ec))
    return make_error(Errc::not_found,
                      "SensorOptions::bpf_src_dir '" + o.bpf_src_dir.string() + "' is not a directory",
                      "point it at qocnet's bpf_src/ or leave it empty for the built-in sources");
  return {};
}

Status Sensor::Impl::open_maps(const CompiledObject& obj) {
  QOCNET_ASSIGN(m_streams, find_map(obj, "qoc_streams"));
  QOCNET_ASSIGN(m_counters, find_map(obj, "qoc_counters"));
  QOCNET_ASSIGN(m_progs, find_map(obj, "qoc_progs"));
  QOCNET_ASSIGN(m_spolicy, find_map(obj, "qoc_spolicy"));
  QOCNET_ASSIGN(m_sdefault, find_map(obj, "qoc_sdefault"));
  QOCNET_ASSIGN(m_tstats, find_map(obj, "qoc_tstats"));
  QOCNET_ASSIGN(m_fstate, find_map(obj, "qoc_fstate"));
  QOCNET_ASSIGN(a, (TypedMap<qoc_stream_key, qoc_stream>::open(*m_streams)));
  QOCNET_ASSIGN(b, (PerCpuMap<__u32, qoc_counters>::open(*m_counters)));
  QOCNET_ASSIGN(c, m_progs->dup());
  QOCNET_ASSIGN(d, (TypedMap<qoc_stream_key, qoc_target>::open(*m_spolicy)));
  QOCNET_ASSIGN(e, (TypedMap<__u32, qoc_target>::open(*m_sdefault)));
  QOCNET_ASSIGN(f, (PerCpuMap<qoc_tkey, qoc_tstats>::open(*m_tstats)));
  QOCNET_ASSIGN(g, (TypedMap<qoc_tkey, qoc_fstate>::open(*m_fstate)));
  streams = std::move(a);
  counters = std::move(b);
  prog_array = std::move(c);
  spolicy = std::move(d);
  sdefault = std::move(e);
  tstats = std::move(f);
  fstate = std::move(g);
  return {};
}

Sensor::Sensor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sensor::Sensor(Sensor&&) noexcept = default;
Sensor& Sensor::operator=(Sensor&&) noexcept = default;
Sensor::~Sensor() = default;

Result<Sensor> Sensor::create(SensorOptions options) {
  QOCNET_TRY(validate(options));
  QOCNET_TRY(check_privileges());
  CompileRequest req;
  req.entry = kEntry;
  req.programs = {kProgram, kSlowProgram};
  if (options.max_streams != QOC_MAX_STREAMS)
    req.defines.push_back("QOC_MAX_STREAMS=" + std::to_string(options.max_streams));
  req.src_dir = options.bpf_src_dir;
  req.kernel_headers = options.kernel_headers;
  QOCNET_ASSIGN(obj, compile_bpf(req));
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  QOCNET_TRY(impl->open_maps(obj));
  // The DPI's slow path is reached by tail call through qoc_progs.
  const __u32 slot = QOC_PROG_SLOW_SLOT;
  const int fd = obj.programs.at(kSlowProgram).fd();
  if (bpf_map_update_elem(impl->prog_array.fd(), &slot, &fd, BPF_ANY) != 0)
    return make_error(Errc::internal, std::string("cannot install ") + kSlowProgram + " in qoc_progs",
                      {}, errno);
  QOCNET_TRY(impl->sdefault.update(0, to_target(Policy::keep(), 0)));
  QOCNET_ASSIGN(ns, open_current_netns());
  impl->netns = std::move(ns);
  impl->program = std::move(obj.programs.at(kProgram));
  impl->slow_program = std::move(obj.programs.at(kSlowProgram));
  return Sensor(std::move(impl));
}

Status Sensor::attach_uplink(std::string_view ifname) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  const std::string name(ifname);
  QOCNET_ASSIGN(idx, resolve_interface(name));
  if (impl_->uplink) {
    if (impl_->uplink->ifindex() == idx)
      return make_error(Errc::already_exists, "uplink " + name + " is already attached to this sensor",
                        "attach it once; detach_uplink first to re-attach");
    return make_error(Errc::failed_precondition,
                      "this sensor's uplink is " + impl_->uplink->ifname() + ", not " + name,
                      "call detach_uplink first, or create another Sensor for " + name);
  }
  QOCNET_ASSIGN(att, TcAttachment::attach(impl_->program, idx, name, TcDirection::egress,
                                          impl_->options.lock_dir));
  impl_->uplink.emplace(std::move(att));
  return {};
}

Status Sensor::detach_uplink() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->uplink)
    return make_error(Errc::failed_precondition, "this sensor has no uplink attached",
                      "call attach_uplink first");
  Status st = impl_->uplink->detach();
  impl_->uplink.reset();
  return st;
}

std::string Sensor::uplink() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->uplink ? impl_->uplink->ifname() : std::string();
}

Status Sensor::set_policy(const StreamId& stream, const Policy& policy) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(key, stream_key_of(stream));
  QOCNET_TRY(check_policy(policy, "stream " + to_string(stream)));
  const std::string kb = key_bytes_of(key);
  auto [before, join] = impl_->followed(kb);
  if (drops_all(before) && !drops_all(policy)) join = impl_->next_join();
  QOCNET_TRY(impl_->spolicy.update(key, to_target(policy, join)));
  impl_->policies[kb] = policy;
  impl_->joins[kb] = join;
  impl_->shadows.erase(kb);
  return {};
}

Status Sensor::set_default_policy(const Policy& policy) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_TRY(check_policy(policy, "default policy"));
  const bool restart = drops_all(impl_->default_policy) && !drops_all(policy);
  const std::uint16_t join = restart ? impl_->next_join() : impl_->default_join;
  // Streams that follow the default through a shadow entry follow it here
  // too (restarting with it when it restarts).
  for (const auto& [kb, key] : impl_->shadows) {
    auto& sj = impl_->joins[kb];
    if (restart) sj = join;
    QOCNET_TRY(impl_->spolicy.update(key, to_target(policy, sj)));
  }
  QOCNET_TRY(impl_->sdefault.update(0, to_target(policy, join)));
  impl_->default_policy = policy;
  impl_->default_join = join;
  return {};
}

Status Sensor::remove_policy(const StreamId& stream) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(key, stream_key_of(stream));
  auto it = impl_->policies.find(key_bytes_of(key));
  if (it == impl_->policies.end())
    return make_error(Errc::not_found, "stream " + to_string(stream) + " has no policy of its own",
                      "it follows the default policy already (set_default_policy)");
  if (drops_all(it->second) && !drops_all(impl_->default_policy)) {
    // The stream restarts under the default: an entry of its own with a new
    // epoch (its state may hold the default's).
    const std::uint16_t join = impl_->next_join();
    QOCNET_TRY(impl_->spolicy.update(key, to_target(impl_->default_policy, join)));
    impl_->joins[it->first] = join;
    impl_->shadows[it->first] = key;
  } else {
    QOCNET_TRY(impl_->spolicy.erase(key));
    impl_->joins.erase(it->first);
  }
  impl_->policies.erase(it);
  return {};
}

Result<Policy> Sensor::policy(const StreamId& stream) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(key, stream_key_of(stream));
  auto it = impl_->policies.find(key_bytes_of(key));
  return it != impl_->policies.end() ? it->second : impl_->default_policy;
}

Policy Sensor::default_policy() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->default_policy;
}

Result<std::vector<SensorStreamStats>> Sensor::streams() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(keys, impl_->streams.keys());
  std::vector<SensorStreamStats> out;
  for (const auto& k : keys) {
    QOCNET_ASSIGN(v, impl_->streams.lookup(k));
    if (!v) continue;  // evicted meanwhile
    SensorStreamStats s;
    s.stream = stream_id_of(k);
    s.dpi = stream_stats_of(k, *v);
    auto own = impl_->policies.find(key_bytes_of(k));
    s.own_policy = own != impl_->policies.end();
    s.policy = s.own_policy ? own->second : impl_->default_policy;
    qoc_tkey tk{};
    tk.proc = QOC_SENSOR_SLOT;
    tk.stream = k;
    QOCNET_ASSIGN(vals, impl_->tstats.lookup_all(tk));
    if (vals)
      for (const auto& t : *vals) {
        for (int c = 0; c < 4; ++c) {
          s.sent[c] += t.dlv_dgrams[c];
          s.sent_bytes[c] += t.dlv_bytes[c];
          s.dropped[c] += t.drop_dgrams[c];
          s.dropped_bytes[c] += t.drop_bytes[c];
        }
        s.partial += t.partial;
        s.held_until_rap += t.held;
        s.held_until_rap_bytes += t.held_bytes;
      }
    out.push_back(std::move(s));
  }
  return out;
}

Result<DpiCounters> Sensor::dpi_counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(vals, impl_->counters.lookup_all(0));
  return vals ? sum_dpi_counters(*vals) : DpiCounters{};
}

Result<Verdict> Sensor::test_run(std::span<const std::uint8_t> frame) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  return test_run_dpi(impl_->program, frame, impl_->uplink ? impl_->uplink->ifindex() : 1);
}

std::uint32_t Sensor::program_id() const { return impl_->program.id(); }

std::vector<ProgramInfo> Sensor::programs() const {
  std::vector<ProgramInfo> out;
  for (const Program* p : {&impl_->program, &impl_->slow_program}) {
    auto info = program_info_of(*p);
    if (info) out.push_back(*info);
  }
  return out;
}

}  // namespace qocnet
