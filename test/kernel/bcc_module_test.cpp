// SPDX-License-Identifier: Apache-2.0
// The compiler module in use (lib/bcc_module.h): a compile maps libbcc and
// LLVM through libqocnet-bcc.so and works; a QOCNET_BCC_MODULE that names a
// missing file fails the compile with the named error, in a fresh process,
// without a crash. (test/unit/bcc_module_test.cpp: nothing is mapped before.)
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../support/capture_files.hpp"
#include "../support/check.hpp"
#include "compiler.hpp"
#include "qocnet/edge.hpp"

using namespace qocnet;
using namespace qocnet::test;

namespace {

std::string self_maps() { return read_text("/proc/self/maps"); }

}  // namespace

TEST_CASE("a compile loads libbcc and LLVM through the compiler module, and works", "[bcc_module][compile]") {
  const std::uint64_t before = detail::compile_count();
  detail::CompileRequest req;
  req.entry = "edge_ingress.c";
  req.programs = {"qoc_edge_in"};
  auto obj = detail::compile_bpf(req);
  REQUIRE_OK(obj);
  CHECK(detail::compile_count() == before + 1);
  CHECK(obj->programs.at("qoc_edge_in").fd() >= 0);
  CHECK(obj->maps.count("qoc_port_pairs") == 1);
  const std::string maps = self_maps();
  CHECK(maps.find("libqocnet-bcc.so") != std::string::npos);
  CHECK(maps.find("libbcc.so") != std::string::npos);
  CHECK(maps.find("libLLVM") != std::string::npos);
}

// Run by the next test in a fresh process (hidden: never run on its own).
TEST_CASE("(child) Edge::create with QOCNET_BCC_MODULE naming a missing file", "[.bcc_missing_child]") {
  auto e = Edge::create();
  REQUIRE_FALSE(e.ok());
  std::printf("%s\n", e.error().to_string().c_str());
  CHECK(e.error().code == Errc::unavailable);
}

TEST_CASE("QOCNET_BCC_MODULE naming a missing file: the compile fails with the path and the fix, no crash",
          "[bcc_module][compile]") {
  TmpDir scratch("bcc-missing");
  const std::string missing = (scratch.path / "nowhere" / "libqocnet-bcc.so").string();
  ::setenv("QOCNET_BCC_MODULE", missing.c_str(), 1);
  Child c = run_child({"/proc/self/exe", "[bcc_missing_child]"}, scratch.path);
  ::unsetenv("QOCNET_BCC_MODULE");
  INFO("stdout:\n" << c.out << "\nstderr:\n" << c.err);
  REQUIRE(WIFEXITED(c.status));  // not killed by a signal
  CHECK(WEXITSTATUS(c.status) == 0);
  CHECK(c.out.find("unavailable: compiling the BPF datapath needs qocnet's compiler module") !=
        std::string::npos);
  CHECK(c.out.find(missing + ": no such file") != std::string::npos);
  CHECK(c.out.find("fix: point QOCNET_BCC_MODULE at the libqocnet-bcc.so") != std::string::npos);
}
