// SPDX-License-Identifier: Apache-2.0
// Edge: pinning, restart without loss and the control-plane state file
// (docs/ARCHITECTURE.md, Pinning and restart).
#include <yaml-cpp/yaml.h>

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "dpi_view.hpp"
#include "edge_impl.hpp"
#include "pinning.hpp"
#include "preflight.hpp"
#include "state_file.hpp"
#include "yaml_text.hpp"

namespace qocnet {

using namespace detail;
namespace fs = std::filesystem;

namespace {

constexpr const char* kProgram = "qoc_edge_in";
constexpr const char* kSlowProgram = "qoc_ts_slow";
constexpr const char* kDeliverProgram = "qoc_deliver";
constexpr const char* kProgArray = "qoc_progs";  // program wiring: one per program generation
constexpr const char* kChecksumKey = "checksum: ";

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016" PRIx64, v);
  return b;
}

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

Error bad_state(const fs::path& file, const std::string& why) {
  return make_error(Errc::failed_precondition, "state file " + file.string() + " " + why,
                    "remove the pinned datapath and its state (qocnetctl cleanup --pin-dir <pin "
                    "dir>, or qocnet::cleanup()) and start again");
}

// --- parse_state: every node's shape, every count and every value checked.

struct Bad {
  std::string why;
};

[[noreturn]] void fail(const std::string& why) { throw Bad{why}; }

std::string scalar(const YAML::Node& n, const std::string& where) {
  if (!n.IsDefined() || n.IsNull()) fail(where + " is missing");
  if (!n.IsScalar()) fail(where + " is not a single value");
  return n.Scalar();
}

// `map` is a map holding exactly the keys `keys`, each once.
// `keys` must all be there; `optional` may be.
void expect_map(const YAML::Node& map, const std::string& where,
                std::initializer_list<const char*> keys, std::initializer_list<const char*> optional = {}) {
  if (!map.IsMap()) fail(where + " is not a map");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) fail(where + " has a key that is not a name");
    const std::string k = kv.first.Scalar();
    auto is_k = [&](const char* x) { return k == x; };
    if (std::find_if(keys.begin(), keys.end(), is_k) == keys.end() &&
        std::find_if(optional.begin(), optional.end(), is_k) == optional.end())
      fail(where + " has an unknown key '" + k + "'");
    if (!seen.insert(k).second) fail(where + " has the key '" + k + "' twice");
  }
  for (const char* k : keys)
    if (!seen.count(k)) fail(where + " lacks '" + k + "'");
}

std::uint64_t uint_of(const YAML::Node& n, const std::string& where, std::uint64_t max) {
  const std::string s = scalar(n, where);
  const bool is_hex = s.size() > 2 && s[0] == '0' && s[1] == 'x';
  const std::string digits = is_hex ? s.substr(2) : s;
  if (digits.empty() || digits.size() > (is_hex ? 16u : 20u) ||
      digits.find_first_not_of(is_hex ? "0123456789abcdef" : "0123456789") != std::string::npos)
    fail(where + " '" + s + "' is not a whole number");
  errno = 0;
  const unsigned long long v = std::strtoull(digits.c_str(), nullptr, is_hex ? 16 : 10);
  if (errno == ERANGE || v > max)
    fail(where + " " + s + " is above " + std::to_string(max));
  return v;
}

bool bool_of(const YAML::Node& n, const std::string& where) {
  const std::string s = scalar(n, where);
  if (s == "true") return true;
  if (s == "false") return false;
  fail(where + " '" + s + "' is not true or false");
}

double real_of(const YAML::Node& n, const std::string& where) {
  const std::string s = scalar(n, where);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  // ERANGE is also set for a subnormal result, which is a value like any
  // other (validate(Policy) takes a drop rate of 1e-310, so the file must
  // hold it); only an overflow, or an underflow to zero, is refused.
  if (s.empty() || end != s.c_str() + s.size() || (errno == ERANGE && (v == 0.0 || !std::isfinite(v))) ||
      !std::isfinite(v))
    fail(where + " '" + s + "' is not a number");
  return v;
}

YAML::Node seq(const YAML::Node& n, const std::string& where, std::size_t max) {
  if (!n.IsSequence()) fail(where + " is not a list");
  if (n.size() > max)
    fail(where + " has " + std::to_string(n.size()) + " entries; at most " + std::to_string(max) +
         " are allowed");
  return n;
}

// A Status of the API's checks as a refusal of the file.
void check(const Status& st, const std::string& where) {
  if (!st) fail(where + ": " + st.error().message);
}

SavedState parse_body(const std::string& body) {
  const YAML::Node root = YAML::Load(body);
  if (!root.IsMap()) fail("is not a map of state");
  const YAML::Node format = root["format"];
  if (format.IsDefined() && format.IsScalar() && format.Scalar() != std::to_string(kStateFormat))
    fail("is in state format " + format.Scalar() + ", this qocnet reads format " +
         std::to_string(kStateFormat));
  expect_map(root, "the file",
             {"format", "pin_dir", "netns_inode", "source_hash", "ports", "processes", "streams",
              "qoc_table"});
  uint_of(format, "format", kStateFormat);
  SavedState st;
  st.pin_dir = scalar(root["pin_dir"], "pin_dir");
  if (st.pin_dir.empty() || st.pin_dir[0] != '/') fail("pin_dir '" + st.pin_dir + "' is not absolute");
  st.netns_inode = uint_of(root["netns_inode"], "netns_inode", UINT64_MAX);
  st.source_hash = uint_of(root["source_hash"], "source_hash", UINT64_MAX);

  // The largest EdgeOptions::max_ports validate() allows; the Edge checks its own.
  const YAML::Node ports = seq(root["ports"], "ports", 65536);
  std::set<std::string> port_names;
  std::set<unsigned> port_indexes;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const YAML::Node p = ports[i];
    const std::string w = "ports[" + std::to_string(i) + "]";
    expect_map(p, w, {"name", "ifindex", "created_clsact"});
    SavedPort sp;
    sp.name = scalar(p["name"], w + ".name");
    check(check_interface_name(sp.name), w + ".name");
    sp.ifindex = static_cast<unsigned>(uint_of(p["ifindex"], w + ".ifindex", INT32_MAX));
    if (sp.ifindex == 0) fail(w + ".ifindex is 0");
    sp.created_clsact = bool_of(p["created_clsact"], w + ".created_clsact");
    if (!port_names.insert(sp.name).second) fail("lists port " + sp.name + " twice");
    if (!port_indexes.insert(sp.ifindex).second)
      fail("lists ifindex " + std::to_string(sp.ifindex) + " twice");
    st.ports.push_back(std::move(sp));
  }

  const YAML::Node procs = seq(root["processes"], "processes", QOC_MAX_PROCS);
  std::set<std::string> proc_names;
  std::set<std::uint32_t> slots;
  for (std::size_t i = 0; i < procs.size(); ++i) {
    const YAML::Node p = procs[i];
    const std::string w = "processes[" + std::to_string(i) + "]";
    expect_map(p, w, {"name", "port", "ifindex", "mac", "ip", "udp_port", "slot"});
    SavedProcess e;
    e.spec.name = scalar(p["name"], w + ".name");
    e.spec.port = scalar(p["port"], w + ".port");
    e.spec.mac = scalar(p["mac"], w + ".mac");
    e.spec.ip = scalar(p["ip"], w + ".ip");
    e.spec.udp_port = static_cast<std::uint16_t>(uint_of(p["udp_port"], w + ".udp_port", 65535));
    e.ifindex = static_cast<unsigned>(uint_of(p["ifindex"], w + ".ifindex", INT32_MAX));
    e.slot = static_cast<std::uint32_t>(uint_of(p["slot"], w + ".slot", QOC_MAX_PROCS - 1));
    check(check_process_spec(e.spec), w);
    if (!proc_names.insert(e.spec.name).second) fail("lists process '" + e.spec.name + "' twice");
    if (!slots.insert(e.slot).second)
      fail("gives slot " + std::to_string(e.slot) + " to two processes");
    st.processes.push_back(std::move(e));
  }

  const YAML::Node streams = seq(root["streams"], "streams", kMaxStateStreams);
  std::set<std::string> keys;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    const YAML::Node s = streams[i];
    const std::string w = "streams[" + std::to_string(i) + "]";
    expect_map(s, w, {"source", "source_port", "destination_port", "targets"});
    SavedStream ss;
    ss.id.source = scalar(s["source"], w + ".source");
    ss.id.source_port = static_cast<std::uint16_t>(uint_of(s["source_port"], w + ".source_port", 65535));
    ss.id.destination_port =
        static_cast<std::uint16_t>(uint_of(s["destination_port"], w + ".destination_port", 65535));
    auto key = stream_key_of(ss.id);
    check(key.ok() ? Status{} : Status(std::move(key).error()), w);
    if (!keys.insert(key_bytes_of(*key)).second) fail("lists stream " + to_string(ss.id) + " twice");
    const YAML::Node ts = s["targets"];
    if (!ts.IsSequence()) fail(w + ".targets is not a list");
    check(check_target_count(ss.id, ts.size()), w + ".targets");
    if (ts.size() == 0) fail(w + " (" + to_string(ss.id) + ") has no targets");
    for (std::size_t j = 0; j < ts.size(); ++j) {
      const YAML::Node t = ts[j];
      const std::string tw = w + ".targets[" + std::to_string(j) + "]";
      expect_map(t, tw, {"process", "policy", "drop"}, {"order"});
      SavedTarget target;
      target.process = scalar(t["process"], tw + ".process");
      if (!proc_names.count(target.process))
        fail(tw + " names unknown process '" + target.process + "'");
      for (const auto& other : ss.targets)
        if (other.process == target.process)
          fail(tw + " names process '" + target.process + "' twice on " + to_string(ss.id));
      auto kind = parse_policy_kind(scalar(t["policy"], tw + ".policy"));
      check(kind.ok() ? Status{} : Status(std::move(kind).error()), tw + ".policy");
      target.policy = Policy{*kind, real_of(t["drop"], tw + ".drop")};
      if (t["order"]) {  // frame_aware's drop order; a file without it: disp
        auto order = parse_drop_order(scalar(t["order"], tw + ".order"));
        check(order.ok() ? Status{} : Status(std::move(order).error()), tw + ".order");
        target.policy.order = *order;
      }
      check(validate(target.policy), tw);
      ss.targets.push_back(std::move(target));
    }
    st.streams.push_back(std::move(ss));
  }

  const YAML::Node table = root["qoc_table"];
  if (!table.IsMap()) fail("qoc_table is not a map");
  auto parsed = QocTable::parse_yaml(YAML::Dump(table), "qoc_table");
  if (!parsed) fail("qoc_table: " + std::move(parsed).error().message);
  st.qoc_table = std::move(*parsed);
  return st;
}

void append_seal(std::string& text) {
  const std::uint64_t sum = fnv1a64(text);
  text += kChecksumKey;
  text += hex(sum);
  text += '\n';
}

// --- format_state: plain string building, no YAML emitter (it cost 70% of
// qocnetd's CPU under 640 policy changes a second, docs/BENCHMARKS.md). The
// text is YAML that parse_body reads; every string is double-quoted and
// escaped so that yaml-cpp reads back exactly its bytes.

void put_reals(std::string& o, const std::vector<double>& vs) {
  o += '[';
  for (std::size_t i = 0; i < vs.size(); ++i) {
    if (i) o += ", ";
    put_real(o, vs[i]);
  }
  o += ']';
}

void put_table(std::string& o, const QocTable& t) {
  o += "qoc_table:\n  metric: ";
  put_quoted(o, t.metric());
  o += "\n  lossless: ";
  put_real(o, t.lossless());
  o += "\n  policies:";
  if (t.curves().empty()) o += " {}";
  o += '\n';
  for (const auto& [kind, c] : t.curves()) {
    o += "    ";
    o += to_string(kind);
    o += ": {loss: ";
    put_reals(o, c.loss);
    o += ", qoc: ";
    put_reals(o, c.qoc);
    o += "}\n";
  }
}

}  // namespace

namespace detail {

std::string seal_state(const std::string& body) {
  std::string text = body;
  append_seal(text);
  return text;
}

std::string format_state(const SavedState& s) {
  std::string o;
  std::size_t ntargets = 0;
  for (const auto& st : s.streams) ntargets += st.targets.size();
  o.reserve(1024 + 96 * s.ports.size() + 160 * s.processes.size() + 128 * s.streams.size() +
            80 * ntargets);
  o += "# qocnet edge control-plane state; written by libqocnet after every change; sealed by its "
       "last line\nformat: ";
  put_uint(o, static_cast<std::uint64_t>(kStateFormat));
  o += "\npin_dir: ";
  put_quoted(o, s.pin_dir);
  o += "\nnetns_inode: ";
  put_uint(o, s.netns_inode);
  o += "\nsource_hash: ";
  o += hex(s.source_hash);
  o += "\nports:";
  if (s.ports.empty()) o += " []";
  o += '\n';
  for (const auto& p : s.ports) {
    o += "  - {name: ";
    put_quoted(o, p.name);
    o += ", ifindex: ";
    put_uint(o, p.ifindex);
    o += p.created_clsact ? ", created_clsact: true}\n" : ", created_clsact: false}\n";
  }
  o += "processes:";
  if (s.processes.empty()) o += " []";
  o += '\n';
  for (const auto& e : s.processes) {
    o += "  - {name: ";
    put_quoted(o, e.spec.name);
    o += ", port: ";
    put_quoted(o, e.spec.port);
    o += ", ifindex: ";
    put_uint(o, e.ifindex);
    o += ", mac: ";
    put_quoted(o, e.spec.mac);
    o += ", ip: ";
    put_quoted(o, e.spec.ip);
    o += ", udp_port: ";
    put_uint(o, e.spec.udp_port);
    o += ", slot: ";
    put_uint(o, e.slot);
    o += "}\n";
  }
  o += "streams:";
  if (s.streams.empty()) o += " []";
  o += '\n';
  for (const auto& st : s.streams) {
    o += "  - source: ";
    put_quoted(o, st.id.source);
    o += "\n    source_port: ";
    put_uint(o, st.id.source_port);
    o += "\n    destination_port: ";
    put_uint(o, st.id.destination_port);
    o += "\n    targets:";
    if (st.targets.empty()) o += " []";
    o += '\n';
    for (const auto& t : st.targets) {
      o += "      - {process: ";
      put_quoted(o, t.process);
      o += ", policy: ";
      o += to_string(t.policy.kind);
      o += ", drop: ";
      put_real(o, t.policy.drop);
      if (t.policy.order != DropOrder::disp) {  // disp is the default: files stay as they were
        o += ", order: ";
        o += to_string(t.policy.order);
      }
      o += "}\n";
    }
  }
  put_table(o, s.qoc_table);
  append_seal(o);
  return o;
}

Result<SavedState> parse_state(std::string_view text) {
  auto refuse = [](const std::string& why) {
    return make_error(Errc::failed_precondition, why,
                      "remove the pinned datapath and its state (qocnetctl cleanup) and start again");
  };
  if (text.size() > kMaxStateBytes)
    return refuse("is " + std::to_string(text.size()) + " bytes, more than a state file can be");
  // The seal: the last line, over every byte before it. A file cut anywhere
  // (or changed) fails here.
  if (text.empty() || text.back() != '\n')
    return refuse("is incomplete: it does not end with its checksum line (cut short?)");
  const std::size_t line = text.rfind('\n', text.size() - 2);
  const std::size_t begin = line == std::string_view::npos ? 0 : line + 1;
  const std::string_view last = text.substr(begin, text.size() - 1 - begin);
  const std::string_view body = text.substr(0, begin);
  if (last.substr(0, std::strlen(kChecksumKey)) != kChecksumKey)
    return refuse("is incomplete: it does not end with its checksum line (cut short?)");
  if (std::string(last) != std::string(kChecksumKey) + hex(fnv1a64(body)))
    return refuse("does not match its checksum (" + std::string(last.substr(std::strlen(kChecksumKey))) +
                  "): it was cut short or changed after qocnet wrote it");
  if (body.find('\0') != std::string_view::npos) return refuse("holds a NUL byte");
  try {
    return parse_body(std::string(body));
  } catch (const Bad& b) {
    return refuse(b.why);
  } catch (const YAML::Exception& e) {
    return refuse(std::string("is not valid YAML: ") + e.what());
  } catch (const std::exception& e) {
    return refuse(std::string("cannot be read: ") + e.what());
  }
}

}  // namespace detail

SavedState Edge::Impl::snapshot() const {
  SavedState s;
  s.pin_dir = options.pin_dir.string();
  s.netns_inode = static_cast<std::uint64_t>(netns_inode);
  s.source_hash = start.source_hash;
  for (const auto& [idx, att] : attached) s.ports.push_back({att.ifname(), idx, att.created_qdisc()});
  for (const auto& [name, e] : processes) s.processes.push_back(e);
  for (const auto& [kb, list] : targets) {
    if (list.empty()) continue;
    qoc_stream_key k;
    std::memcpy(&k, kb.data(), sizeof k);
    s.streams.push_back({stream_id_of(k), list});
  }
  s.qoc_table = qoc_table;
  return s;
}

Status Edge::Impl::write_state(const SavedState& s) const {
  if (!pinned()) return {};
  std::string text;
  try {
    text = format_state(s);
  } catch (const YAML::Exception& e) {
    return make_error(Errc::internal, std::string("cannot format the state file: ") + e.what());
  }
  // A change that changes nothing in the file (a policy set to what it was)
  // writes nothing: the file holds this text already. last_state is only
  // what a successful rename put in place, so a failed write is retried.
  if (text == last_state) return {};
  last_state.clear();
  QOCNET_TRY(write_file_atomic(state_path, text));
  last_state = std::move(text);
  return {};
}

Status Edge::Impl::save_state() const { return write_state(snapshot()); }

Result<std::vector<SavedPort>> Edge::Impl::read_state(std::size_t max_streams) {
  std::error_code ec;
  if (!fs::exists(state_path, ec)) return std::vector<SavedPort>{};  // pins without state: nothing attached yet
  std::ifstream f(state_path, std::ios::binary);
  if (!f) return bad_state(state_path, "cannot be read");
  std::string text;
  {
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  auto parsed = parse_state(text);
  if (!parsed) return bad_state(state_path, std::move(parsed).error().message);
  SavedState& s = *parsed;
  if (s.pin_dir != options.pin_dir.string())
    return bad_state(state_path, "belongs to pin dir " + s.pin_dir + ", not " + options.pin_dir.string());
  if (s.netns_inode != static_cast<std::uint64_t>(netns_inode))
    return bad_state(state_path,
                     "belongs to an edge in another network namespace (inode " +
                         std::to_string(s.netns_inode) + ", this one is " +
                         std::to_string(netns_inode) + ")")
        .context("pin dir " + options.pin_dir.string());
  if (s.ports.size() > options.max_ports)
    return bad_state(state_path, "lists " + std::to_string(s.ports.size()) +
                                     " ports; this edge holds at most " +
                                     std::to_string(options.max_ports) + " (EdgeOptions::max_ports)");
  if (s.streams.size() > max_streams)
    return bad_state(state_path, "lists " + std::to_string(s.streams.size()) +
                                     " streams with clone targets; the pinned datapath holds at most " +
                                     std::to_string(max_streams));
  std::map<std::string, ProcessEntry> saved;
  for (auto& p : s.processes) saved[p.spec.name] = std::move(p);
  std::map<std::string, std::vector<TargetEntry>> tg;
  for (const auto& st : s.streams) {
    QOCNET_ASSIGN(key, stream_key_of(st.id));  // checked by parse_state
    tg[key_bytes_of(key)] = st.targets;
  }
  qoc_table = std::move(s.qoc_table);
  processes = std::move(saved);
  targets = std::move(tg);
  return std::move(s.ports);
}

Status Edge::Impl::adopt_sub_slots() {
  sub_slots.clear();
  sub_used.assign(QOC_MAX_SUBS, false);
  for (const auto& [kb, list] : targets) {
    qoc_stream_key k;
    std::memcpy(&k, kb.data(), sizeof k);
    QOCNET_ASSIGN(v, subs.lookup(k));
    if (!v) continue;  // not published before the restart: slots are given anew
    const std::uint32_t n = std::min<std::uint32_t>(v->n, QOC_MAX_TARGETS);
    for (std::uint32_t i = 0; i < n; ++i) {
      const qoc_target& t = v->t[i];
      // A slot out of range or named twice is not trusted: the pair gets a
      // fresh (zeroed) slot when its targets are published.
      if (!lists_slot(list, t.proc) || t.sub >= QOC_MAX_SUBS || sub_used[t.sub] || sub_slots.count({kb, t.proc}))
        continue;
      sub_used[t.sub] = true;
      for (const auto& e : list)
        if (auto p = processes.find(e.process); p != processes.end() && p->second.slot == t.proc) sub_owner[t.sub] = e.process;
      sub_slots[{kb, t.proc}] = t.sub;
    }
  }
  return {};
}

Status Edge::Impl::apply_state() {
  // The maps follow the state: a crash between a map update and the state
  // write is undone here (qoc_procs and qoc_subs are rewritten from it).
  std::vector<bool> used(QOC_MAX_PROCS, false);
  for (auto& [name, e] : processes) {
    auto idx = resolve_interface(e.spec.port);
    if (idx) e.ifindex = *idx;  // the port may have been re-created
    QOCNET_ASSIGN(p, make_proc(e.spec, e.ifindex));
    p.flags = proc_port_flags(e.ifindex);
    QOCNET_TRY(procs.update(e.slot, p));
    used[e.slot] = true;
  }
  for (std::uint32_t slot = 0; slot < QOC_MAX_PROCS; ++slot)
    if (!used[slot]) QOCNET_TRY(procs.update(slot, qoc_proc{}));
  QOCNET_ASSIGN(keys, subs.keys());
  for (const auto& k : keys)
    if (!targets.count(std::string(reinterpret_cast<const char*>(&k), sizeof k)))
      QOCNET_TRY(subs.erase(k));
  QOCNET_TRY(adopt_sub_slots());
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
  const fs::path lock_path = pin_lock_file(dir, options.lock_dir);
  std::error_code lock_ec;
  const bool lock_existed = fs::exists(lock_path, lock_ec);
  QOCNET_ASSIGN(lock, take_pin_lock(lock_path, "pin dir " + dir.string()));
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
  fs::remove(atomic_spare(state_path), ec);
    // A first start that fails leaves nothing behind: no pins nobody owns
    // (a later start would adopt them), no state, no lock file it made.
    auto fresh = [&]() -> Status {
      QOCNET_ASSIGN(obj, compile_bpf(req));
      start.compile_seconds = obj.compile_seconds;
      QOCNET_TRY(take(obj));
      QOCNET_TRY(make_pin_dirs(dir));
      for (const auto& [name, m] : obj.maps) QOCNET_TRY(pin_at(m.fd(), dir / "maps" / name));
      for (const Program* p : {&program, &slow_program, &deliver_program})
        QOCNET_TRY(pin_at(p->fd(), dir / "progs" / p->name()));
      QOCNET_TRY(save_state());  // before the meta pin: pins without meta are never adopted
      QOCNET_ASSIGN(m, create_meta_map());
      QOCNET_TRY(write_meta(m, fresh_meta));
      QOCNET_TRY(pin_at(m.fd(), dir / kMetaPin));
      meta = std::move(m);
      return {};
    };
    Status st = fresh();
    if (!st) {
      remove_pins(dir);
      fs::remove(state_path, ec);
      fs::remove(atomic_spare(state_path), ec);
      if (!lock_existed) ::unlink(lock_path.c_str());
    }
    return st;
  }

  // Everything that can refuse the pins is checked before anything changes.
  // The pinned qoc_subs map's size bounds the streams the state may list.
  auto subs_map = pins->maps.find("qoc_subs");
  QOCNET_ASSIGN(ports, read_state(subs_map != pins->maps.end() ? subs_map->second.max_entries()
                                                                : kMaxStateStreams));
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
  fs::remove(atomic_spare(state_path), ec);
  ::unlink(pin_lock_file(options.pin_dir, options.lock_dir).c_str());
}

}  // namespace qocnet
