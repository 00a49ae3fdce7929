// SPDX-License-Identifier: Apache-2.0
// fuzz_config: qocnetd's configuration parser (parse_daemon_config, a pure
// function: text in, Result out, no file read) on arbitrary text. It must
// never throw or crash; a config it accepts must keep its promises, else
// abort (a finding):
//   - every stream is canonical (parse_stream_id of its text gives the same
//     text, and the stream's key maps back to it);
//   - every process passed the gRPC checks (its MAC lower case, 17 bytes);
//   - every number is finite; an error names the origin.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "convert.hpp"
#include "daemon_config.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_config: promise broken: %s (%s)\n", what, detail.c_str());
  std::abort();
}

void check_stream(const qocnet::StreamId& s) {
  using namespace qocnet;
  auto back = parse_stream_id(to_string(s));
  if (!back || back->source != s.source) fail("stream not canonical", to_string(s));
  auto key = grpc_api::stream_key(s);
  if (!key || grpc_api::stream_id_of(*key).source != s.source) fail("stream key does not map back", to_string(s));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace qocnet::grpc_api;
  const std::string text(reinterpret_cast<const char*>(data), size);
  qocnet::Result<DaemonConfig> r = qocnet::make_error(qocnet::Errc::internal, "", "");
  try {
    r = parse_daemon_config(text, "fuzz.yaml");
  } catch (...) {
    fail("parse_daemon_config threw", "");
  }
  if (!r) {
    if (r.error().message.rfind("fuzz.yaml", 0) != 0) fail("error does not name the origin", r.error().message);
    return 0;
  }
  const auto& c = r->controller;
  for (const auto& s : c.streams) check_stream(s.stream);
  for (const auto& s : c.sensors)
    for (const auto& id : s.streams) check_stream(id);
  for (const auto& p : c.processes)
    if (p.mac.size() != 17 || p.name.empty() || p.name.size() > kMaxProcessName) fail("process not checked", p.name);
  for (double v : {r->rate, r->burst, c.loop.z, c.loop.sd_floor, c.loop.sd_prior})
    if (!std::isfinite(v)) fail("non-finite number", std::to_string(v));
  (void)validate(*r);
  return 0;
}
