// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "compiler.hpp"
#include "preflight.hpp"
#include "qoc_abi.h"
#include "qocnet/edge.hpp"
#include "qocnet/sensor.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
namespace fs = std::filesystem;

TEST_CASE("the shared ABI structs have the layout the BPF side gives them", "[unit][abi]") {
  STATIC_REQUIRE(sizeof(qoc_port_pair) == 8);
  STATIC_REQUIRE(sizeof(qoc_port_stats) == 64);
  STATIC_REQUIRE(offsetof(qoc_port_stats, rx_packets) == 0);
  STATIC_REQUIRE(offsetof(qoc_port_stats, fwd_packets) == 16);
  STATIC_REQUIRE(offsetof(qoc_port_stats, pass_packets) == 32);
  STATIC_REQUIRE(offsetof(qoc_port_stats, tx_packets) == 48);
}

TEST_CASE("default edge options are valid", "[unit][config]") {
  CHECK(validate(EdgeOptions{}).ok());
}

TEST_CASE("invalid edge options are refused with the field named", "[unit][config]") {
  EdgeOptions o;
  SECTION("max_ports too small") {
    o.max_ports = 1;
    auto st = validate(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_argument);
    CHECK(st.error().message.find("max_ports is 1") != std::string::npos);
  }
  SECTION("max_ports too large") {
    o.max_ports = 100000;
    REQUIRE_FALSE(validate(o).ok());
  }
  SECTION("max_streams 0") {
    o.max_streams = 0;
    auto st = validate(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_argument);
    CHECK(st.error().message.find("max_streams is 0") != std::string::npos);
  }
  SECTION("max_streams too large") {
    o.max_streams = (1u << 20) + 1;
    REQUIRE_FALSE(validate(o).ok());
  }
  SECTION("relative lock dir") {
    o.lock_dir = "run/locks";
    auto st = validate(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message.find("lock_dir") != std::string::npos);
  }
  SECTION("missing bpf source dir") {
    o.bpf_src_dir = "/nonexistent/qocnet-bpf";
    auto st = validate(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::not_found);
    CHECK(st.error().message.find("/nonexistent/qocnet-bpf") != std::string::npos);
  }
}

TEST_CASE("sensor options: max_streams outside [1, 2^20] is refused with the field named",
          "[unit][config]") {
  SensorOptions o;
  CHECK(validate(o).ok());
  o.max_streams = 1;
  CHECK(validate(o).ok());
  o.max_streams = 0;
  auto st = validate(o);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::invalid_argument);
  CHECK(st.error().message.find("SensorOptions::max_streams is 0") != std::string::npos);
  o.max_streams = (1u << 20) + 1;
  CHECK_FALSE(validate(o).ok());
}

TEST_CASE("the embedded BPF sources are the files of bpf_src/", "[unit][bpf_src]") {
  const auto& srcs = detail::embedded_bpf_sources();
  std::set<std::string> names;
  for (const auto& s : srcs) {
    names.insert(s.name);
    std::ifstream f(fs::path(QOCNET_SOURCE_DIR) / "bpf_src" / s.name);
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    INFO(s.name);
    CHECK(ss.str() == s.text);
  }
  for (const char* n : {"edge_ingress.c", "qoc_abi.h", "qoc_consts.h", "qoc_maps.h", "qoc_forward.h"})
    CHECK(names.count(n) == 1);
}

TEST_CASE("libbcc noise is dropped and the virtual file name replaced", "[unit][compiler]") {
  const std::string raw =
      "sh: 1: modprobe: not found\n"
      "/virtual/main.c:12:5: error: use of undeclared identifier 'x'\n"
      "sha1 socket not available\n";
  const std::string out = detail::clean_diagnostics(raw, "/src/edge_ingress.c");
  CHECK(out == "/src/edge_ingress.c:12:5: error: use of undeclared identifier 'x'\n");
}

TEST_CASE("missing kernel headers name the paths tried and the fix", "[unit][preflight]") {
  auto r = detail::check_kernel_headers("/nonexistent/qocnet-kernel-headers");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::unavailable);
  CHECK(r.error().message.find("/nonexistent/qocnet-kernel-headers") != std::string::npos);
  CHECK(r.error().fix.find("scripts/bootstrap") != std::string::npos);
}

TEST_CASE("interface names are checked before the kernel is asked", "[unit][preflight]") {
  for (const char* bad : {"", "name-longer-than-15", "a/b", "a b"}) {
    auto r = detail::resolve_interface(bad);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
  }
  auto missing = detail::resolve_interface("qocnetnope0");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Errc::not_found);
  CHECK(missing.error().message.find("'qocnetnope0'") != std::string::npos);
  auto lo = detail::resolve_interface("lo");
  REQUIRE(lo.ok());
  CHECK(*lo >= 1u);
}

TEST_CASE("TC actions have their kernel names", "[unit]") {
  CHECK(tc_action_name(0) == "TC_ACT_OK");
  CHECK(tc_action_name(2) == "TC_ACT_SHOT");
  CHECK(tc_action_name(7) == "TC_ACT_REDIRECT");
  CHECK(tc_action_name(42) == "TC_ACT(42)");
}

TEST_CASE("testbed names are unique and fit an interface/namespace name", "[unit][testbed]") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto n = testbed::unique_name("proc");
    CHECK(n.size() <= 15);
    CHECK(n.rfind("qn", 0) == 0);
    seen.insert(n);
  }
  CHECK(seen.size() == 100);
}

#include <unistd.h>

#include "qocnet/classify.hpp"

namespace {
fs::path temp_file(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  fs::path p = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}
}  // namespace

TEST_CASE("a .ts file is cut into UDP datagrams of whole TS packets", "[unit][classify]") {
  std::vector<std::uint8_t> ts(188 * 15 + 100, 0xff);  // 15 packets and a cut-off tail
  for (int i = 0; i < 15; ++i) ts[static_cast<std::size_t>(i) * 188] = 0x47;
  const auto path = temp_file("qocnet-unit.ts", ts);
  auto c = read_capture(path);
  fs::remove(path);
  REQUIRE(c.ok());
  CHECK(c->kind == "ts");
  REQUIRE(c->frames.size() == 3);  // 7 + 7 + 1
  CHECK(c->frames[0].size() == 14 + 20 + 8 + 7 * 188);
  CHECK(c->frames[2].size() == 14 + 20 + 8 + 188);
  CHECK(c->frames[0][14] == 0x45);        // IPv4
  CHECK(c->frames[0][14 + 9] == 17);      // UDP
  CHECK(c->frames[0][14 + 20 + 8] == 0x47);
  auto four = read_capture(path.string() + "-missing");
  REQUIRE_FALSE(four.ok());
  CHECK(four.error().code == Errc::not_found);
}

TEST_CASE("a file that is neither TS nor a capture is refused with what to pass", "[unit][classify]") {
  const auto path = temp_file("qocnet-unit.bin", std::vector<std::uint8_t>(1000, 0x11));
  auto c = read_capture(path);
  fs::remove(path);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == Errc::invalid_argument);
  CHECK(c.error().message.find("neither an MPEG-TS file nor a capture") != std::string::npos);
  CHECK(c.error().fix.find("pcap") != std::string::npos);
}

TEST_CASE("datagrams per TS file chunk must be 1 to 7 packets", "[unit][classify]") {
  auto c = read_capture("/nonexistent", 8);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == Errc::invalid_argument);
}
