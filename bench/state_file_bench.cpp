// SPDX-License-Identifier: Apache-2.0
// qocnet_state_file_bench: what one save of a pinned edge's state file costs
// (docs/BENCHMARKS.md, Control plane: State file cost). The state is the one
// of the flood test: 64 processes, 8 streams of 8 targets, one port. Times,
// per save: format_state (plain string building) against the yaml-cpp
// emitter qocnet used before (kept here as the reference), and the atomic
// write (write_file_atomic: the spare file rewritten, then the two names
// exchanged) against the rename over the old file used before, into a directory given on the
// command line (default /tmp). Checks that both texts parse to the same
// state. Needs no root; not a test.
//
//   qocnet_state_file_bench [DIR] [SAVES]
#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "pinning.hpp"
#include "qoc_consts.h"
#include "state_file.hpp"

using namespace qocnet;
using namespace qocnet::detail;

namespace {

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016" PRIx64, v);
  return b;
}

// format_state as it was up to commit 845bb70 (yaml-cpp's emitter).
std::string emitter_format_state(const SavedState& s) {
  YAML::Emitter y;
  y.SetDoublePrecision(17);
  y << YAML::Comment("qocnet edge control-plane state; written by libqocnet after every change; "
                     "sealed by its last line");
  y << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << kStateFormat;
  y << YAML::Key << "pin_dir" << YAML::Value << YAML::DoubleQuoted << s.pin_dir;
  y << YAML::Key << "netns_inode" << YAML::Value << s.netns_inode;
  y << YAML::Key << "source_hash" << YAML::Value << hex(s.source_hash);
  y << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : s.ports)
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << p.name
      << YAML::Key << "ifindex" << YAML::Value << p.ifindex << YAML::Key << "created_clsact" << YAML::Value
      << p.created_clsact << YAML::EndMap;
  y << YAML::EndSeq;
  y << YAML::Key << "processes" << YAML::Value << YAML::BeginSeq;
  for (const auto& e : s.processes)
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << e.spec.name
      << YAML::Key << "port" << YAML::Value << YAML::DoubleQuoted << e.spec.port << YAML::Key << "ifindex"
      << YAML::Value << e.ifindex << YAML::Key << "mac" << YAML::Value << YAML::DoubleQuoted << e.spec.mac
      << YAML::Key << "ip" << YAML::Value << YAML::DoubleQuoted << e.spec.ip << YAML::Key << "udp_port"
      << YAML::Value << e.spec.udp_port << YAML::Key << "slot" << YAML::Value << e.slot << YAML::EndMap;
  y << YAML::EndSeq;
  y << YAML::Key << "streams" << YAML::Value << YAML::BeginSeq;
  for (const auto& st : s.streams) {
    y << YAML::BeginMap << YAML::Key << "source" << YAML::Value << YAML::DoubleQuoted << st.id.source
      << YAML::Key << "source_port" << YAML::Value << st.id.source_port << YAML::Key << "destination_port"
      << YAML::Value << st.id.destination_port << YAML::Key << "targets" << YAML::Value << YAML::BeginSeq;
    for (const auto& t : st.targets)
      y << YAML::Flow << YAML::BeginMap << YAML::Key << "process" << YAML::Value << YAML::DoubleQuoted
        << t.process << YAML::Key << "policy" << YAML::Value << to_string(t.policy.kind) << YAML::Key << "drop"
        << YAML::Value << t.policy.drop << YAML::EndMap;
    y << YAML::EndSeq << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "qoc_table" << YAML::Value;
  const QocTable& t = s.qoc_table;
  y << YAML::BeginMap << YAML::Key << "metric" << YAML::Value << t.metric() << YAML::Key << "lossless"
    << YAML::Value << t.lossless() << YAML::Key << "policies" << YAML::Value << YAML::BeginMap;
  for (const auto& [kind, c] : t.curves()) {
    y << YAML::Key << to_string(kind) << YAML::Value << YAML::Flow << YAML::BeginMap;
    y << YAML::Key << "loss" << YAML::Value << YAML::Flow << c.loss;
    y << YAML::Key << "qoc" << YAML::Value << YAML::Flow << c.qoc;
    y << YAML::EndMap;
  }
  y << YAML::EndMap << YAML::EndMap;
  y << YAML::EndMap;
  return seal_state(std::string(y.c_str()) + "\n");
}

// The flood scenario's edge as measured since it was written: 64 processes,
// 8 streams of 8 targets (the datapath now holds more; the figures in
// docs/BENCHMARKS.md are for this size).
constexpr std::uint32_t kFloodProcs = 64;
constexpr std::uint32_t kFloodTargets = 8;

SavedState flood_state() {
  SavedState s;
  s.pin_dir = "/sys/fs/bpf/qocnet/edge";
  s.netns_inode = 4026531840ull;
  s.source_hash = 0x9e3779b97f4a7c15ull;
  s.ports.push_back({"qe-edge", 2, true});
  for (std::uint32_t i = 0; i < kFloodProcs; ++i) {
    char mac[18];
    std::snprintf(mac, sizeof mac, "02:71:00:00:01:%02x", i);
    s.processes.push_back({{"proc" + std::to_string(i), "qp" + std::to_string(i), mac,
                            "10.77.1." + std::to_string(i + 1), static_cast<std::uint16_t>(6000 + i)},
                           i, 10 + i});
  }
  for (std::uint32_t st = 0; st < kFloodProcs / kFloodTargets; ++st) {
    SavedStream ss{{"10.77.0.1", 40000, static_cast<std::uint16_t>(5000 + st)}, {}};
    for (std::uint32_t j = 0; j < kFloodTargets; ++j)
      ss.targets.push_back({"proc" + std::to_string(st * kFloodTargets + j), Policy::differential(0.0137 * j)});
    s.streams.push_back(std::move(ss));
  }
  return s;
}

// write_file_atomic as it was up to commit 845bb70: a rename over the old
// file.
void rename_write(const std::filesystem::path& path, const std::string& text) {
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::perror(tmp.c_str());
    std::exit(1);
  }
}

template <class F>
double ns_per(int n, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) f(i);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp";
  const int n = argc > 2 ? std::atoi(argv[2]) : 2000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: qocnet_state_file_bench [DIR] [SAVES > 0]\n");
    return 2;
  }
  SavedState s = flood_state();
  const std::string a = emitter_format_state(s), b = format_state(s);
  auto pa = parse_state(a), pb = parse_state(b);
  if (!pa || !pb || format_state(*pa) != b) {
    std::fprintf(stderr, "the emitter's and format_state's texts do not read back as the same state\n");
    return 1;
  }
  // A process name that is not UTF-8 (the API takes any non-empty name):
  // the emitter wrote U+FFFD for it, so a restart knew the process by
  // another name.
  {
    SavedState odd = s;
    odd.processes[0].spec.name = odd.streams[0].targets[0].process = "p\xff";
    auto po = parse_state(emitter_format_state(odd));
    auto pn = parse_state(format_state(odd));
    std::printf("a process named \"p\\xff\" reads back as itself: emitter %s, format_state %s\n",
                po && po->processes[0].spec.name == "p\xff" ? "yes" : "no",
                pn && pn->processes[0].spec.name == "p\xff" ? "yes" : "no");
  }
  std::size_t sink = 0;
  auto policy = [&](int i) { s.streams[i % 8].targets[i % 8].policy.drop = (i % 100) / 100.0; };
  const double emit = ns_per(n, [&](int i) { policy(i); sink += emitter_format_state(s).size(); });
  const double plain = ns_per(n, [&](int i) { policy(i); sink += format_state(s).size(); });
  const std::filesystem::path file = dir / ("qocnet_state_file_bench." + std::to_string(::getpid()) + ".yaml");
  const std::string text = format_state(s);
  const double write = ns_per(n, [&](int) {
    if (Status st = write_file_atomic(file, text); !st) {
      std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
      std::exit(1);
    }
  });
  const double renamed = ns_per(n, [&](int) { rename_write(file, text); });
  std::error_code ec;
  std::filesystem::remove(file, ec);
  std::filesystem::remove(atomic_spare(file), ec);
  std::printf("state of %zu processes, %zu streams: %zu bytes (emitter: %zu)\n", s.processes.size(),
              s.streams.size(), b.size(), a.size());
  std::printf("format, yaml-cpp emitter (before): %8.1f us per save\n", emit / 1000);
  std::printf("format_state, plain strings (now): %8.1f us per save\n", plain / 1000);
  std::printf("write, rename over the old file (before), into %s: %8.1f us per save\n", dir.c_str(),
              renamed / 1000);
  std::printf("write_file_atomic, exchange (now), into %s: %8.1f us per save\n", dir.c_str(), write / 1000);
  std::printf("(%zu)\n", sink % 10);
  return 0;
}
