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
//     unchanged.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "qoc_consts.h"
#include "state_file.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_state: promise broken: %s\n", what);
  std::abort();
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
