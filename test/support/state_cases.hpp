// SPDX-License-Identifier: Apache-2.0
// Corrupt state files of a pinned edge (lib/state_file.hpp), made from a good
// one: too many entries, values out of range, wrong YAML shapes, unknown or
// missing keys, and (unsealed) files cut short or changed by hand. Every one
// must be refused with failed_precondition.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "check.hpp"
#include "qoc_consts.h"
#include "state_file.hpp"

namespace qocnet::test {

struct StateCase {
  std::string name;
  std::string text;   // the whole file
  std::string why;    // a part of the error message it must give
};

inline std::string state_body(const std::string& sealed) {
  const auto line = sealed.rfind('\n', sealed.size() - 2);
  return sealed.substr(0, line + 1);
}

// `good` is a sealed state file with at least one port, one process and one
// stream, one of whose targets has drop rate 0.5.
inline std::vector<StateCase> corrupt_states(const std::string& good) {
  std::vector<StateCase> out;
  const std::string body = state_body(good);
  auto parsed = detail::parse_state(good);
  REQUIRE_OK(parsed);
  const detail::SavedState base = *parsed;
  REQUIRE_FALSE(base.ports.empty());
  REQUIRE_FALSE(base.processes.empty());
  REQUIRE_FALSE(base.streams.empty());

  // Sealed files whose content is wrong.
  auto with = [&](const std::string& name, const std::string& why,
                  const std::function<void(detail::SavedState&)>& f) {
    detail::SavedState s = base;
    f(s);
    out.push_back({name, detail::format_state(s), why});
  };
  with(std::to_string(2 * QOC_MAX_TARGETS + 1) + " clone targets on a stream",
       "the datapath holds " + std::to_string(QOC_MAX_TARGETS), [](auto& s) {
    s.processes.clear();
    s.streams[0].targets.clear();
    for (std::uint32_t i = 0; i < 2 * QOC_MAX_TARGETS + 1; ++i) {
      const std::string n = "p" + std::to_string(i);
      s.processes.push_back({{n, "e1", "02:00:00:00:00:01", "", 0}, i, 3});
      s.streams[0].targets.push_back({n, Policy::keep()});
    }
  });
  with(std::to_string(QOC_MAX_TARGETS + 1) + " clone targets on a stream",
       "the datapath holds " + std::to_string(QOC_MAX_TARGETS), [](auto& s) {
    s.processes.clear();
    s.streams[0].targets.clear();
    for (std::uint32_t i = 0; i < QOC_MAX_TARGETS + 1; ++i) {
      const std::string n = "p" + std::to_string(i);
      s.processes.push_back({{n, "e1", "02:00:00:00:00:01", "", 0}, i, 3});
      s.streams[0].targets.push_back({n, Policy::keep()});
    }
  });
  with(std::to_string(QOC_MAX_PROCS + 1) + " processes", "at most " + std::to_string(QOC_MAX_PROCS),
       [](auto& s) {
    s.streams.clear();
    s.processes.clear();
    for (std::uint32_t i = 0; i < QOC_MAX_PROCS + 1; ++i)
      s.processes.push_back({{"p" + std::to_string(i), "e1", "02:00:00:00:00:01", "", 0}, i, 3});
  });
  with("drop rate 5.0", "outside [0, 1]",
       [](auto& s) { s.streams[0].targets[0].policy = Policy::differential(5.0); });
  with("negative drop rate", "outside [0, 1]",
       [](auto& s) { s.streams[0].targets[0].policy = Policy::uniform(-0.25); });
  with("drop rate NaN", "not a number", [](auto& s) {
    s.streams[0].targets[0].policy = Policy::uniform(std::numeric_limits<double>::quiet_NaN());
  });
  with("keep with a drop rate", "keep drops nothing",
       [](auto& s) { s.streams[0].targets[0].policy = Policy{PolicyKind::keep, 0.25}; });
  with("slot " + std::to_string(QOC_MAX_PROCS),
       "slot " + std::to_string(QOC_MAX_PROCS) + " is above " + std::to_string(QOC_MAX_PROCS - 1),
       [](auto& s) { s.processes[0].slot = QOC_MAX_PROCS; });
  with("slot used twice", "two processes", [](auto& s) {
    s.processes.push_back(s.processes[0]);
    s.processes.back().spec.name = "twin";
  });
  with("process listed twice", "twice", [](auto& s) { s.processes.push_back(s.processes[0]); });
  with("process without a name", "needs a name", [](auto& s) {
    s.streams.clear();
    s.processes[0].spec.name = "";
  });
  with("process MAC not a MAC", "not a MAC", [](auto& s) { s.processes[0].spec.mac = "02:00:00:00:00"; });
  with("process IP not IPv4", "not an IPv4", [](auto& s) { s.processes[0].spec.ip = "10.0.0.300"; });
  with("process port name too long", "not a valid interface name",
       [](auto& s) { s.processes[0].spec.port = "a-name-longer-than-15"; });
  with("port name with a slash", "not a valid interface name", [](auto& s) { s.ports[0].name = "e0/x"; });
  with("port ifindex 0", "ifindex is 0", [](auto& s) { s.ports[0].ifindex = 0; });
  with("port listed twice", "twice", [](auto& s) { s.ports.push_back(s.ports[0]); });
  with("stream source not an address", "not an IPv4 or IPv6", [](auto& s) { s.streams[0].id.source = "sensor"; });
  with("stream port 0", "zero port", [](auto& s) { s.streams[0].id.source_port = 0; });
  with("stream listed twice", "twice", [](auto& s) { s.streams.push_back(s.streams[0]); });
  with("stream without targets", "no targets", [](auto& s) { s.streams[0].targets.clear(); });
  with("target names an unknown process", "unknown process",
       [](auto& s) { s.streams[0].targets[0].process = "ghost"; });
  with("target named twice", "twice", [](auto& s) {
    s.streams[0].targets.push_back(s.streams[0].targets[0]);
  });
  with("relative pin_dir", "not absolute", [](auto& s) { s.pin_dir = "pins"; });

  // Sealed files whose YAML is wrong: edits of the tree or of the text,
  // sealed again.
  auto tree = [&](const std::string& name, const std::string& why,
                  const std::function<void(YAML::Node&)>& f) {
    YAML::Node root = YAML::Load(body);
    f(root);
    out.push_back({name, detail::seal_state(YAML::Dump(root) + "\n"), why});
  };
  tree("udp_port 70000", "above 65535", [](auto& r) { r["processes"][0]["udp_port"] = 70000; });
  tree("udp_port negative", "not a whole number", [](auto& r) { r["processes"][0]["udp_port"] = -1; });
  tree("udp_port a word", "not a whole number", [](auto& r) { r["processes"][0]["udp_port"] = "many"; });
  tree("udp_port a float", "not a whole number", [](auto& r) { r["processes"][0]["udp_port"] = 6000.5; });
  tree("ifindex beyond 64 bits", "not a whole number",
       [](auto& r) { r["ports"][0]["ifindex"] = "123456789012345678901234"; });
  tree("source_port 65536", "above 65535", [](auto& r) { r["streams"][0]["source_port"] = 65536; });
  tree("slot missing", "lacks 'slot'", [](auto& r) { r["processes"][0].remove("slot"); });
  tree("slot a list", "not a single value", [](auto& r) {
    YAML::Node l;
    l.push_back(0);
    r["processes"][0]["slot"] = l;
  });
  tree("slot null", "missing", [](auto& r) { r["processes"][0]["slot"] = YAML::Node(YAML::NodeType::Null); });
  tree("unknown key in a process", "unknown key 'color'", [](auto& r) { r["processes"][0]["color"] = "red"; });
  tree("unknown top-level key", "unknown key 'extra'", [](auto& r) { r["extra"] = 1; });
  tree("format 1", "format 1", [](auto& r) { r["format"] = 1; });
  tree("format 3", "format 3", [](auto& r) { r["format"] = 3; });
  tree("format missing", "lacks 'format'", [](auto& r) { r.remove("format"); });
  tree("qoc_table missing", "lacks 'qoc_table'", [](auto& r) { r.remove("qoc_table"); });
  tree("created_clsact not a bool", "not true or false",
       [](auto& r) { r["ports"][0]["created_clsact"] = "maybe"; });
  tree("policy kind unknown", "policy", [](auto& r) { r["streams"][0]["targets"][0]["policy"] = "bogus"; });
  tree("drop a word", "not a number", [](auto& r) { r["streams"][0]["targets"][0]["drop"] = "lots"; });
  tree("drop infinite", "not a number", [](auto& r) { r["streams"][0]["targets"][0]["drop"] = "1e999"; });
  tree("processes a map", "processes is not a list", [](auto& r) {
    YAML::Node m;
    m["a"] = 1;
    r["processes"] = m;
  });
  tree("ports a scalar", "ports is not a list", [](auto& r) { r["ports"] = 3; });
  tree("ports entry a list", "ports[0] is not a map", [](auto& r) {
    YAML::Node l;
    l.push_back(1);
    r["ports"][0] = l;
  });
  tree("streams entry a scalar", "streams[0] is not a map", [](auto& r) { r["streams"][0] = "s"; });
  tree("targets a scalar", "targets is not a list", [](auto& r) { r["streams"][0]["targets"] = "none"; });
  tree("qoc_table a list", "qoc_table is not a map", [](auto& r) {
    YAML::Node l;
    l.push_back(1);
    r["qoc_table"] = l;
  });
  tree("qoc_table not monotone", "qoc_table",
       [](auto& r) { r["qoc_table"]["policies"]["uniform"]["qoc"][1] = 0.99; });
  tree("qoc_table loss above 1", "qoc_table",
       [](auto& r) { r["qoc_table"]["policies"]["uniform"]["loss"][3] = 1.5; });
  tree("qoc_table policy unknown", "qoc_table", [](auto& r) {
    r["qoc_table"]["policies"]["bogus"] = r["qoc_table"]["policies"]["uniform"];
  });
  auto edit = [&](const std::string& name, const std::string& why, const std::string& from,
                  const std::string& to) {
    const auto at = body.find(from);
    INFO("case " << name << ": '" << from << "' in\n" << body);
    REQUIRE(at != std::string::npos);
    std::string b = body;
    b.replace(at, from.size(), to);
    out.push_back({name, detail::seal_state(b), why});
  };
  edit("key twice", "twice", "ports:", "format: 2\nports:");
  edit("broken YAML", "not valid YAML", "ports:\n", "ports: {\n");
  edit("NUL byte", "NUL", "ports:", std::string("po\0rts:", 7));
  out.push_back({"empty body, sealed", detail::seal_state(""), "not a map"});
  out.push_back({"a list, sealed", detail::seal_state("- 1\n- 2\n"), "not a map"});

  // Unsealed: cut short anywhere, or changed without the seal.
  out.push_back({"body without its checksum line (format 1 style)", body, "incomplete"});
  out.push_back({"empty file", "", "incomplete"});
  std::string changed = good;
  changed.replace(changed.find("drop: 0.5"), 9, "drop: 0.9");
  out.push_back({"changed by hand (drop 0.5 -> 0.9)", changed, "checksum"});
  std::string bad_sum = good;
  bad_sum[bad_sum.size() - 2] = bad_sum[bad_sum.size() - 2] == '0' ? '1' : '0';
  out.push_back({"checksum changed", bad_sum, "checksum"});
  // Cut at every section boundary (the line before each top-level key) and
  // mid-line in each section.
  for (std::size_t at = good.find('\n'); at != std::string::npos && at + 1 < good.size();
       at = good.find('\n', at + 1)) {
    const char next = good[at + 1];
    if (next != ' ' && next != '#')
      out.push_back({"cut before '" + good.substr(at + 1, good.find_first_of(":\n", at + 1) - at - 1) + "'",
                     good.substr(0, at + 1), "incomplete"});
    else if (next == ' ')
      out.push_back({"cut mid-line at byte " + std::to_string(at + 8), good.substr(0, at + 8), "incomplete"});
  }
  return out;
}

}  // namespace qocnet::test
