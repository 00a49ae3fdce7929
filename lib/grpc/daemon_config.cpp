#include "daemon_config.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace qocnet::grpc_api {

namespace {

Error bad(const std::string& origin, const std::string& key, const std::string& problem,
          const std::string& fix) {
  return make_error(Errc::invalid_argument, origin + ": " + key + ": " + problem, fix);
}

Status known_keys(const YAML::Node& node, const std::set<std::string>& keys, const std::string& origin,
                  const std::string& where) {
  if (!node.IsMap()) return bad(origin, where.empty() ? "top level" : where, "is not a mapping", "write key: value lines");
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (!keys.count(key)) {
      std::string list;
      for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
      return bad(origin, where.empty() ? key : where + "." + key, "is not a known key", "known keys: " + list);
    }
  }
  return {};
}

template <class T>
Result<T> get(const YAML::Node& n, const std::string& origin, const std::string& key) {
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    return bad(origin, key, "has the wrong type", "see docs/SERVICE.md for the key's type");
  }
}

Result<StreamId> stream_at(const YAML::Node& n, const std::string& origin, const std::string& key) {
  QOCNET_ASSIGN(text, get<std::string>(n, origin, key));
  auto id = parse_stream_id(text);
  if (!id) return std::move(id).error().context(origin + ": " + key);
  return id;
}

Result<std::vector<StreamId>> streams_at(const YAML::Node& n, const std::string& origin, const std::string& key) {
  if (!n.IsSequence()) return bad(origin, key, "is not a list", "list streams as SRC:SPORT->:DPORT");
  std::vector<StreamId> out;
  for (std::size_t i = 0; i < n.size(); ++i) {
    QOCNET_ASSIGN(id, stream_at(n[i], origin, key + "[" + std::to_string(i) + "]"));
    out.push_back(id);
  }
  return out;
}

}  // namespace

Result<DaemonConfig> parse_daemon_config(const std::string& yaml, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return make_error(Errc::invalid_argument, origin + ": not YAML: " + e.what(), "fix the syntax at that line");
  }
  DaemonConfig c;
  if (root.IsNull()) return c;
  QOCNET_TRY(known_keys(root,
                        {"listen", "tcp", "tls", "metrics", "keep_datapath", "rate_limit", "log_level",
                         "pin_dir", "bpf_src_dir", "ports", "pairs", "processes", "streams", "sensors",
                         "qoc_table", "loop"},
                        origin, ""));
  auto str = [&](const char* key, std::string* out) -> Status {
    if (!root[key]) return {};
    QOCNET_ASSIGN(v, get<std::string>(root[key], origin, key));
    *out = v;
    return {};
  };
  QOCNET_TRY(str("listen", &c.listen));
  QOCNET_TRY(str("tcp", &c.tcp));
  QOCNET_TRY(str("metrics", &c.metrics));
  QOCNET_TRY(str("log_level", &c.log_level));
  if (root["keep_datapath"]) {
    QOCNET_ASSIGN(v, get<bool>(root["keep_datapath"], origin, "keep_datapath"));
    c.keep_datapath = v;
  }
  if (auto t = root["tls"]) {
    QOCNET_TRY(known_keys(t, {"cert", "key", "ca"}, origin, "tls"));
    if (t["cert"]) { QOCNET_ASSIGN(v, get<std::string>(t["cert"], origin, "tls.cert")); c.tls_cert = v; }
    if (t["key"]) { QOCNET_ASSIGN(v, get<std::string>(t["key"], origin, "tls.key")); c.tls_key = v; }
    if (t["ca"]) { QOCNET_ASSIGN(v, get<std::string>(t["ca"], origin, "tls.ca")); c.tls_ca = v; }
  }
  if (auto r = root["rate_limit"]) {
    QOCNET_TRY(known_keys(r, {"per_second", "burst"}, origin, "rate_limit"));
    if (r["per_second"]) { QOCNET_ASSIGN(v, get<double>(r["per_second"], origin, "rate_limit.per_second")); c.rate = v; }
    if (r["burst"]) { QOCNET_ASSIGN(v, get<double>(r["burst"], origin, "rate_limit.burst")); c.burst = v; }
  }
  auto& ctl = c.controller;
  if (root["pin_dir"]) { QOCNET_ASSIGN(v, get<std::string>(root["pin_dir"], origin, "pin_dir")); ctl.edge.pin_dir = v; }
  if (root["bpf_src_dir"]) {
    QOCNET_ASSIGN(v, get<std::string>(root["bpf_src_dir"], origin, "bpf_src_dir"));
    ctl.edge.bpf_src_dir = v;
  }
  if (auto p = root["ports"]) {
    QOCNET_ASSIGN(v, get<std::vector<std::string>>(p, origin, "ports"));
    ctl.ports = v;
  }
  if (auto p = root["pairs"]) {
    if (!p.IsSequence()) return bad(origin, "pairs", "is not a list", "list {ingress: IF, egress: IF}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "pairs[" + std::to_string(i) + "]";
      QOCNET_TRY(known_keys(p[i], {"ingress", "egress"}, origin, k));
      QOCNET_ASSIGN(in, get<std::string>(p[i]["ingress"], origin, k + ".ingress"));
      QOCNET_ASSIGN(out, get<std::string>(p[i]["egress"], origin, k + ".egress"));
      ctl.pairs.push_back(PortPair{in, out});
    }
  }
  if (auto p = root["processes"]) {
    if (!p.IsSequence()) return bad(origin, "processes", "is not a list", "list {name, port, mac, ip, udp_port}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "processes[" + std::to_string(i) + "]";
      QOCNET_TRY(known_keys(p[i], {"name", "port", "mac", "ip", "udp_port"}, origin, k));
      ProcessSpec s;
      QOCNET_ASSIGN(name, get<std::string>(p[i]["name"], origin, k + ".name"));
      QOCNET_ASSIGN(port, get<std::string>(p[i]["port"], origin, k + ".port"));
      QOCNET_ASSIGN(mac, get<std::string>(p[i]["mac"], origin, k + ".mac"));
      s.name = name;
      s.port = port;
      s.mac = mac;
      if (p[i]["ip"]) { QOCNET_ASSIGN(ip, get<std::string>(p[i]["ip"], origin, k + ".ip")); s.ip = ip; }
      if (p[i]["udp_port"]) {
        QOCNET_ASSIGN(up, get<std::uint16_t>(p[i]["udp_port"], origin, k + ".udp_port"));
        s.udp_port = up;
      }
      ctl.processes.push_back(s);
    }
  }
  if (auto p = root["streams"]) {
    if (!p.IsSequence()) return bad(origin, "streams", "is not a list", "list {stream, targets, policies}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "streams[" + std::to_string(i) + "]";
      QOCNET_TRY(known_keys(p[i], {"stream", "targets", "policies"}, origin, k));
      StreamConfig s;
      QOCNET_ASSIGN(id, stream_at(p[i]["stream"], origin, k + ".stream"));
      s.stream = id;
      if (p[i]["targets"]) {
        QOCNET_ASSIGN(t, get<std::vector<std::string>>(p[i]["targets"], origin, k + ".targets"));
        s.targets = t;
      }
      if (auto pol = p[i]["policies"]) {
        using PolicyMap = std::map<std::string, std::string>;
        QOCNET_ASSIGN(m, get<PolicyMap>(pol, origin, k + ".policies"));
        for (const auto& [proc, text] : m) {
          auto parsed = parse_policy(text);
          if (!parsed) return std::move(parsed).error().context(origin + ": " + k + ".policies." + proc);
          s.policies[proc] = *parsed;
        }
      }
      ctl.streams.push_back(s);
    }
  }
  if (auto p = root["sensors"]) {
    if (!p.IsSequence()) return bad(origin, "sensors", "is not a list", "list {name, address, streams}");
    for (std::size_t i = 0; i < p.size(); ++i) {
      const std::string k = "sensors[" + std::to_string(i) + "]";
      QOCNET_TRY(known_keys(p[i], {"name", "address", "streams"}, origin, k));
      SensorConfig s;
      QOCNET_ASSIGN(name, get<std::string>(p[i]["name"], origin, k + ".name"));
      QOCNET_ASSIGN(addr, get<std::string>(p[i]["address"], origin, k + ".address"));
      QOCNET_ASSIGN(ids, streams_at(p[i]["streams"], origin, k + ".streams"));
      s.name = name;
      s.address = addr;
      s.streams = ids;
      ctl.sensors.push_back(s);
    }
  }
  if (auto t = root["qoc_table"]) {
    QOCNET_ASSIGN(path, get<std::string>(t, origin, "qoc_table"));
    auto table = QocTable::load(path);
    if (!table) return std::move(table).error().context(origin + ": qoc_table");
    ctl.table = *table;
  }
  if (auto l = root["loop"]) {
    QOCNET_TRY(known_keys(l, {"margin", "gain", "floor"}, origin, "loop"));
    if (l["margin"]) { QOCNET_ASSIGN(v, get<double>(l["margin"], origin, "loop.margin")); ctl.loop.margin = v; }
    if (l["gain"]) { QOCNET_ASSIGN(v, get<double>(l["gain"], origin, "loop.gain")); ctl.loop.gain = v; }
    if (l["floor"]) { QOCNET_ASSIGN(v, get<double>(l["floor"], origin, "loop.floor")); ctl.loop.floor = v; }
  }
  return c;
}

Result<DaemonConfig> load_daemon_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    return make_error(Errc::not_found, "cannot read config file " + file.string(),
                      "check the path given to --config");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_daemon_config(ss.str(), file.string());
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
  if (!(c.rate > 0) || !(c.burst >= 1))
    return make_error(Errc::invalid_argument, "rate_limit must have per_second > 0 and burst >= 1",
                      "e.g. rate_limit: {per_second: 50, burst: 100}");
  return {};
}

}  // namespace qocnet::grpc_api
