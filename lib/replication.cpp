// SPDX-License-Identifier: Apache-2.0
// Edge: processes, clone targets and drop policies (bpf_src/qoc_replicate.h).
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <optional>
#include <cstring>

#include "control/policy_engine.hpp"
#include "control/rtnl.hpp"
#include "dpi_view.hpp"
#include "edge_impl.hpp"
#include "preflight.hpp"
#include "state_file.hpp"

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

// A subscription slot's per-CPU counters summed into what its process got.
void add_cpu_stats(TargetStats& s, const std::vector<qoc_tstats>& per_cpu) {
  for (const auto& v : per_cpu) {
    for (int c = 0; c < 4; ++c) {
      s.delivered[c] += v.dlv_dgrams[c];
      s.delivered_bytes[c] += v.dlv_bytes[c];
      s.dropped[c] += v.drop_dgrams[c];
      s.dropped_bytes[c] += v.drop_bytes[c];
    }
    s.clones += v.clones;
    s.partial += v.partial;
    s.held_until_rap += v.held;
    s.held_until_rap_bytes += v.held_bytes;
  }
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

__u32 proc_port_flags(unsigned ifindex) {
  auto sock = control::rtnl::Socket::open();
  if (!sock) return 0;
  auto link = sock->link(static_cast<int>(ifindex));
  if (!link) return 0;
  return link->kind == "veth" && link->link_netnsid ? QOC_PROC_F_PEER : 0;
}

namespace detail {

Status check_process_spec(const ProcessSpec& spec) {
  if (spec.name.empty())
    return make_error(Errc::invalid_argument, "a process needs a name", "set ProcessSpec::name");
  Status port = check_interface_name(spec.port);
  if (!port) return std::move(port).error().context("process '" + spec.name + "'");
  QOCNET_TRY(make_proc(spec, 0));  // MAC and IPv4 address
  return {};
}

Status check_target_count(const StreamId& stream, std::size_t n) {
  if (n > QOC_MAX_TARGETS)
    return make_error(Errc::resource_exhausted,
                      "stream " + to_string(stream) + " would have " + std::to_string(n) +
                          " clone targets; the datapath holds " + std::to_string(QOC_MAX_TARGETS),
                      "replicate to at most " + std::to_string(QOC_MAX_TARGETS) + " processes");
  return {};
}

}  // namespace detail

namespace {

Error unknown_process(const std::string& name) {
  return make_error(Errc::not_found, "no process '" + name + "'",
                    "add it with add_process first (processes() lists them)");
}

qoc_target to_target(std::uint32_t slot, std::uint32_t sub, const Policy& p) {
  qoc_target t{};
  t.proc = slot;
  t.sub = sub;
  t.policy = static_cast<__u8>(p.kind);
  t.order = static_cast<__u8>(p.order);
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
  // The address must parse; the id is returned in its one canonical spelling
  // (inet_ntop's, IPv4-mapped IPv6 as IPv4), so one stream has one text.
  QOCNET_ASSIGN(key, stream_key_of(id));
  return stream_id_of(key);
}

Result<std::uint32_t> Edge::Impl::sub_slot_of(const std::string& kb, std::uint32_t proc, const std::string& name,
                                              bool* fresh) {
  *fresh = false;
  if (auto it = sub_slots.find({kb, proc}); it != sub_slots.end()) return it->second;
  for (std::uint32_t n = 0; n < QOC_MAX_SUBS; ++n) {
    const std::uint32_t slot = (sub_hint + n) % QOC_MAX_SUBS;
    if (sub_used[slot]) continue;
    // Zeroed before the datapath is told of it: the slot may hold a former
    // subscription's counters and frame_aware state.
    QOCNET_TRY(sub_stats.update_all(slot, qoc_tstats{}));
    QOCNET_TRY(sub_fstate.update(slot, qoc_fstate{}));
    sub_used[slot] = true;
    sub_owner[slot] = name;
    sub_slots[{kb, proc}] = slot;
    sub_hint = (slot + 1) % QOC_MAX_SUBS;
    *fresh = true;
    return slot;
  }
  return make_error(Errc::resource_exhausted,
                    "the edge holds " + std::to_string(QOC_MAX_SUBS) +
                        " (stream, process) subscriptions already",
                    "remove clone targets first, or build the datapath with a larger "
                    "QOC_MAX_SUBS (bpf_src/qoc_consts.h)");
}

bool Edge::Impl::lists_slot(const std::vector<TargetEntry>& list, std::uint32_t proc) const {
  return std::any_of(list.begin(), list.end(), [&](const TargetEntry& t) {
    auto p = processes.find(t.process);
    return p != processes.end() && p->second.slot == proc;
  });
}

namespace {
long sys_bpf(int cmd, bpf_attr* attr) { return ::syscall(__NR_bpf, cmd, attr, sizeof *attr); }
}  // namespace

Status Edge::Impl::wait_for_datapath() {
  auto failed = [](const char* what) {
    return make_error(Errc::internal, std::string(what) + ": " + std::strerror(errno),
                      "the final counters of a departed process may miss its last datagrams");
  };
  if (!grace_outer.valid()) {
    bpf_attr a{};
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = a.value_size = 4;
    a.max_entries = 1;
    detail::UniqueFd inner(static_cast<int>(sys_bpf(BPF_MAP_CREATE, &a)));
    if (!inner.valid()) return failed("creating the grace map's inner map");
    bpf_attr o{};
    o.map_type = BPF_MAP_TYPE_ARRAY_OF_MAPS;
    o.key_size = o.value_size = 4;
    o.max_entries = 1;
    o.inner_map_fd = static_cast<__u32>(inner.get());
    detail::UniqueFd outer(static_cast<int>(sys_bpf(BPF_MAP_CREATE, &o)));
    if (!outer.valid()) return failed("creating the grace map");
    grace_inner = std::move(inner);
    grace_outer = std::move(outer);
  }
  __u32 key = 0, value = static_cast<__u32>(grace_inner.get());
  bpf_attr u{};
  u.map_fd = static_cast<__u32>(grace_outer.get());
  u.key = reinterpret_cast<__u64>(&key);
  u.value = reinterpret_cast<__u64>(&value);
  u.flags = BPF_ANY;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &u) < 0) return failed("updating the grace map");
  return {};
}

void Edge::Impl::book_departed(const std::string& kb, std::uint32_t slot) {
  const std::pair<std::string, std::string> key{kb, sub_owner[slot]};
  auto [it, fresh] = departed.try_emplace(key);
  TargetStats& s = it->second;
  if (fresh) {
    s.process = key.second;
    s.departed = true;
    departed_order.push_back(key);
  }
  if (auto vals = sub_stats.lookup_all(slot); vals && *vals) add_cpu_stats(s, **vals);
  while (departed_order.size() > QOC_MAX_SUBS) {
    departed.erase(departed_order.front());
    departed_order.pop_front();
  }
}

void Edge::Impl::release_sub_slots(const std::string& kb, const std::vector<TargetEntry>& list) {
  bool waited = false;
  for (auto it = sub_slots.lower_bound({kb, 0}); it != sub_slots.end() && it->first.first == kb;) {
    if (lists_slot(list, it->first.second)) {
      ++it;
      continue;
    }
    // The datapath no longer names the slot, but a datagram that read the
    // old list may still be counted on it: wait for those, then book.
    if (!waited) {
      (void)wait_for_datapath();  // failing, the count may miss a last datagram: still booked
      waited = true;
    }
    book_departed(kb, it->second);
    sub_used[it->second] = false;
    sub_owner[it->second].clear();
    it = sub_slots.erase(it);
  }
}

Status Edge::Impl::publish_targets(const qoc_stream_key& key, const std::vector<TargetEntry>& list) {
  const std::string kb = key_bytes_of(key);
  if (list.empty()) {
    QOCNET_TRY(subs.erase(key));
    release_sub_slots(kb, list);
    return {};
  }
  if (list.size() > QOC_MAX_TARGETS)  // callers check; qoc_targets holds no more
    return make_error(Errc::internal, "a stream has " + std::to_string(list.size()) +
                                          " clone targets, more than the datapath's " +
                                          std::to_string(QOC_MAX_TARGETS));
  auto v = std::make_unique<qoc_targets>();  // 2 KiB at 128 targets: not on the stack
  v->n = static_cast<__u32>(list.size());
  for (const auto& t : list)
    if (t.policy.kind == PolicyKind::differential || t.policy.kind == PolicyKind::frame_aware)
      v->flags |= QOC_TG_F_STREAM;
  std::vector<std::uint32_t> taken;  // processes given a slot here: given back on failure
  auto give_back = [&] {
    for (std::uint32_t proc : taken) {
      auto it = sub_slots.find({kb, proc});
      sub_used[it->second] = false;
      sub_slots.erase(it);
    }
  };
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::uint32_t proc = processes.at(list[i].process).slot;
    bool fresh = false;
    auto sub = sub_slot_of(kb, proc, list[i].process, &fresh);
    if (!sub) {
      give_back();
      return std::move(sub).error();
    }
    if (fresh) taken.push_back(proc);
    v->t[i] = to_target(proc, *sub, list[i].policy);
  }
  if (Status st = subs.update(key, *v); !st) {
    give_back();
    return st;
  }
  release_sub_slots(kb, list);
  return {};
}

// Every mutating call below checks everything first, then changes the
// Edge's own state and saves it, and only then changes the datapath; a save
// that fails changes nothing, and a datapath change that fails is undone
// (maps and state file) before the error is returned.

Status Edge::add_process(const ProcessSpec& spec) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(guard, impl_->enter());
  QOCNET_TRY(check_process_spec(spec));
  if (impl_->processes.count(spec.name))
    return make_error(Errc::already_exists, "process '" + spec.name + "' exists already",
                      "remove it first or choose another name");
  QOCNET_ASSIGN(ifindex, resolve_interface(spec.port));
  QOCNET_ASSIGN(p, make_proc(spec, ifindex));
  p.flags = proc_port_flags(ifindex);
  // The lowest free slot.
  std::uint32_t slot = 0;
  std::vector<bool> used(QOC_MAX_PROCS, false);
  for (const auto& [n, e] : impl_->processes) used[e.slot] = true;
  while (slot < QOC_MAX_PROCS && used[slot]) ++slot;
  if (slot == QOC_MAX_PROCS)
    return make_error(Errc::resource_exhausted,
                      "the edge holds " + std::to_string(QOC_MAX_PROCS) + " processes already",
                      "remove a process first");
  impl_->processes[spec.name] = {spec, slot, ifindex};
  if (Status st = impl_->save_state(); !st) {
    impl_->processes.erase(spec.name);
    return st;
  }
  if (Status st = impl_->procs.update(slot, p); !st) {
    impl_->processes.erase(spec.name);
    (void)impl_->save_state();
    return st;
  }
  (void)impl_->stats.update_all(ifindex, qoc_port_stats{}, BPF_NOEXIST);  // exists already: fine
  return {};
}

Status Edge::remove_process(std::string_view name_view) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string name(name_view);
  auto it = impl_->processes.find(name);
  if (it == impl_->processes.end())
    return unknown_process(name);
  const Impl::ProcessEntry entry = it->second;
  QOCNET_ASSIGN(old_proc, impl_->procs.lookup(entry.slot));
  const auto old_targets = impl_->targets;
  std::vector<std::string> changed;  // streams it was a target of
  for (auto t = impl_->targets.begin(); t != impl_->targets.end();) {
    auto& list = t->second;
    auto end = std::remove_if(list.begin(), list.end(),
                              [&](const Impl::TargetEntry& e) { return e.process == name; });
    if (end != list.end()) {
      list.erase(end, list.end());
      changed.push_back(t->first);
    }
    t = list.empty() ? impl_->targets.erase(t) : std::next(t);
  }
  impl_->processes.erase(it);
  auto undo_memory = [&] {
    impl_->processes[name] = entry;
    impl_->targets = old_targets;
  };
  if (Status st = impl_->save_state(); !st) {
    undo_memory();
    return st;
  }
  auto publish = [&](const std::map<std::string, std::vector<Impl::TargetEntry>>& tg) -> Status {
    for (const auto& kb : changed) {
      qoc_stream_key key;
      std::memcpy(&key, kb.data(), sizeof key);
      auto l = tg.find(kb);
      QOCNET_TRY(impl_->publish_targets(key, l == tg.end() ? std::vector<Impl::TargetEntry>{} : l->second));
    }
    return {};
  };
  Status st = publish(impl_->targets);
  if (st) st = impl_->procs.update(entry.slot, qoc_proc{});
  if (!st) {
    undo_memory();
    if (old_proc) (void)impl_->procs.update(entry.slot, *old_proc);
    (void)publish(impl_->targets);
    (void)impl_->save_state();
    return st;
  }
  // Its subscription slots went back with its streams' target lists.
  return {};
}

std::vector<ProcessSpec> Edge::processes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ProcessSpec> out;
  for (const auto& [n, e] : impl_->processes) out.push_back(e.spec);
  return out;
}

// Replaces a stream's target list: in memory and in the state file first,
// then in qoc_subs; every step undone when a later one fails.
Status Edge::Impl::replace_targets(const qoc_stream_key& key, std::vector<TargetEntry> list) {
  const std::string kb = key_bytes_of(key);
  auto it = targets.find(kb);
  std::optional<std::vector<TargetEntry>> old;
  if (it != targets.end()) old = it->second;
  auto set = [&](const std::optional<std::vector<TargetEntry>>& l) {
    if (l && !l->empty()) targets[kb] = *l;
    else targets.erase(kb);
  };
  set(list);
  if (Status st = save_state(); !st) {
    set(old);
    return st;
  }
  // A target whose policy dropped everything and now keeps something joins
  // the stream again: its video waits for the next random access point
  // (frame_aware starts afresh with it).
  auto drops_all = [](const Policy& p) { return p.kind != PolicyKind::keep && p.drop >= 1.0; };
  if (old)
    for (const auto& t : list) {
      auto before = std::find_if(old->begin(), old->end(), [&](const TargetEntry& o) { return o.process == t.process; });
      if (before == old->end() || !drops_all(before->policy) || drops_all(t.policy)) continue;
      auto slot = sub_slots.find({kb, processes.at(t.process).slot});
      if (slot != sub_slots.end()) (void)sub_fstate.update(slot->second, qoc_fstate{});
    }
  if (Status st = publish_targets(key, list); !st) {
    set(old);
    (void)publish_targets(key, old ? *old : std::vector<TargetEntry>{});
    (void)save_state();
    return st;
  }
  return {};
}

Status Edge::set_clone_targets(const StreamId& stream, const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(key, stream_key_of(stream));
  QOCNET_TRY(check_target_count(stream, names.size()));
  auto found = impl_->targets.find(key_bytes_of(key));
  const std::vector<Impl::TargetEntry> none;
  const auto& old = found != impl_->targets.end() ? found->second : none;
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
  return impl_->replace_targets(key, std::move(list));
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
  return impl_->replace_targets(key, std::move(list));
}

Status Edge::replace_qoc_table(QocTable table) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QocTable old = std::move(impl_->qoc_table);
  impl_->qoc_table = std::move(table);
  if (Status st = impl_->save_state(); !st) {
    impl_->qoc_table = std::move(old);
    return st;
  }
  return {};
}

QocTable Edge::qoc_table() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->qoc_table;
}

void Edge::set_qoc_table(QocTable table) {
  (void)replace_qoc_table(std::move(table));  // a failed save keeps the old table
}

Result<Policy> Edge::report_qoc(std::string_view process, const StreamId& stream, double required) {
  const QocTable table = [&] {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->qoc_table;
  }();
  QOCNET_ASSIGN(policy, control::choose_policy(table, required));
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
  return control::effective_policy(ps);
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
    auto sub = impl_->sub_slots.find({key_bytes_of(key), impl_->processes.at(t.process).slot});
    if (sub == impl_->sub_slots.end())
      return make_error(Errc::internal, "process '" + t.process + "' is a target of stream " +
                                            to_string(stream) + " without a subscription slot");
    QOCNET_ASSIGN(vals, impl_->sub_stats.lookup_all(sub->second));
    if (vals) add_cpu_stats(s, *vals);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<TargetStats>> Edge::departed_stats(const StreamId& stream) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QOCNET_ASSIGN(key, stream_key_of(stream));
  const std::string kb = key_bytes_of(key);
  std::vector<TargetStats> out;
  for (auto it = impl_->departed.lower_bound({kb, ""}); it != impl_->departed.end() && it->first.first == kb; ++it)
    out.push_back(it->second);
  return out;
}

}  // namespace qocnet
