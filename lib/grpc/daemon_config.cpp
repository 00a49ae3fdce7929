// SPDX-License-Identifier: Apache-2.0
#include "daemon_config.hpp"

#include "convert.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace qocnet::grpc_api {

namespace {

Error bad(const std::string& origin, const std::string& key, const std::string& problem,
          const std::string& fix) {
  return make_error(Errc::invalid_argument, origin + ": " + key + ": " + problem, fix);
}

const char* shape(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "empty";
    case YAML::NodeType::Scalar: return "a single value";
    default: return "undefined";
  }
}

// The YAML reader: every access checks the node's shape first, so no
// yaml-cpp exception is needed to find a mistake, and every error names the
// key ("processes[1].mac") and what was expected.
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  Error wrong(const std::string& key, const YAML::Node& n, const std::string& expected,
              const std::string& fix = "see docs/SERVICE.md, Configuration") const {
    return bad(origin_, key, std::string("is ") + shape(n) + ", not " + expected, fix);
  }

  // A mapping whose keys are all single values, known and not repeated.
  Status mapping(const YAML::Node& n, const std::string& key, const std::set<std::string>& known) const {
    const std::string where = key.empty() ? "top level" : key;
    if (!n.IsMap()) return wrong(where, n, "a mapping", "write key: value lines");
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar())
        return bad(origin_, where, std::string("has a key that is ") + shape(kv.first), "keys are plain words");
      const std::string k = kv.first.Scalar();
      const std::string path = key.empty() ? k : key + "." + k;
      if (!known.count(k)) {
        std::string list;
        for (const auto& x : known) list += (list.empty() ? "" : ", ") + x;
        return bad(origin_, path.substr(0, 200), "is not a known key", "known keys: " + list);
      }
      if (!seen.insert(k).second) return bad(origin_, path, "appears twice", "give each key once");
    }
    return {};
  }

  Result<std::string> text(const YAML::Node& n, const std::string& key, std::size_t limit = 4096) const {
    if (!n.IsScalar()) return wrong(key, n, "a single value");
    if (n.Scalar().size() > limit)
      return bad(origin_, key, "is " + std::to_string(n.Scalar().size()) + " bytes, more than the limit of " +
                                   std::to_string(limit), "shorten it");
    return n.Scalar();
  }

  Result<bool> boolean(const YAML::Node& n, const std::string& key) const {
    QOCNET_ASSIGN(v, text(n, key));
    static const std::set<std::string> yes{"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const std::set<std::string> no{"false", "False", "FALSE", "no", "No", "off", "Off"};
    if (yes.count(v)) return true;
    if (no.count(v)) return false;
    return bad(origin_, key, "is '" + v.substr(0, 64) + "', not true or false", "write true or false");
  }

  Result<double> number(const YAML::Node& n, const std::string& key) const {
    QOCNET_ASSIGN(v, text(n, key));
    double d = 0;
    std::size_t used = 0;
    try {
      d = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size() || !std::isfinite(d))
      return bad(origin_, key, "is '" + v.substr(0, 64) + "', not a finite number", "write a number, e.g. 0.5");
    return d;
  }

  Result<std::uint64_t> integer(const YAML::Node& n, const std::string& key, std::uint64_t lo,
                                std::uint64_t hi) const {
    QOCNET_ASSIGN(v, text(n, key));
    if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(v) < lo || std::stoull(v) > hi)
      return bad(origin_, key, "is '" + v.substr(0, 64) + "', not a whole number in " + std::to_string(lo) + ".." +
                                   std::to_string(hi), "write a whole number in that range");
    return std::stoull(v);
  }

  Result<std::vector<std::string>> texts(const YAML::Node& n, const std::string& key) const {
    if (!n.IsSequence()) return wrong(key, n, "a list");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
      QOCNET_ASSIGN(v, text(n[i], key + "[" + std::to_string(i) + "]"));
      out.push_back(v);
    }
    return out;
  }

  Result<std::string> interface(const YAML::Node& n, const std::string& key) const {
    QOCNET_ASSIGN(v, text(n, key));
    if (auto st = check_interface_name(v, key); !st) return std::move(st).error().context(origin_);
    return v;
  }

  Result<StreamId> stream(const YAML::Node& n, const std::string& key) const {
    QOCNET_ASSIGN(v, text(n, key, 128));
    auto id = parse_stream_id(v);
    if (!id) return std::move(id).error().context(origin_ + ": " + key);
    auto k = stream_key(*id);
    if (!k) return std::move(k).error().context(origin_ + ": " + key);
    return stream_id_of(*k);  // canonical: one spelling per stream
  }

  Result<std::vector<StreamId>> streams(const YAML::Node& n, const std::string& key) const {
    if (!n.IsSequence()) return wrong(key, n, "a list", "list streams as SRC:SPORT->:DPORT");
    std::vector<StreamId> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
      QOCNET_ASSIGN(id, stream(n[i], key + "[" + std::to_string(i) + "]"));
      out.push_back(id);
    }
    return out;
  }

  Error missing(const std::string& key) const {
    return bad(origin_, key, "is missing", "see docs/SERVICE.md, Configuration");
  }

  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
};

Result<DaemonConfig> parse(const YAML::Node& root, const Reader& r) {
  DaemonConfig c;
  if (root.IsNull()) return c;
  QOCNET_TRY(r.mapping(root,
                       "",
                       {"listen", "process_listen", "operators", "tenants", "tcp", "tls", "metrics", "health", "keep_datapath", "rate_limit", "log_level", "pin_dir",
                        "bpf_src_dir", "state_file", "sensor_tls", "ports", "pairs", "processes", "streams", "sensors",
                        "qoc_table", "loop"}));
  auto str = [&](const char* key, std::string* out) -> Status {
    if (!root[key]) return {};
    QOCNET_ASSIGN(v, r.text(root[key], key));
    *out = v;
    return {};
  };
  QOCNET_TRY(str("listen", &c.listen));
  QOCNET_TRY(str("process_listen", &c.process_listen));
  if (auto o = root["operators"]) {
    QOCNET_ASSIGN(v, r.texts(o, "operators"));
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i].empty() || v[i].size() > 256)
        return bad(r.origin(), "operators[" + std::to_string(i) + "]", "is not 1..256 characters",
                   "give a client certificate's common name or subject alternative name");
    c.tenancy.operators = v;
  }
  if (auto t = root["tenants"]) {
    if (!t.IsSequence()) return r.wrong("tenants", t, "a list", "list {name, netns|cgroup|uid, processes, streams}");
    for (std::size_t i = 0; i < t.size(); ++i) {
      const std::string k = "tenants[" + std::to_string(i) + "]";
      QOCNET_TRY(r.mapping(t[i], k, {"name", "netns", "cgroup", "uid", "processes", "streams"}));
      TenantRule rule;
      if (!t[i]["name"]) return r.missing(k + ".name");
      QOCNET_ASSIGN(name, r.text(t[i]["name"], k + ".name", 64));
      rule.name = name;
      if (t[i]["netns"]) {
        QOCNET_ASSIGN(v, r.text(t[i]["netns"], k + ".netns", 255));
        if (v.empty() || v.find('/') != std::string::npos || v == "." || v == "..")
          return bad(r.origin(), k + ".netns", "'" + v.substr(0, 64) + "' is not a namespace name",
                     "give NAME of /run/netns/NAME (ip netns list shows them)");
        rule.netns = v;
      }
      if (t[i]["cgroup"]) {
        QOCNET_ASSIGN(v, r.text(t[i]["cgroup"], k + ".cgroup", 1024));
        if (v.empty() || v[0] != '/')
          return bad(r.origin(), k + ".cgroup", "'" + v.substr(0, 64) + "' is not an absolute cgroup path",
                     "give the cgroup v2 path as /proc/PID/cgroup shows it after 0::, e.g. /kubepods.slice");
        rule.cgroup = v;
      }
      if (t[i]["uid"]) {
        QOCNET_ASSIGN(v, r.integer(t[i]["uid"], k + ".uid", 0, 4294967294ull));
        rule.uid = static_cast<std::uint32_t>(v);
      }
      if (!rule.netns && !rule.cgroup && !rule.uid)
        return bad(r.origin(), k, "says nothing of who the tenant is",
                   "give netns, cgroup or uid (every one given must hold)");
      if (t[i]["processes"]) {
        QOCNET_ASSIGN(v, r.texts(t[i]["processes"], k + ".processes"));
        rule.processes = v;
      }
      if (!t[i]["streams"]) return r.missing(k + ".streams");
      QOCNET_ASSIGN(streams, r.texts(t[i]["streams"], k + ".streams"));
      if (streams.empty())
        return bad(r.origin(), k + ".streams", "is empty", "list the streams the tenant may receive, or \"*\"");
      for (std::size_t j = 0; j < streams.size(); ++j) {
        auto pat = parse_stream_pattern(streams[j]);
        if (!pat) return std::move(pat).error().context(r.origin() + ": " + k + ".streams[" + std::to_string(j) + "]");
        rule.streams.push_back(*pat);
      }
      c.tenancy.tenants.push_back(std::move(rule));
    }
  }
  QOCNET_TRY(str("tcp", &c.tcp));
  QOCNET_TRY(str("metrics", &c.metrics));
  QOCNET_TRY(str("health", &c.health));
  QOCNET_TRY(str("log_level", &c.log_level));
  QOCNET_TRY(str("state_file", &c.state_file));
  if (root["keep_datapath"]) {
    QOCNET_ASSIGN(v, r.boolean(root["keep_datapath"], "keep_datapath"));
    c.keep_datapath = v;
  }
  if (auto t = root["tls"]) {
    QOCNET_TRY(r.mapping(t, "tls", {"cert", "key", "ca"}));
    if (t["cert"]) { QOCNET_ASSIGN(v, r.text(t["cert"], "tls.cert")); c.tls_cert = v; }
    if (t["key"]) { QOCNET_ASSIGN(v, r.text(t["key"], "tls.key")); c.tls_key = v; }
    if (t["ca"]) { QOCNET_ASSIGN(v, r.text(t["ca"], "tls.ca")); c.tls_ca = v; }
  }
  if (auto t = root["sensor_tls"]) {
    QOCNET_TRY(r.mapping(t, "sensor_tls", {"cert", "key", "ca"}));
    auto& tls = c.controller.sensor_tls;
    if (t["cert"]) { QOCNET_ASSIGN(v, r.text(t["cert"], "sensor_tls.cert")); tls.cert = v; }
    if (t["key"]) { QOCNET_ASSIGN(v, r.text(t["key"], "sensor_tls.key")); tls.key = v; }
    if (t["ca"]) { QOCNET_ASSIGN(v, r.text(t["ca"], "sensor_tls.ca")); tls.ca = v; }
  }
  if (auto rl = root["rate_limit"]) {
    QOCNET_TRY(r.mapping(rl, "rate_limit", {"per_second", "burst"}));
    if (rl["per_second"]) { QOCNET_ASSIGN(v, r.number(rl["per_second"], "rate_limit.per_second")); c.rate = v; }
    if (rl["burst"]) { QOCNET_ASSIGN(v, r.number(rl["burst"], "rate_limit.burst")); c.burst = v; }
  }
  auto& ctl = c.controller;
  if (root["pin_dir"]) { QOCNET_ASSIGN(v, r.text(root["pin_dir"], "pin_dir")); ctl.edge.pin_dir = v; }
  if (root["bpf_src_dir"]) { QOCNET_ASSIGN(v, r.text(root["bpf_src_dir"], "bpf_src_dir")); ctl.edge.bpf_src_dir = v; }
  if (auto p = root["ports"]) {
    if (!p.IsSequence()) return r.wrong("ports", p, "a list", "list interface names, e.g. [e0]");
    for (std::size_t i = 0; i < p.size(); ++i) {
      QOCNET_ASSIGN(v, r.interface(p[i], "ports[" + std::to_string(i) + "]"));
      ctl.ports.push_back(v);
    }
  }
  if (auto p = root["pairs"]) {
    if (!p.IsSequence()) return r.wrong("pairs", p, "a list", "list {ingress: IF, egress: IF}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "pairs[" + std::to_string(i) + "]";
      QOCNET_TRY(r.mapping(p[i], k, {"ingress", "egress"}));
      if (!p[i]["ingress"]) return r.missing(k + ".ingress");
      if (!p[i]["egress"]) return r.missing(k + ".egress");
      QOCNET_ASSIGN(in, r.interface(p[i]["ingress"], k + ".ingress"));
      QOCNET_ASSIGN(out, r.interface(p[i]["egress"], k + ".egress"));
      ctl.pairs.push_back(PortPair{in, out});
    }
  }
  if (auto p = root["processes"]) {
    if (!p.IsSequence()) return r.wrong("processes", p, "a list", "list {name, port, mac, ip, udp_port}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "processes[" + std::to_string(i) + "]";
      QOCNET_TRY(r.mapping(p[i], k, {"name", "port", "mac", "ip", "udp_port"}));
      for (const char* need : {"name", "port", "mac"})
        if (!p[i][need]) return r.missing(k + "." + need);
      v1::ProcessSpec m;
      QOCNET_ASSIGN(name, r.text(p[i]["name"], k + ".name"));
      QOCNET_ASSIGN(port, r.text(p[i]["port"], k + ".port"));
      QOCNET_ASSIGN(mac, r.text(p[i]["mac"], k + ".mac"));
      m.set_name(name);
      m.set_port(port);
      m.set_mac(mac);
      if (p[i]["ip"]) { QOCNET_ASSIGN(ip, r.text(p[i]["ip"], k + ".ip")); m.set_ip(ip); }
      if (p[i]["udp_port"]) {
        QOCNET_ASSIGN(up, r.integer(p[i]["udp_port"], k + ".udp_port", 0, 65535));
        m.set_udp_port(static_cast<std::uint32_t>(up));
      }
      auto spec = from_proto(m, k);  // the same checks and canonical form as over gRPC
      if (!spec) return std::move(spec).error().context(r.origin());
      ctl.processes.push_back(*spec);
    }
  }
  if (auto p = root["streams"]) {
    if (!p.IsSequence()) return r.wrong("streams", p, "a list", "list {stream, targets, policies}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "streams[" + std::to_string(i) + "]";
      QOCNET_TRY(r.mapping(p[i], k, {"stream", "targets", "policies"}));
      if (!p[i]["stream"]) return r.missing(k + ".stream");
      StreamConfig s;
      QOCNET_ASSIGN(id, r.stream(p[i]["stream"], k + ".stream"));
      s.stream = id;
      if (p[i]["targets"]) {
        QOCNET_ASSIGN(t, r.texts(p[i]["targets"], k + ".targets"));
        s.targets = t;
      }
      if (auto pol = p[i]["policies"]) {
        if (!pol.IsMap()) return r.wrong(k + ".policies", pol, "a mapping", "write {process: \"uniform(0.1)\"}");
        std::set<std::string> seen;
        for (const auto& kv : pol) {
          if (!kv.first.IsScalar())
            return bad(r.origin(), k + ".policies", std::string("has a key that is ") + shape(kv.first),
                       "name a process");
          const std::string proc = kv.first.Scalar().substr(0, 64);
          if (!seen.insert(proc).second) return bad(r.origin(), k + ".policies." + proc, "appears twice", "");
          QOCNET_ASSIGN(text, r.text(kv.second, k + ".policies." + proc, 256));
          auto parsed = parse_policy(text);
          if (!parsed) return std::move(parsed).error().context(r.origin() + ": " + k + ".policies." + proc);
          s.policies[proc] = *parsed;
        }
      }
      ctl.streams.push_back(s);
    }
  }
  if (auto p = root["sensors"]) {
    if (!p.IsSequence()) return r.wrong("sensors", p, "a list", "list {name, address, streams}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "sensors[" + std::to_string(i) + "]";
      QOCNET_TRY(r.mapping(p[i], k, {"name", "address", "streams"}));
      for (const char* need : {"name", "address", "streams"})
        if (!p[i][need]) return r.missing(k + "." + need);
      SensorConfig s;
      QOCNET_ASSIGN(name, r.text(p[i]["name"], k + ".name", 64));
      QOCNET_ASSIGN(addr, r.text(p[i]["address"], k + ".address", 256));
      QOCNET_ASSIGN(ids, r.streams(p[i]["streams"], k + ".streams"));
      s.name = name;
      s.address = addr;
      s.streams = ids;
      ctl.sensors.push_back(s);
    }
  }
  if (auto t = root["qoc_table"]) {
    QOCNET_ASSIGN(path, r.text(t, "qoc_table"));
    c.qoc_table_file = path;
  }
  if (auto l = root["loop"]) {
    QOCNET_TRY(r.mapping(l, "loop", {"z", "bins", "memory", "climb", "probe_every", "share_slack"}));
    if (l["z"]) { QOCNET_ASSIGN(v, r.number(l["z"], "loop.z")); ctl.loop.z = v; }
    double bins = ctl.loop.bins, memory = ctl.loop.memory, climb = ctl.loop.climb, probe = ctl.loop.probe_every;
    if (l["probe_every"]) { QOCNET_ASSIGN(v, r.number(l["probe_every"], "loop.probe_every")); probe = v; }
    double slack = ctl.loop.share_slack;
    if (l["share_slack"]) { QOCNET_ASSIGN(v, r.number(l["share_slack"], "loop.share_slack")); slack = v; }
    if (l["bins"]) { QOCNET_ASSIGN(v, r.number(l["bins"], "loop.bins")); bins = v; }
    if (l["memory"]) { QOCNET_ASSIGN(v, r.number(l["memory"], "loop.memory")); memory = v; }
    if (l["climb"]) { QOCNET_ASSIGN(v, r.number(l["climb"], "loop.climb")); climb = v; }
    auto whole = [](double v, double lo, double hi) { return v >= lo && v <= hi && v == std::floor(v); };
    if (!(ctl.loop.z >= 0 && ctl.loop.z <= 5) || !whole(bins, 1, 200) || !whole(memory, 1, 1000) ||
        !whole(climb, 1, bins) || !whole(probe, 0, 1000) || !whole(slack, 0, bins))
      return bad(r.origin(), "loop",
                 "z " + std::to_string(ctl.loop.z) + ", bins " + std::to_string(bins) + ", memory " +
                     std::to_string(memory) + ", climb " + std::to_string(climb) + ", probe_every " +
                     std::to_string(probe) + ", share_slack " + std::to_string(slack) + " is out of range",
                        "z in [0, 5] (2.0, the default: the requirement met in about 97 % of windows), bins a whole number in "
                        "[1, 200], memory in [1, 1000], climb in [1, bins], probe_every in [0, 1000] (0: never), share_slack in [0, bins]");
    ctl.loop.bins = static_cast<int>(bins);
    ctl.loop.memory = static_cast<int>(memory);
    ctl.loop.climb = static_cast<int>(climb);
    ctl.loop.probe_every = static_cast<int>(probe);
    ctl.loop.share_slack = static_cast<int>(slack);
  }
  return c;
}

}  // namespace

Result<DaemonConfig> parse_daemon_config(const std::string& yaml, const std::string& origin) {
  try {
    YAML::Node root;
    try {
      root = YAML::Load(yaml);
    } catch (const YAML::Exception& e) {
      return make_error(Errc::invalid_argument, origin + ": not YAML: " + e.what(), "fix the syntax at that line");
    }
    return parse(root, Reader(origin));
  } catch (const std::exception& e) {
    // The reader checks every shape first; this is the last line of defence.
    return make_error(Errc::invalid_argument, origin + ": cannot be read: " + e.what(),
                      "see docs/SERVICE.md, Configuration");
  }
}

Result<DaemonConfig> load_daemon_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    return make_error(Errc::not_found, "cannot read config file " + file.string(),
                      "check the path given to --config");
  std::stringstream ss;
  ss << in.rdbuf();
  QOCNET_ASSIGN(c, parse_daemon_config(ss.str(), file.string()));
  if (!c.qoc_table_file.empty()) {
    auto table = QocTable::load(c.qoc_table_file);
    if (!table) return std::move(table).error().context(file.string() + ": qoc_table");
    c.controller.table = *table;
  }
  return c;
}

bool is_loopback_host(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host[0] == '[') host = host.substr(1, host.find(']') - 1);
  else if (auto colon = host.rfind(':'); colon != std::string::npos) host = host.substr(0, colon);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status validate(const DaemonConfig& c) {
  if (c.listen.rfind("unix:", 0) != 0 || c.listen.size() <= 5)
    return make_error(Errc::invalid_argument, "listen '" + c.listen + "' is not a unix: address",
                      "give the local socket as unix:/PATH (TCP goes in --tcp)");
  if (!c.process_listen.empty()) {
    if (c.process_listen.rfind("unix:", 0) != 0 || c.process_listen.size() <= 5)
      return make_error(Errc::invalid_argument, "process_listen '" + c.process_listen + "' is not a unix: address",
                        "give the process socket as unix:/PATH, or none");
    if (c.process_listen == c.listen)
      return make_error(Errc::invalid_argument, "process_listen and listen are both " + c.listen,
                        "the process socket needs a path of its own (e.g. unix:/run/qocnet/process/qocnet.sock)");
  }
  if (!c.tcp.empty()) {
    if (c.tcp.rfind(':') == std::string::npos)
      return make_error(Errc::invalid_argument, "tcp '" + c.tcp + "' has no port", "write it as HOST:PORT");
    if (c.tls_cert.empty() || c.tls_key.empty())
      return make_error(Errc::invalid_argument, "tcp " + c.tcp + " needs TLS: tls.cert and tls.key are unset",
                        "give --tls-cert and --tls-key (PEM files)");
    if (!is_loopback_host(c.tcp) && c.tls_ca.empty())
      return make_error(Errc::invalid_argument,
                        "tcp " + c.tcp + " is not a loopback address and tls.ca is unset (mutual TLS is required)",
                        "give --tls-ca with the CA that signs client certificates, or listen on 127.0.0.1");
    for (const auto& f : {c.tls_cert, c.tls_key, c.tls_ca})
      if (!f.empty() && !std::ifstream(f))
        return make_error(Errc::not_found, "cannot read TLS file " + f, "check the path and its permissions");
  }
  const auto& st = c.controller.sensor_tls;
  if (st.cert.empty() != st.key.empty())
    return make_error(Errc::invalid_argument, "sensor_tls needs both cert and key (or neither)",
                      "give --sensor-tls-cert and --sensor-tls-key together");
  if (!st.cert.empty() && st.ca.empty())
    return make_error(Errc::invalid_argument, "sensor_tls.cert is set but sensor_tls.ca is not",
                      "give --sensor-tls-ca, the CA that signed the sensor agents' server certificates");
  for (const auto& f : {st.ca, st.cert, st.key})
    if (!f.empty() && !std::ifstream(f))
      return make_error(Errc::not_found, "cannot read TLS file " + f, "check the path and its permissions");
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.count(c.log_level))
    return make_error(Errc::invalid_argument, "log_level '" + c.log_level.substr(0, 64) + "' is not a log level",
                      "give one of trace, debug, info, warn, error, critical, off");
  if (!(c.rate > 0) || !(c.burst >= 1))
    return make_error(Errc::invalid_argument, "rate_limit must have per_second > 0 and burst >= 1",
                      "e.g. rate_limit: {per_second: 50, burst: 100}");
  return {};
}

}  // namespace qocnet::grpc_api
