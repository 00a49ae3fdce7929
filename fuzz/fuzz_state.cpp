// SPDX-License-Identifier: Apache-2.0
// fuzz_state: the pinned edge's state file parser (detail::parse_state,
// lib/state_file.hpp), what Edge::create reads when it re-adopts a pinned
// datapath. Each input is parsed as it is (so the seal is exercised) and
// sealed with its own checksum (so the YAML checks behind the seal are
// reached). Findings, besides crashes, leaks and undefined behaviour:
//   - an error that is not failed_precondition, or has no message or fix;
//   - an accepted state that breaks the datapath's bounds (more than
//     QOC_MAX_PROCS processes, QOC_MAX_TARGETS targets a stream,
//     kMaxStateStreams streams, a slot out of range or used twice, a drop
//     rate outside [0, 1], a target naming no process);
//   - an accepted state that does not survive format_state -> parse_state
//     unchanged: every field equal (doubles bit for bit, names byte for
//     byte), and the text formatted again the same.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "qoc_consts.h"
#include "state_file.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_state: promise broken: %s\n", what);
  std::abort();
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same(const qocnet::detail::SavedState& a, const qocnet::detail::SavedState& b) {
  if (a.pin_dir != b.pin_dir || a.netns_inode != b.netns_inode || a.source_hash != b.source_hash ||
      a.ports.size() != b.ports.size() || a.processes.size() != b.processes.size() ||
      a.streams.size() != b.streams.size())
    return false;
  for (std::size_t i = 0; i < a.ports.size(); ++i)
    if (a.ports[i].name != b.ports[i].name || a.ports[i].ifindex != b.ports[i].ifindex ||
        a.ports[i].created_clsact != b.ports[i].created_clsact)
      return false;
  for (std::size_t i = 0; i < a.processes.size(); ++i) {
    const auto &x = a.processes[i], &y = b.processes[i];
    if (x.spec.name != y.spec.name || x.spec.port != y.spec.port || x.spec.mac != y.spec.mac ||
        x.spec.ip != y.spec.ip || x.spec.udp_port != y.spec.udp_port || x.slot != y.slot ||
        x.ifindex != y.ifindex)
      return false;
  }
  for (std::size_t i = 0; i < a.streams.size(); ++i) {
    const auto &x = a.streams[i], &y = b.streams[i];
    if (x.id.source != y.id.source || x.id.source_port != y.id.source_port ||
        x.id.destination_port != y.id.destination_port || x.targets.size() != y.targets.size())
      return false;
    for (std::size_t j = 0; j < x.targets.size(); ++j)
      if (x.targets[j].process != y.targets[j].process || x.targets[j].policy.kind != y.targets[j].policy.kind ||
          !same_bits(x.targets[j].policy.drop, y.targets[j].policy.drop))
        return false;
  }
  // The QoC table is read by QocTable::parse_yaml (fuzz_qoc_table); here
  // its values, which the state file writes.
  const auto &ta = a.qoc_table, &tb = b.qoc_table;
  if (ta.metric() != tb.metric() || !same_bits(ta.lossless(), tb.lossless()) ||
      ta.curves().size() != tb.curves().size())
    return false;
  for (const auto& [kind, c] : ta.curves()) {
    auto it = tb.curves().find(kind);
    if (it == tb.curves().end() || c.loss.size() != it->second.loss.size() || c.qoc.size() != it->second.qoc.size())
      return false;
    for (std::size_t k = 0; k < c.loss.size(); ++k)
      if (!same_bits(c.loss[k], it->second.loss[k]) || !same_bits(c.qoc[k], it->second.qoc[k])) return false;
  }
  return true;
}

void check(const std::string& text) {
  auto r = qocnet::detail::parse_state(text);
  if (!r) {
    if (r.error().code != qocnet::Errc::failed_precondition) fail("an error that is not failed_precondition");
    if (r.error().message.empty() || r.error().fix.empty()) fail("an error without a message or fix");
    return;
  }
  const auto& s = *r;
  if (s.processes.size() > QOC_MAX_PROCS) fail("too many processes accepted");
  if (s.streams.size() > qocnet::detail::kMaxStateStreams) fail("too many streams accepted");
  std::set<std::string> names;
  std::set<std::uint32_t> slots;
  for (const auto& p : s.processes) {
    if (p.slot >= QOC_MAX_PROCS || !slots.insert(p.slot).second) fail("a bad slot accepted");
    names.insert(p.spec.name);
  }
  for (const auto& st : s.streams) {
    if (st.targets.empty() || st.targets.size() > QOC_MAX_TARGETS) fail("a bad target count accepted");
    for (const auto& t : st.targets) {
      if (!names.count(t.process)) fail("a target naming no process accepted");
      if (!(t.policy.drop >= 0.0 && t.policy.drop <= 1.0)) fail("a drop rate outside [0, 1] accepted");
    }
  }
  const std::string again = qocnet::detail::format_state(s);
  auto r2 = qocnet::detail::parse_state(again);
  if (!r2) fail("a formatted state does not parse");
  if (!same(s, *r2)) fail("format_state -> parse_state changed the state");
  if (qocnet::detail::format_state(*r2) != again) fail("format_state(parse_state(x)) is not stable");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  check(text);
  check(qocnet::detail::seal_state(text));
  return 0;
}
