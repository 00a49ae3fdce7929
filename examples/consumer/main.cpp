// SPDX-License-Identifier: Apache-2.0
// qocnet-consumer: the smallest application of an installed libqocnet. Run in
// the edge's network namespace as root, it attaches qocnet's datapath to the
// interface a sensor's stream arrives on, gives each named process a copy
// (with its own MAC, address and port) under its own policy, waits, and
// prints what each process was delivered, as the kernel counted it.
//
//   qocnet-consumer --port e0 --stream 10.0.0.1:40000->:5000 \
//       --process a,e1,02:00:00:00:00:0a,10.0.1.2,5000,keep \
//       --process b,e2,02:00:00:00:00:0b,10.0.2.2,5000,frame_aware(0.2) \
//       --seconds 10 [--ready FILE]
//
// Output, one line per process: "<name> delivered <datagrams> dropped
// <datagrams> held_until_rap <datagrams>". --ready FILE is created once the
// copies are set up, so a script knows when to start the stream.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/version.hpp"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --port IFACE --stream SRC:SPORT->:DPORT --process NAME,IFACE,MAC,IP,PORT[,POLICY] ... "
               "[--seconds N] [--ready FILE]\n       %s --version\n",
               argv0, argv0);
  return 2;
}

[[noreturn]] void fail(const std::string& what, const qocnet::Error& e) {
  std::fprintf(stderr, "qocnet-consumer: %s: %s\n", what.c_str(), e.to_string().c_str());
  std::exit(1);
}

struct Wanted {
  qocnet::ProcessSpec spec;
  qocnet::Policy policy = qocnet::Policy::keep();
};

// NAME,IFACE,MAC,IP,PORT[,POLICY]: the policy is the rest of the text (it
// may hold a comma, as in frame_aware(0.2,tail)).
bool parse_process(const std::string& text, Wanted& out) {
  std::vector<std::string> parts;
  std::size_t at = 0;
  for (int i = 0; i < 5; ++i) {
    std::size_t comma = text.find(',', at);
    parts.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) {
      at = text.size();
      break;
    }
    at = comma + 1;
  }
  if (parts.size() != 5 || parts[0].empty()) return false;
  out.spec.name = parts[0];
  out.spec.port = parts[1];
  out.spec.mac = parts[2];
  out.spec.ip = parts[3];
  char* end = nullptr;
  const long port = std::strtol(parts[4].c_str(), &end, 10);
  if (parts[4].empty() || *end != '\0' || port < 0 || port > 65535) return false;
  out.spec.udp_port = static_cast<std::uint16_t>(port);
  if (at < text.size()) {
    auto policy = qocnet::parse_policy(text.substr(at));
    if (!policy) fail("--process " + text, policy.error());
    out.policy = *policy;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port, stream_text, ready;
  std::vector<Wanted> wanted;
  double seconds = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--version") {
      std::printf("qocnet-consumer, built with qocnet headers %s, running libqocnet %s (%s)\n",
                  QOCNET_VERSION_STRING, qocnet::version().version, qocnet::version().describe);
      return 0;
    } else if (a == "--port") {
      port = value();
    } else if (a == "--stream") {
      stream_text = value();
    } else if (a == "--seconds") {
      seconds = std::atof(value().c_str());
    } else if (a == "--ready") {
      ready = value();
    } else if (a == "--process") {
      Wanted w;
      const std::string text = value();
      if (!parse_process(text, w)) {
        std::fprintf(stderr, "qocnet-consumer: --process %s: expected NAME,IFACE,MAC,IP,PORT[,POLICY]\n",
                     text.c_str());
        return 2;
      }
      wanted.push_back(w);
    } else {
      return usage(argv[0]);
    }
  }
  if (port.empty() || stream_text.empty() || wanted.empty()) return usage(argv[0]);
  auto stream = qocnet::parse_stream_id(stream_text);
  if (!stream) fail("--stream " + stream_text, stream.error());

  auto edge = qocnet::Edge::create();
  if (!edge) fail("create the edge", edge.error());
  if (auto s = edge->attach_port(port); !s) fail("attach to " + port, s.error());
  std::vector<std::string> names;
  for (const Wanted& w : wanted) {
    if (auto s = edge->add_process(w.spec); !s) fail("add process " + w.spec.name, s.error());
    names.push_back(w.spec.name);
  }
  if (auto s = edge->set_clone_targets(*stream, names); !s) fail("set the clone targets", s.error());
  for (const Wanted& w : wanted)
    if (auto s = edge->set_policy(w.spec.name, *stream, w.policy); !s)
      fail("set the policy of " + w.spec.name, s.error());
  if (!ready.empty()) std::ofstream(ready) << "ready\n";

  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  auto stats = edge->target_stats(*stream);
  if (!stats) fail("read the counters", stats.error());
  for (const auto& t : *stats) {
    std::uint64_t delivered = 0, dropped = 0;
    for (int c = 0; c < 4; ++c) {
      delivered += t.delivered[c];
      dropped += t.dropped[c];
    }
    std::printf("%s delivered %llu dropped %llu held_until_rap %llu\n", t.process.c_str(),
                static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(dropped),
                static_cast<unsigned long long>(t.held_until_rap));
  }
  return 0;
}
