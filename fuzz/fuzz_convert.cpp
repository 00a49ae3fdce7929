// SPDX-License-Identifier: Apache-2.0
// fuzz_convert: qocnetd's request checks on arbitrary bytes. The first byte
// picks a request message type, the rest is parsed with ParseFromArray; a
// message that parses goes through what every handler runs first
// (check_request: lengths and list sizes) and then the from_proto
// conversions of its fields. Nothing may crash, throw or leak, and:
//   - a message check_request accepts has no text field over 64 KiB;
//   - every StreamId from_proto accepts is canonical (its key maps back to
//     it, and parsing its text again gives the same) with ports in 1..65535;
//   - every ProcessSpec accepted has a lower-case 17-byte MAC, a name of at
//     most 31 bytes and an interface name of at most 15;
//   - every Policy accepted validates.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "convert.hpp"
#include "qocnet/v1/control.pb.h"
#include "qocnet/v1/qoc.pb.h"
#include "qocnet/v1/sensor.pb.h"

namespace {

using namespace qocnet;
using namespace qocnet::grpc_api;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_convert: promise broken: %s (%s)\n", what, detail.c_str());
  std::abort();
}

void stream(const v1::StreamId& m) {
  auto id = from_proto(m, "stream");
  if (!id) return;
  if (id->source_port == 0 || id->destination_port == 0) fail("zero port accepted", to_string(*id));
  auto key = stream_key(*id);
  if (!key || stream_id_of(*key).source != id->source) fail("stream not canonical", to_string(*id));
  auto again = parse_stream_id(to_string(*id));
  if (!again || again->source != id->source) fail("stream text does not parse back", to_string(*id));
}

void process(const v1::ProcessSpec& m) {
  auto p = from_proto(m, "process");
  if (!p) return;
  if (p->mac.size() != 17) fail("MAC not canonical", p->mac);
  for (char c : p->mac)
    if (c >= 'A' && c <= 'F') fail("MAC not lower case", p->mac);
  if (p->name.size() > kMaxProcessName || p->port.size() > kMaxInterfaceName) fail("name too long", p->name);
}

void policy(const v1::Policy& m) {
  auto p = from_proto(m, "policy");
  if (p && !validate(*p)) fail("accepted policy does not validate", to_string(*p));
}

template <class M, class F>
void run(const std::uint8_t* data, std::size_t size, F&& convert) {
  M m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  if (!check_request(m)) return;
  convert(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > (1 << 20)) return 0;
  const std::uint8_t which = data[0];
  ++data;
  --size;
  switch (which % 12) {
    case 0: run<v1::RegisterProcessRequest>(data, size, [](const auto& m) {
        (void)check_process_name(m.name(), "name");
        (void)check_interface_name(m.interface(), "interface");
        for (const auto& s : m.streams()) stream(s);
      });
      break;
    case 1: run<v1::ReportRequirementRequest>(data, size, [](const auto& m) { stream(m.stream()); }); break;
    case 2: run<v1::ReportMeasuredQocRequest>(data, size, [](const auto& m) { stream(m.stream()); }); break;
    case 3: run<v1::SetPolicyRequest>(data, size, [](const auto& m) {
        stream(m.stream());
        policy(m.policy());
      });
      break;
    case 4: run<v1::SetCloneTargetsRequest>(data, size, [](const auto& m) { stream(m.stream()); }); break;
    case 5: run<v1::AddProcessRequest>(data, size, [](const auto& m) { process(m.process()); }); break;
    case 6: run<v1::AddSensorRequest>(data, size, [](const auto& m) {
        for (const auto& s : m.sensor().streams()) stream(s);
      });
      break;
    case 7: run<v1::SetQocTableRequest>(data, size, [](const auto& m) {
        if (m.has_table()) (void)from_proto(m.table(), "table");
      });
      break;
    case 8: run<v1::SetPortPairRequest>(data, size, [](const auto& m) { (void)from_proto(m.pair(), "pair"); }); break;
    case 9: run<v1::SetStreamPolicyRequest>(data, size, [](const auto& m) {
        stream(m.stream());
        policy(m.policy());
      });
      break;
    case 10: run<v1::SetRequirementRequest>(data, size, [](const auto& m) { stream(m.stream()); }); break;
    default: run<v1::GetTargetStatsRequest>(data, size, [](const auto& m) { stream(m.stream()); }); break;
  }
  return 0;
}
