// SPDX-License-Identifier: Apache-2.0
// The pinned edge's state file as a pure function (lib/state_file.hpp): what
// format_state writes, parse_state reads back; every corrupt file of
// test/support/state_cases.hpp is refused with failed_precondition, and a
// file cut at any byte is refused as incomplete.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string_view>

#include "../support/check.hpp"
#include "../support/state_cases.hpp"
#include "pinning.hpp"
#include "qoc_consts.h"
#include "state_file.hpp"

using namespace qocnet;
using namespace qocnet::detail;

namespace {

SavedState example() {
  SavedState s;
  s.pin_dir = "/sys/fs/bpf/qocnet/edge";
  s.netns_inode = 4026531840ull;
  s.source_hash = 0x0123456789abcdefull;
  s.ports = {{"e0", 2, true}, {"e1", 3, false}};
  s.processes = {{{"proc0", "e1", "02:71:00:00:01:01", "10.77.1.1", 6000}, 0, 3},
                 {{"null", "e2", "02:71:00:00:01:02", "", 0}, 1, 4}};
  s.streams = {{{"10.77.0.1", 40000, 5000}, {{"proc0", Policy::keep()}, {"null", Policy::differential(0.5)}}},
               {{"fd00::1", 1, 65535}, {{"null", Policy::frame_aware(1.0)}}}};
  return s;
}

}  // namespace

TEST_CASE("a state file reads back what was written", "[state]") {
  const SavedState s = example();
  const std::string text = format_state(s);
  auto r = parse_state(text);
  REQUIRE_OK(r);
  CHECK(r->pin_dir == s.pin_dir);
  CHECK(r->netns_inode == s.netns_inode);
  CHECK(r->source_hash == s.source_hash);
  REQUIRE(r->ports.size() == 2);
  CHECK(r->ports[0].name == "e0");
  CHECK(r->ports[0].created_clsact);
  CHECK(r->ports[1].ifindex == 3);
  REQUIRE(r->processes.size() == 2);
  CHECK(r->processes[1].spec.name == "null");  // a name YAML would read as null, quoted
  CHECK(r->processes[1].spec.ip.empty());
  CHECK(r->processes[0].spec.udp_port == 6000);
  REQUIRE(r->streams.size() == 2);
  CHECK(r->streams[1].id.source == "fd00::1");
  CHECK(r->streams[1].id.destination_port == 65535);
  CHECK(r->streams[0].targets[1].policy == Policy::differential(0.5));
  CHECK(r->streams[1].targets[0].policy == Policy::frame_aware(1.0));
  CHECK(format_state(*r) == text);
}

TEST_CASE("corrupt state files are refused with failed_precondition and the fix", "[state]") {
  const auto cases = test::corrupt_states(format_state(example()));
  CHECK(cases.size() > 60);
  for (const auto& c : cases) {
    INFO("case: " << c.name << "\n" << c.text.substr(0, 3000));
    auto r = parse_state(c.text);
    REQUIRE_FALSE(r.ok());
    INFO("error: " << r.error().to_string());
    CHECK(r.error().code == Errc::failed_precondition);
    CHECK(r.error().message.find(c.why) != std::string::npos);
    CHECK(r.error().fix.find("qocnetctl cleanup") != std::string::npos);
  }
}

TEST_CASE("a state file cut at any byte is refused as incomplete", "[state]") {
  const std::string text = format_state(example());
  for (std::size_t n = 0; n < text.size(); ++n) {
    auto r = parse_state(text.substr(0, n));
    INFO("cut to " << n << " of " << text.size() << " bytes");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::failed_precondition);
  }
  // Every single-byte change of the body is caught by the checksum.
  for (std::size_t i = 0; i < text.size(); i += 7) {
    std::string t = text;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    INFO("byte " << i << " changed");
    CHECK_FALSE(parse_state(t).ok());
  }
}

namespace {

void check_equal(const SavedState& a, const SavedState& b) {
  CHECK(a.pin_dir == b.pin_dir);
  CHECK(a.netns_inode == b.netns_inode);
  CHECK(a.source_hash == b.source_hash);
  REQUIRE(a.ports.size() == b.ports.size());
  for (std::size_t i = 0; i < a.ports.size(); ++i) {
    CHECK(a.ports[i].name == b.ports[i].name);
    CHECK(a.ports[i].ifindex == b.ports[i].ifindex);
    CHECK(a.ports[i].created_clsact == b.ports[i].created_clsact);
  }
  REQUIRE(a.processes.size() == b.processes.size());
  for (std::size_t i = 0; i < a.processes.size(); ++i) {
    const auto& x = a.processes[i];
    const auto& y = b.processes[i];
    CHECK(x.spec.name == y.spec.name);
    CHECK(x.spec.port == y.spec.port);
    CHECK(x.spec.mac == y.spec.mac);
    CHECK(x.spec.ip == y.spec.ip);
    CHECK(x.spec.udp_port == y.spec.udp_port);
    CHECK(x.slot == y.slot);
    CHECK(x.ifindex == y.ifindex);
  }
  REQUIRE(a.streams.size() == b.streams.size());
  for (std::size_t i = 0; i < a.streams.size(); ++i) {
    CHECK(a.streams[i].id.source == b.streams[i].id.source);
    CHECK(a.streams[i].id.source_port == b.streams[i].id.source_port);
    CHECK(a.streams[i].id.destination_port == b.streams[i].id.destination_port);
    REQUIRE(a.streams[i].targets.size() == b.streams[i].targets.size());
    for (std::size_t j = 0; j < a.streams[i].targets.size(); ++j) {
      CHECK(a.streams[i].targets[j].process == b.streams[i].targets[j].process);
      CHECK(a.streams[i].targets[j].policy.kind == b.streams[i].targets[j].policy.kind);
      // Bit for bit: the file keeps every double exactly.
      CHECK(std::memcmp(&a.streams[i].targets[j].policy.drop, &b.streams[i].targets[j].policy.drop,
                        sizeof(double)) == 0);
    }
  }
  CHECK(a.qoc_table.metric() == b.qoc_table.metric());
  CHECK(a.qoc_table.lossless() == b.qoc_table.lossless());
  CHECK(a.qoc_table.curves().size() == b.qoc_table.curves().size());
  for (const auto& [kind, c] : a.qoc_table.curves()) {
    auto it = b.qoc_table.curves().find(kind);
    REQUIRE(it != b.qoc_table.curves().end());
    CHECK(c.loss == it->second.loss);
    CHECK(c.qoc == it->second.qoc);
  }
}

// Names as a caller may give them: the API takes any non-empty process name
// and any interface name without '/', ':', blanks or NUL.
std::string odd_name(std::mt19937_64& rng, bool interface) {
  static const std::vector<std::string> whole = {
      "null", "~", "true", "no", "0x10", "1e3", "- x", "#c", "&a", "*a", "!t", "%p", "@", "`",
      "{a: b}", "[1]", "|", ">", "'q'", "\"q\"", "\\", "\\x41", "a\"b\\c", "--- ", "...", "é",
      "\xc3\xa9t\xc3\xa9", "\xff\xfe", "\x80", "\xe2\x80\xa8", "\xc2\x85", "\xef\xbb\xbf" "bom", "\x7f",
      "\x01\x1b[31m", " lead", "trail ", "a  b", "tab\there", "line\nbreak", "cr\rlf", ",", "?", "k: v"};
  static const char kBytes[] = "aZ09_-.\"\\'#&*!%@`{}[]|>,?~ \t\n\r\x01\x1f\x7f\x80\xc2\x85\xff\xe2";
  const std::string bytes(kBytes, sizeof kBytes - 1);
  std::string s;
  if (rng() % 3 == 0) {
    s = whole[rng() % whole.size()];
  } else {
    const std::size_t n = 1 + rng() % 14;
    for (std::size_t i = 0; i < n; ++i) s += bytes[rng() % bytes.size()];
  }
  if (interface) {
    std::string t;
    for (char c : s)
      if (std::string_view("/: \t\n\r\v\f").find(c) == std::string_view::npos) t += c;
    s = t.substr(0, 15);
    if (s.empty() || s == "." || s == "..") s = "e" + std::to_string(rng() % 1000);
  }
  return s;
}

double odd_drop(std::mt19937_64& rng) {
  static const double fixed[] = {0.0, -0.0, 1.0, 0.5, 0.1, 1.0 / 3.0, 1e-300, 5e-324, 0.9999999999999999,
                                 0.30000000000000004};
  if (rng() % 2) return fixed[rng() % std::size(fixed)];
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

SavedState generated(std::mt19937_64& rng) {
  SavedState s;
  s.pin_dir = "/" + odd_name(rng, false);
  s.netns_inode = rng();
  s.source_hash = rng();
  std::set<std::string> port_names;
  const std::size_t nports = rng() % 5;
  for (std::size_t i = 0; i < nports; ++i) {
    std::string n = odd_name(rng, true);
    if (!port_names.insert(n).second) continue;
    s.ports.push_back({n, static_cast<unsigned>(i + 1 + rng() % 1000 * 8), rng() % 2 == 0});
  }
  std::set<std::string> names;
  const std::size_t nprocs = rng() % (QOC_MAX_PROCS + 1);
  for (std::uint32_t slot = 0; slot < nprocs; ++slot) {
    std::string n = odd_name(rng, false);
    if (!names.insert(n).second) continue;
    char mac[24];
    std::snprintf(mac, sizeof mac, "%02x:%02X:00:%02x:%02x:%02x", static_cast<unsigned>(rng() % 256) & 0xfe,
                  static_cast<unsigned>(rng() % 256), (slot >> 8) & 0xff, slot & 0xff,
                  static_cast<unsigned>(rng() % 256));
    const std::string ip = rng() % 4 == 0 ? ""
                                          : "10." + std::to_string(rng() % 256) + "." +
                                                std::to_string(slot / 250) + "." + std::to_string(1 + slot % 250);
    s.processes.push_back({{n, odd_name(rng, true), mac, ip, static_cast<std::uint16_t>(rng())},
                           static_cast<std::uint32_t>(QOC_MAX_PROCS - 1 - slot),
                           static_cast<unsigned>(rng() % 100000)});
  }
  const std::vector<std::string> sources = {"10.77.0.1", "192.0.2.255", "fd00::1", "::1", "2001:db8::a:b"};
  const std::size_t nstreams = s.processes.empty() ? 0 : rng() % 12;
  for (std::size_t i = 0; i < nstreams; ++i) {
    SavedStream st{{sources[i % sources.size()], static_cast<std::uint16_t>(1 + i),
                    static_cast<std::uint16_t>(1 + rng() % 65535)},
                   {}};
    std::set<std::string> used;
    const std::size_t nt = 1 + rng() % QOC_MAX_TARGETS;
    for (std::size_t j = 0; j < nt; ++j) {
      const std::string& p = s.processes[rng() % s.processes.size()].spec.name;
      if (!used.insert(p).second) continue;
      const auto kind = static_cast<PolicyKind>(rng() % 4);
      st.targets.push_back({p, Policy{kind, kind == PolicyKind::keep ? 0.0 : odd_drop(rng)}});
    }
    s.streams.push_back(std::move(st));
  }
  if (rng() % 3 == 0) {
    // (The table itself is read through QocTable::parse_yaml, so its metric
    // is kept to valid UTF-8 here.)
    static const std::vector<std::string> metrics = {"object detection rate", "mAP@0.5", "a: b", "null", "",
                                                     "\xc3\xa9", "tab\tx", "x\"y\\z", "#1", " lead"};
    const double lossless = 1.0 - odd_drop(rng) * 0.5;
    std::map<PolicyKind, QocTable::Curve> curves;
    curves[PolicyKind::uniform] = {{odd_drop(rng) * 0.5 + 1e-9, 0.75, 1.0}, {lossless * 0.9, lossless / 2, lossless / 3}};
    curves[PolicyKind::frame_aware] = {{0.1}, {lossless}};
    auto t = QocTable::make(metrics[rng() % metrics.size()], lossless, std::move(curves));
    REQUIRE_OK(t);
    s.qoc_table = std::move(*t);
  }
  return s;
}

}  // namespace

TEST_CASE("generated state files with odd names and rates read back exactly", "[state]") {
  std::mt19937_64 rng(20261201);
  for (int i = 0; i < 300; ++i) {
    const SavedState s = generated(rng);
    const std::string text = format_state(s);
    INFO("state " << i << ":\n" << text);
    auto r = parse_state(text);
    REQUIRE_OK(r);
    check_equal(s, *r);
    CHECK(format_state(*r) == text);
  }
}

TEST_CASE("a state of the most processes and full target lists reads back exactly", "[state]") {
  SavedState s;
  s.pin_dir = "/sys/fs/bpf/qocnet/edge";
  s.ports.push_back({"edge-in", 2, true});
  for (std::uint32_t i = 0; i < QOC_MAX_PROCS; ++i) {
    char mac[24];
    std::snprintf(mac, sizeof mac, "02:71:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
    s.processes.push_back({{"proc" + std::to_string(i), "qp" + std::to_string(i), mac,
                            "10.77." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250),
                            static_cast<std::uint16_t>(6000 + i)},
                           i, 10 + i});
  }
  for (std::uint16_t st = 0; st < QOC_MAX_PROCS / QOC_MAX_TARGETS; ++st) {
    SavedStream ss{{"10.77.0.1", 40000, static_cast<std::uint16_t>(5000 + st)}, {}};
    for (std::uint32_t j = 0; j < QOC_MAX_TARGETS; ++j)
      ss.targets.push_back({"proc" + std::to_string(st * QOC_MAX_TARGETS + j), Policy::differential(0.1 * (j % 10))});
    s.streams.push_back(std::move(ss));
  }
  const std::string text = format_state(s);
  auto r = parse_state(text);
  REQUIRE_OK(r);
  check_equal(s, *r);
}

TEST_CASE("a subnormal drop rate, which validate(Policy) takes, reads back", "[state]") {
  SavedState s = example();
  for (const double p : {5e-324, 1e-310, 2.2250738585072009e-308}) {
    s.streams[0].targets[1].policy = Policy::differential(p);
    REQUIRE_OK(validate(s.streams[0].targets[1].policy));
    auto r = parse_state(format_state(s));
    INFO("drop " << p);
    REQUIRE_OK(r);
    CHECK(r->streams[0].targets[1].policy.drop == p);
  }
  // An underflow to zero or an overflow is still not a number.
  for (const char* bad : {"1e-400", "1e400"}) {
    std::string text = format_state(example());
    const std::string body = test::state_body(text);
    std::string b = body;
    b.replace(b.find("drop: 0.5"), 9, std::string("drop: ") + bad);
    auto r = parse_state(seal_state(b));
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not a number") != std::string::npos);
  }
}

TEST_CASE("a process name that is not UTF-8 reads back as itself", "[state]") {
  SavedState s = example();
  s.processes[0].spec.name = s.streams[0].targets[0].process = "p\xff\xfe\x80 \xc3";
  auto r = parse_state(format_state(s));
  REQUIRE_OK(r);
  CHECK(r->processes[0].spec.name == s.processes[0].spec.name);
  CHECK(r->streams[0].targets[0].process == s.processes[0].spec.name);
}

TEST_CASE("write_file_atomic replaces the file whole, keeping only its spare beside it", "[state]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("qocnet-state-write-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path file = dir / "sub" / "edge.state";
  auto read = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  REQUIRE_OK(write_file_atomic(file, "first\n"));  // the directory made, no file to exchange with
  CHECK(read(file) == "first\n");
  CHECK(atomic_spare(file) == file.string() + ".tmp");
  std::string previous = "first\n";
  // Longer and shorter texts: the spare is rewritten in place and cut to
  // length, never left with the tail of an older text.
  for (std::size_t size : {5000u, 20u, 12000u, 1u, 7000u}) {
    const std::string text = std::to_string(size) + std::string(size, 'x') + "\n";
    REQUIRE_OK(write_file_atomic(file, text));
    CHECK(read(file) == text);
    CHECK(read(atomic_spare(file)) == previous);  // the text before, not in the way
    previous = text;
  }
  CHECK(std::distance(fs::directory_iterator(file.parent_path()), fs::directory_iterator{}) == 2);
  // A spare left by a writer killed before the exchange is overwritten.
  {
    std::ofstream(atomic_spare(file)) << std::string(20000, 'y');
  }
  REQUIRE_OK(write_file_atomic(file, "after a crash\n"));
  CHECK(read(file) == "after a crash\n");
  // A directory where the file belongs is refused and left where it was.
  const fs::path d = dir / "sub" / "is-a-dir";
  fs::create_directories(d / "inside");
  auto st = write_file_atomic(d, "text\n");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("cannot move state file into place") != std::string::npos);
  CHECK(fs::is_directory(d / "inside"));
  CHECK_FALSE(fs::exists(atomic_spare(d)));
  fs::remove_all(dir);
}
