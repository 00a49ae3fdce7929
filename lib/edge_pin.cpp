// Edge: pinning, restart without loss and the control-plane state file
// (docs/ARCHITECTURE.md, Pinning and restart).
#include <yaml-cpp/yaml.h>

#include <bpf/bpf.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "dpi_view.hpp"
#include "edge_impl.hpp"
#include "pinning.hpp"
#include "preflight.hpp"

namespace qocnet {

using namespace detail;
namespace fs = std::filesystem;

namespace {

constexpr int kStateFormat = 1;
constexpr const char* kProgram = "qoc_edge_in";
constexpr const char* kSlowProgram = "qoc_ts_slow";
constexpr const char* kDeliverProgram = "qoc_deliver";
constexpr const char* kProgArray = "qoc_progs";  // program wiring: one per program generation

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016" PRIx64, v);
  return b;
}

void emit_table(YAML::Emitter& y, const QocTable& t) {
  y << YAML::BeginMap << YAML::Key << "metric" << YAML::Value << t.metric() << YAML::Key
    << "lossless" << YAML::Value << t.lossless() << YAML::Key << "policies" << YAML::Value
    << YAML::BeginMap;
  for (const auto& [kind, c] : t.curves()) {
    y << YAML::Key << to_string(kind) << YAML::Value << YAML::Flow << YAML::BeginMap;
    y << YAML::Key << "loss" << YAML::Value << YAML::Flow << c.loss;
    y << YAML::Key << "qoc" << YAML::Value << YAML::Flow << c.qoc;
    y << YAML::EndMap;
  }
  y << YAML::EndMap << YAML::EndMap;
}

Error bad_state(const fs::path& file, const std::string& why) {
  return make_error(Errc::failed_precondition, "state file " + file.string() + " " + why,
                    "remove the pinned datapath and its state (qocnetctl cleanup, or "
                    "qocnet::cleanup()) and start again");
}

}  // namespace

Status Edge::Impl::save_state() const {
  if (!pinned()) return {};
  YAML::Emitter y;
  y.SetDoublePrecision(17);
  y << YAML::Comment("qocnet edge control-plane state; written by libqocnet after every change");
  y << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << kStateFormat;
  y << YAML::Key << "pin_dir" << YAML::Value << options.pin_dir.string();
  y << YAML::Key << "netns_inode" << YAML::Value << static_cast<std::uint64_t>(netns_inode);
  y << YAML::Key << "source_hash" << YAML::Value << hex(start.source_hash);
  y << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
  for (const auto& [idx, att] : attached)
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << att.ifname()
      << YAML::Key << "ifindex" << YAML::Value << idx << YAML::Key << "created_clsact"
      << YAML::Value << att.created_qdisc() << YAML::EndMap;
  y << YAML::EndSeq;
  y << YAML::Key << "processes" << YAML::Value << YAML::BeginSeq;
  for (const auto& [name, e] : processes)
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << name << YAML::Key
      << "port" << YAML::Value << e.spec.port << YAML::Key << "ifindex" << YAML::Value << e.ifindex
      << YAML::Key << "mac" << YAML::Value << e.spec.mac << YAML::Key << "ip" << YAML::Value
      << e.spec.ip << YAML::Key << "udp_port" << YAML::Value << e.spec.udp_port << YAML::Key
      << "slot" << YAML::Value << e.slot << YAML::EndMap;
  y << YAML::EndSeq;
  y << YAML::Key << "streams" << YAML::Value << YAML::BeginSeq;
  for (const auto& [kb, list] : targets) {
    if (list.empty()) continue;
    qoc_stream_key k;
    std::memcpy(&k, kb.data(), sizeof k);
    const StreamId id = stream_id_of(k);
    y << YAML::BeginMap << YAML::Key << "source" << YAML::Value << id.source << YAML::Key
      << "source_port" << YAML::Value << id.source_port << YAML::Key << "destination_port"
      << YAML::Value << id.destination_port << YAML::Key << "targets" << YAML::Value
      << YAML::BeginSeq;
    for (const auto& t : list)
      y << YAML::Flow << YAML::BeginMap << YAML::Key << "process" << YAML::Value << t.process
        << YAML::Key << "policy" << YAML::Value << to_string(t.policy.kind) << YAML::Key << "drop"
        << YAML::Value << t.policy.drop << YAML::EndMap;
    y << YAML::EndSeq << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "qoc_table" << YAML::Value;
  emit_table(y, qoc_table);
  y << YAML::EndMap;
  if (!y.good())
    return make_error(Errc::internal, std::string("cannot format the state file: ") + y.GetLastError());
  Status st = write_file_atomic(state_path, std::string(y.c_str()) + "\n");
  if (!st)
    return std::move(st).error().context("the change is in the datapath, but its state was not saved");
  return {};
}

Result<std::vector<Edge::Impl::SavedPort>> Edge::Impl::read_state() {
  std::vector<SavedPort> ports;
  std::error_code ec;
  if (!fs::exists(state_path, ec)) return ports;  // pins without state: nothing attached yet
  try {
    YAML::Node root = YAML::LoadFile(state_path.string());
    if (!root.IsMap() || !root["format"] || root["format"].as<int>() != kStateFormat)
      return bad_state(state_path, "is not in state format " + std::to_string(kStateFormat));
    const auto ino = root["netns_inode"].as<std::uint64_t>();
    if (ino != static_cast<std::uint64_t>(netns_inode))
      return bad_state(state_path,
                       "belongs to an edge in another network namespace (inode " +
                           std::to_string(ino) + ", this one is " + std::to_string(netns_inode) +
                           ")")
          .context("pin dir " + options.pin_dir.string());
    for (const auto& p : root["ports"])
      ports.push_back({p["name"].as<std::string>(), p["ifindex"].as<unsigned>(),
                       p["created_clsact"].as<bool>()});
    std::map<std::string, ProcessEntry> saved;
    for (const auto& p : root["processes"]) {
      ProcessEntry e;
      e.spec.name = p["name"].as<std::string>();
      e.spec.port = p["port"].as<std::string>();
      e.spec.mac = p["mac"].as<std::string>();
      e.spec.ip = p["ip"].as<std::string>();
      e.spec.udp_port = p["udp_port"].as<std::uint16_t>();
      e.slot = p["slot"].as<std::uint32_t>();
      e.ifindex = p["ifindex"].as<unsigned>();
      if (e.slot >= QOC_MAX_PROCS) return bad_state(state_path, "gives process " + e.spec.name +
                                                                    " slot " + std::to_string(e.slot));
      saved[e.spec.name] = e;
    }
    std::map<std::string, std::vector<TargetEntry>> tg;
    for (const auto& s : root["streams"]) {
      const StreamId id{s["source"].as<std::string>(), s["source_port"].as<std::uint16_t>(),
                        s["destination_port"].as<std::uint16_t>()};
      QOCNET_ASSIGN(key, stream_key_of(id));
      std::vector<TargetEntry> list;
      for (const auto& t : s["targets"]) {
        const std::string name = t["process"].as<std::string>();
        if (!saved.count(name))
          return bad_state(state_path, "names unknown process '" + name + "' as a target");
        QOCNET_ASSIGN(kind, parse_policy_kind(t["policy"].as<std::string>()));
        list.push_back({name, Policy{kind, t["drop"].as<double>()}});
      }
      tg[std::string(reinterpret_cast<const char*>(&key), sizeof key)] = std::move(list);
    }
    if (root["qoc_table"]) {
      QOCNET_ASSIGN(table, QocTable::parse_yaml(YAML::Dump(root["qoc_table"]),
                                                state_path.string() + " (qoc_table)"));
      qoc_table = std::move(table);
    }
    processes = std::move(saved);
    targets = std::move(tg);
  } catch (const YAML::Exception& e) {
    return bad_state(state_path, std::string("cannot be read: ") + e.what());
  }
  return ports;
}

Status Edge::Impl::apply_state() {
  // The maps follow the state: a crash between a map update and the state
  // write is undone here (qoc_procs and qoc_subs are rewritten from it).
  std::vector<bool> used(QOC_MAX_PROCS, false);
  for (auto& [name, e] : processes) {
    auto idx = resolve_interface(e.spec.port);
    if (idx) e.ifindex = *idx;  // the port may have been re-created
    QOCNET_ASSIGN(p, make_proc(e.spec, e.ifindex));
    QOCNET_TRY(procs.update(e.slot, p));
    used[e.slot] = true;
  }
  for (std::uint32_t slot = 0; slot < QOC_MAX_PROCS; ++slot)
    if (!used[slot]) QOCNET_TRY(procs.update(slot, qoc_proc{}));
  QOCNET_ASSIGN(keys, subs.keys());
  for (const auto& k : keys)
    if (!targets.count(std::string(reinterpret_cast<const char*>(&k), sizeof k)))
      QOCNET_TRY(subs.erase(k));
  for (const auto& [kb, list] : targets) {
    qoc_stream_key k;
    std::memcpy(&k, kb.data(), sizeof k);
    QOCNET_TRY(publish_targets(k, list));
  }
  return {};
}

Status Edge::Impl::start_pinned(CompileRequest req) {
  const fs::path& dir = options.pin_dir;
  QOCNET_TRY(check_bpffs(dir));
  state_path = state_file(dir, options.lock_dir);
  QOCNET_ASSIGN(lock, take_pin_lock(pin_lock_file(dir, options.lock_dir), "pin dir " + dir.string()));
  pin_lock = std::move(lock);
  QOCNET_ASSIGN(hash, hash_sources(req));
  start.source_hash = hash;
  QOCNET_ASSIGN(pins, open_pins(dir));
  const PinMeta fresh_meta{kPinMagic, kMapLayoutVersion, hash, options.max_ports, 0};

  if (!pins) {
    // Nothing pinned: compile, pin the maps and programs, the meta last (its
    // presence marks a complete set). A state file without pins is stale.
    std::error_code ec;
    fs::remove(state_path, ec);
    QOCNET_ASSIGN(obj, compile_bpf(req));
    start.compile_seconds = obj.compile_seconds;
    QOCNET_TRY(take(obj));
    QOCNET_TRY(make_pin_dirs(dir));
    for (const auto& [name, m] : obj.maps) QOCNET_TRY(pin_at(m.fd(), dir / "maps" / name));
    for (const Program* p : {&program, &slow_program, &deliver_program})
      QOCNET_TRY(pin_at(p->fd(), dir / "progs" / p->name()));
    QOCNET_ASSIGN(m, create_meta_map());
    QOCNET_TRY(write_meta(m, fresh_meta));
    QOCNET_TRY(pin_at(m.fd(), dir / kMetaPin));
    meta = std::move(m);
    return save_state();
  }

  // Everything that can refuse the pins is checked before anything changes.
  QOCNET_ASSIGN(ports, read_state());
  const bool same = pins->meta.source_hash == hash && pins->progs.count(kProgram) &&
                    pins->progs.count(kSlowProgram) && pins->progs.count(kDeliverProgram);
  start.adopted = true;
  if (same) {
    // The programs that are running are the ones these sources make: adopt
    // them and their maps; libbcc is not called.
    CompiledObject obj;
    for (auto& [name, m] : pins->maps) {
      QOCNET_ASSIGN(d, m.dup());
      obj.maps.emplace(name, std::move(d));
    }
    for (const char* name : {kProgram, kSlowProgram, kDeliverProgram}) {
      QOCNET_ASSIGN(p, Program::adopt(std::move(pins->progs.at(name)), name));
      obj.programs.emplace(name, std::move(p));
    }
    Status st = take(obj);
    if (!st) return incompatible_pins(dir, st.error().message);
  } else {
    // Changed sources: compile against the pinned maps (their state and
    // counters carry over), with a new tail-call table, so each packet runs
    // wholly in the old or wholly in the new programs.
    std::map<std::string, Map> reuse;
    for (auto& [name, m] : pins->maps)
      if (name != kProgArray) reuse.emplace(name, std::move(m));
    req.reuse_maps = &reuse;
    auto compiled = compile_bpf(req);
    if (!compiled) {
      Error e = std::move(compiled).error();
      if (e.message.rfind("pinned map ", 0) == 0) return incompatible_pins(dir, e.message);
      return e;
    }
    CompiledObject obj = std::move(*compiled);
    start.compile_seconds = obj.compile_seconds;
    start.replaced_programs = true;
    QOCNET_TRY(take(obj));
    auto old_progs = pins->maps.find(kProgArray);
    if (old_progs != pins->maps.end()) retired.push_back(std::move(old_progs->second));
    // Hash 0 while the programs change: a crash in between replaces again.
    PinMeta transit = fresh_meta;
    transit.source_hash = 0;
    QOCNET_TRY(write_meta(pins->meta_map, transit));
    QOCNET_TRY(make_pin_dirs(dir));
    for (const auto& [name, m] : obj.maps) QOCNET_TRY(pin_at(m.fd(), dir / "maps" / name));
    for (const auto& [name, m] : reuse)
      if (!obj.maps.count(name)) ::unlink((dir / "maps" / name).c_str());  // no longer declared
    for (const Program* p : {&program, &slow_program, &deliver_program})
      QOCNET_TRY(pin_at(p->fd(), dir / "progs" / p->name()));
  }
  meta = std::move(pins->meta_map);
  QOCNET_TRY(apply_state());

  // Re-attach the ports: a filter already running the adopted program is
  // left untouched; one running the old program is replaced in place.
  for (const auto& sp : ports) {
    auto idx = resolve_interface(sp.name);
    if (!idx || *idx != sp.ifindex) continue;  // the port is gone (or another one has its name)
    QOCNET_ASSIGN(att, TcAttachment::attach(program, *idx, sp.name, TcDirection::ingress,
                                            options.lock_dir, sp.created_clsact));
    (void)stats.update_all(*idx, qoc_port_stats{}, BPF_NOEXIST);
    attached.emplace(*idx, std::move(att));
    start.adopted_ports.push_back(sp.name);
  }
  if (start.replaced_programs) QOCNET_TRY(write_meta(meta, fresh_meta));
  return save_state();
}

void Edge::Impl::shutdown() {
  if (keep && pinned()) {
    for (auto& [idx, att] : attached) att.persist();
    attached.clear();
    return;  // pins, state and filters stay; the locks go with the fds
  }
  attached.clear();  // detaches the filters
  if (!pinned() || !pin_lock.valid()) return;
  remove_pins(options.pin_dir);
  std::error_code ec;
  fs::remove(state_path, ec);
  ::unlink(pin_lock_file(options.pin_dir, options.lock_dir).c_str());
}

}  // namespace qocnet
