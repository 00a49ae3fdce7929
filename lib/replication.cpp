// Edge: processes, clone targets and drop policies (bpf_src/qoc_replicate.h).
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "dpi_view.hpp"
#include "edge_impl.hpp"
#include "preflight.hpp"

namespace qocnet {

using namespace detail;

namespace {

Result<std::array<std::uint8_t, 6>> parse_mac(const std::string& text, const std::string& who) {
  std::array<std::uint8_t, 6> mac{};
  unsigned v[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                  &v[5], &tail) != 6)
    return make_error(Errc::invalid_argument, who + ": '" + text + "' is not a MAC address",
                      "write it as six hex bytes, e.g. 02:00:00:00:00:01");
  for (int i = 0; i < 6; ++i) mac[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v[i]);
  return mac;
}

}  // namespace

Result<qoc_proc> make_proc(const ProcessSpec& spec, unsigned ifindex) {
  QOCNET_ASSIGN(mac, parse_mac(spec.mac, "process '" + spec.name + "'"));
  qoc_proc p{};
  p.ifindex = ifindex;
  std::memcpy(p.mac, mac.data(), 6);
  p.port = htons(spec.udp_port);
  if (!spec.ip.empty()) {
    in_addr a{};
    if (::inet_pton(AF_INET, spec.ip.c_str(), &a) != 1)
      return make_error(Errc::invalid_argument,
                        "process '" + spec.name + "': '" + spec.ip + "' is not an IPv4 address",
                        "give the process's IPv4 address, or leave ip empty to keep the sensor's");
    p.ip4 = a.s_addr;
  }
  return p;
}

namespace {

Error unknown_process(const std::string& name) {
  return make_error(Errc::not_found, "no process '" + name + "'",
                    "add it with add_process first (processes() lists them)");
}

qoc_target to_target(std::uint32_t slot, const Policy& p) {
  qoc_target t{};
  t.proc = slot;
  t.policy = static_cast<__u32>(p.kind);
  t.drop_ppm = static_cast<__u32>(p.drop * QOC_PPM + 0.5);
  return t;
}

}  // namespace

std::string to_string(const StreamId& s) {
  const bool v6 = s.source.find(':') != std::string::npos;
  return (v6 ? "[" + s.source + "]" : s.source) + ":" + std::to_string(s.source_port) + "->:" +
         std::to_string(s.destination_port);
}

Result<StreamId> parse_stream_id(const std::string& text) {
  auto bad = [&](const std::string& what) {
    return make_error(Errc::invalid_argument, "stream '" + text + "': " + what,
                      "write a stream as SOURCE:SPORT->:DPORT, e.g. 10.0.0.1:40000->:5000 "
                      "or [fd00::1]:40000->:5000");
  };
  std::string rest = text;
  StreamId id;
  if (!rest.empty() && rest[0] == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) return bad("no ']' after the IPv6 source");
    id.source = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
  } else {
    const auto colon = rest.find(':');
    if (colon == std::string::npos) return bad("no ':' after the source address");
    id.source = rest.substr(0, colon);
    rest = rest.substr(colon);
  }
  if (rest.empty() || rest[0] != ':') return bad("no ':SPORT' after the source address");
  rest = rest.substr(1);
  std::string sport, dport;
  if (auto arrow = rest.find("->:"); arrow != std::string::npos) {
    sport = rest.substr(0, arrow);
    dport = rest.substr(arrow + 3);
  } else if (auto colon = rest.find(':'); colon != std::string::npos) {
    sport = rest.substr(0, colon);
    dport = rest.substr(colon + 1);
  } else {
    return bad("no '->:DPORT' after the source port");
  }
  auto port = [&](const std::string& s, const char* which, std::uint16_t* out) -> Status {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
      return bad(std::string(which) + " '" + s + "' is not a number");
    const unsigned long v = std::stoul(s);
    if (v == 0 || v > 65535) return bad(std::string(which) + " " + s + " is not in 1..65535");
    *out = static_cast<std::uint16_t>(v);
    return {};
  };
  QOCNET_TRY(port(sport, "source port", &id.source_port));
  QOCNET_TRY(port(dport, "destination port", &id.destination_port));
  QOCNET_TRY(stream_key_of(id));  // the address must parse
  return id;
}

Status Edge::Impl::publish_targets(const qoc_stream_key& key, const std::vector<TargetEntry>& list) {
  if (list.empty()) {
    QOCNET_TRY(subs.erase(key));
    return {};
  }
  qoc_targets v{};
  v.n = static_cast<__u32>(list.size());
  for (std::size_t i = 0; i < list.size(); ++i)
    v.t[i] = to_target(processes.at(list[i].process).slot, list[i].policy);
  return subs.update(key, v);
}

Status Edge::Impl::forget_slot(std::uint32_t slot) {
  QOCNET_ASSIGN(tkeys, tstats.keys());
  for (const auto& k : tkeys)
    if (k.proc == slot) QOCNET_TRY(tstats.erase(k));
  QOCNET_ASSIGN(fkeys, fstate.keys());
  for (const auto& k : fkeys)
    if (k.proc == slot) QOCNET_TRY(fstate.erase(k));
  return {};
}

Status Edge::add_process(const ProcessSpec& spec) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  if (spec.name.empty())
    return make_error(Errc::invalid_argument, "a process needs a name", "set ProcessSpec::name");
  if (impl_->processes.count(spec.name))
    return make_error(Errc::already_exists, "process '" + spec.name + "' exists already",
                      "remove it first or choose another name");
  QOCNET_ASSIGN(ifindex, resolve_interface(spec.port));
  QOCNET_ASSIGN(p, make_proc(spec, ifindex));
  // The lowest free slot.
  std::uint32_t slot = 0;
  std::vector<bool> used(QOC_MAX_PROCS, false);
  for (const auto& [n, e] : impl_->processes) used[e.slot] = true;
  while (slot < QOC_MAX_PROCS && used[slot]) ++slot;
  if (slot == QOC_MAX_PROCS)
    return make_error(Errc::resource_exhausted,
                      "the edge holds " + std::to_string(QOC_MAX_PROCS) + " processes already",
                      "remove a process first");
  QOCNET_TRY(impl_->procs.update(slot, p));
  (void)impl_->stats.update_all(ifindex, qoc_port_stats{}, BPF_NOEXIST);
  impl_->processes[spec.name] = {spec, slot, ifindex};
  return impl_->save_state();
}

Status Edge::remove_process(std::string_view name_view) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string name(name_view);
  auto it = impl_->processes.find(name);
  if (it == impl_->processes.end())
    return unknown_process(name);
  for (auto& [kb, list] : impl_->targets) {
    auto end = std::remove_if(list.begin(), list.end(),
                              [&](const Impl::TargetEntry& t) { return t.process == name; });
    if (end == list.end()) continue;
    list.erase(end, list.end());
    qoc_stream_key key;
    std::memcpy(&key, kb.data(), sizeof key);
    QOCNET_TRY(impl_->publish_targets(key, list));
  }
  QOCNET_TRY(impl_->procs.update(it->second.slot, qoc_proc{}));
  QOCNET_TRY(impl_->forget_slot(it->second.slot));
  impl_->processes.erase(it);
  return impl_->save_state();
}

std::vector<ProcessSpec> Edge::processes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ProcessSpec> out;
  for (const auto& [n, e] : impl_->processes) out.push_back(e.spec);
  return out;
}

Status Edge::set_clone_targets(const StreamId& stream, const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(key, stream_key_of(stream));
  if (names.size() > QOC_MAX_TARGETS)
    return make_error(Errc::resource_exhausted,
                      "stream " + to_string(stream) + " would have " + std::to_string(names.size()) +
                          " clone targets; the datapath holds " + std::to_string(QOC_MAX_TARGETS),
                      "replicate to at most " + std::to_string(QOC_MAX_TARGETS) + " processes");
  const std::string kb = key_bytes_of(key);
  const auto& old = impl_->targets[kb];
  std::vector<Impl::TargetEntry> list;
  for (const auto& n : names) {
    if (!impl_->processes.count(n))
      return unknown_process(n);
    if (std::any_of(list.begin(), list.end(), [&](const auto& t) { return t.process == n; }))
      return make_error(Errc::invalid_argument,
                        "process '" + n + "' is named twice as a target of " + to_string(stream),
                        "name each process once");
    auto prev = std::find_if(old.begin(), old.end(), [&](const auto& t) { return t.process == n; });
    list.push_back({n, prev != old.end() ? prev->policy : Policy::keep()});
  }
  QOCNET_TRY(impl_->publish_targets(key, list));
  if (list.empty()) impl_->targets.erase(kb);
  else impl_->targets[kb] = std::move(list);
  return impl_->save_state();
}

Status Edge::set_policy(std::string_view process, const StreamId& stream, const Policy& policy) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_TRY(validate(policy));
  QOCNET_ASSIGN(key, stream_key_of(stream));
  const std::string name(process);
  if (!impl_->processes.count(name))
    return unknown_process(name);
  auto it = impl_->targets.find(key_bytes_of(key));
  std::vector<Impl::TargetEntry> list;
  if (it != impl_->targets.end()) list = it->second;
  auto t = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.process == name; });
  if (t == list.end())
    return make_error(Errc::failed_precondition,
                      "process '" + name + "' is not a clone target of stream " + to_string(stream),
                      "call set_clone_targets for the stream first");
  t->policy = policy;
  QOCNET_TRY(impl_->publish_targets(key, list));
  it->second = std::move(list);
  return impl_->save_state();
}

void Edge::set_qoc_table(QocTable table) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->qoc_table = std::move(table);
  (void)impl_->save_state();  // a failed write shows on the next change
}

Result<Policy> Edge::report_qoc(std::string_view process, const StreamId& stream, double required) {
  const QocTable table = [&] {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->qoc_table;
  }();
  QOCNET_ASSIGN(policy, choose_policy(table, required));
  QOCNET_TRY(set_policy(process, stream, policy));
  return policy;
}

Result<const std::vector<Edge::Impl::TargetEntry>*> Edge::Impl::targets_of(const StreamId& stream) const {
  QOCNET_ASSIGN(key, stream_key_of(stream));
  auto it = targets.find(key_bytes_of(key));
  if (it == targets.end())
    return make_error(Errc::not_found, "stream " + to_string(stream) + " has no clone targets",
                      "set them with set_clone_targets");
  return &it->second;
}

Policy Edge::Impl::effective_of(const std::vector<TargetEntry>& list) {
  std::vector<Policy> ps;
  for (const auto& t : list) ps.push_back(t.policy);
  return qocnet::effective_policy(ps);
}

Result<Policy> Edge::effective_policy(const StreamId& stream) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(list, impl_->targets_of(stream));
  return Impl::effective_of(*list);
}

Result<Bandwidth> Edge::stream_bandwidth(const StreamId& stream) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(list, impl_->targets_of(stream));
  QOCNET_ASSIGN(key, stream_key_of(stream));
  QOCNET_ASSIGN(st, impl_->streams.lookup(key));
  double bytes = 0;
  if (st)
    for (auto b : st->bytes) bytes += static_cast<double>(b);
  return bandwidth(bytes, list->size(), Impl::effective_of(*list));
}

Result<std::vector<TargetStats>> Edge::target_stats(const StreamId& stream) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(list, impl_->targets_of(stream));
  QOCNET_ASSIGN(key, stream_key_of(stream));
  std::vector<TargetStats> out;
  for (const auto& t : *list) {
    TargetStats s;
    s.process = t.process;
    s.policy = t.policy;
    qoc_tkey tk{};
    tk.proc = impl_->processes.at(t.process).slot;
    tk.stream = key;
    QOCNET_ASSIGN(vals, impl_->tstats.lookup_all(tk));
    if (vals)
      for (const auto& v : *vals) {
        for (int c = 0; c < 4; ++c) {
          s.delivered[c] += v.dlv_dgrams[c];
          s.delivered_bytes[c] += v.dlv_bytes[c];
          s.dropped[c] += v.drop_dgrams[c];
          s.dropped_bytes[c] += v.drop_bytes[c];
        }
        s.clones += v.clones;
        s.partial += v.partial;
      }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace qocnet
