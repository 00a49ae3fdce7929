// SPDX-License-Identifier: Apache-2.0
// The compiler module (lib/bcc_module.h, lib/bcc_loader.cpp): libbcc, LLVM
// and Clang are mapped only by a compile, never by a program that links
// libqocnet and does not compile; the module's lookup and every way it can
// be refused. No root: nothing here compiles in this process.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../support/capture_files.hpp"
#include "bcc_loader.hpp"
#include "compiler.hpp"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;

namespace {

// The shared objects of libbcc and what it brings, as /proc/PID/maps or
// LD_DEBUG name them.
const char* const kCompilerLibs[] = {"libbcc.so", "libbcc_bpf.so", "libLLVM", "libclang-cpp"};

std::string compiler_libs_in(const std::string& text) {
  std::string found;
  for (const char* lib : kCompilerLibs)
    if (text.find(lib) != std::string::npos) found += std::string(found.empty() ? "" : ", ") + lib;
  return found;
}

std::string self_maps() { return read_text("/proc/self/maps"); }

// Sets an environment variable for the scope (the tests run one at a time).
struct EnvVar {
  EnvVar(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~EnvVar() { ::unsetenv(name_); }
  const char* name_;
};

}  // namespace

TEST_CASE("a process linking libqocnet maps neither libbcc nor LLVM before it compiles",
          "[bcc_module]") {
  REQUIRE(detail::compile_count() == 0);
  const std::string maps = self_maps();
  REQUIRE(maps.find("[stack]") != std::string::npos);  // it is the maps file
  INFO("mapped: " << compiler_libs_in(maps));
  CHECK(compiler_libs_in(maps).empty());
}

TEST_CASE("qocnetctl --help loads neither libbcc nor LLVM", "[bcc_module]") {
  TmpDir scratch("bcc-help");
  Child c;
  {
    // The dynamic loader lists every object it loads, also by dlopen.
    EnvVar debug("LD_DEBUG", "files");
    c = run_child({QOCNETCTL_PATH, "--help"}, scratch.path);
  }
  REQUIRE(WIFEXITED(c.status));
  CHECK(WEXITSTATUS(c.status) == 0);
  REQUIRE(c.err.find("file=libc.so.6") != std::string::npos);  // LD_DEBUG worked
  INFO("loaded: " << compiler_libs_in(c.err));
  CHECK(compiler_libs_in(c.err).empty());
}

TEST_CASE("QOCNET_BCC_MODULE, when set, is the only place looked at, else the build tree and then the install",
          "[bcc_module]") {
  const auto env = detail::bcc_module_candidates("/opt/x/libqocnet-bcc.so");
  REQUIRE(env.size() == 1);
  CHECK(env[0] == "/opt/x/libqocnet-bcc.so");
  for (const char* unset : {static_cast<const char*>(nullptr), ""}) {
    const auto def = detail::bcc_module_candidates(unset);
    REQUIRE(def.size() == 2);
    CHECK(def[0] == fs::path(QOCNET_BCC_MODULE_TEST_BUILD_PATH));
    CHECK(def[0].filename() == "libqocnet-bcc.so");
    CHECK(fs::exists(def[0]));  // built with libqocnet
    CHECK(def[1].filename() == "libqocnet-bcc.so");
    CHECK(def[1].parent_path().filename() == "qocnet");
  }
}

TEST_CASE("a missing compiler module is refused with the paths tried and the fix", "[bcc_module]") {
  const fs::path missing = "/nonexistent/qocnet/libqocnet-bcc.so";
  SECTION("named by QOCNET_BCC_MODULE") {
    auto r = detail::open_bcc_module({missing}, true);
    REQUIRE_FALSE(r.ok());
    INFO(r.error().to_string());
    CHECK(r.error().code == Errc::unavailable);
    CHECK(r.error().message.find("compiler module") != std::string::npos);
    CHECK(r.error().message.find(missing.string() + ": no such file") != std::string::npos);
    CHECK(r.error().fix.find("QOCNET_BCC_MODULE") != std::string::npos);
    CHECK(r.error().fix.find(QOCNET_BCC_MODULE_TEST_BUILD_PATH) != std::string::npos);
  }
  SECTION("at the default places") {
    const fs::path other = "/nonexistent/lib/qocnet/libqocnet-bcc.so";
    auto r = detail::open_bcc_module({missing, other}, false);
    REQUIRE_FALSE(r.ok());
    INFO(r.error().to_string());
    CHECK(r.error().code == Errc::unavailable);
    CHECK(r.error().message.find(missing.string() + ": no such file") != std::string::npos);
    CHECK(r.error().message.find(other.string() + ": no such file") != std::string::npos);
    CHECK(r.error().fix.find("--target qocnet_bcc") != std::string::npos);
    CHECK(r.error().fix.find("cmake --install") != std::string::npos);
  }
}

TEST_CASE("a compiler module that is not one, or of another ABI version, is refused", "[bcc_module]") {
  TmpDir scratch("bcc-bad");
  const fs::path text = scratch.path / "libqocnet-bcc.so";
  std::ofstream(text) << "not a shared object\n";
  auto r = detail::open_bcc_module({text}, true);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().to_string());
  CHECK(r.error().code == Errc::failed_precondition);
  CHECK(r.error().message.find(text.string() + ": cannot be loaded") != std::string::npos);

  r = detail::open_bcc_module({QOCNET_BCC_STUB_NO_ENTRY}, true);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().to_string());
  CHECK(r.error().message.find("not a qocnet compiler module (it exports no qocnet_bcc_module)") !=
        std::string::npos);

  r = detail::open_bcc_module({QOCNET_BCC_STUB_V999}, false);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().to_string());
  CHECK(r.error().code == Errc::failed_precondition);
  CHECK(r.error().message.find("speaks compiler-module ABI version 999, this libqocnet speaks version " +
                               std::to_string(QOCNET_BCC_ABI_VERSION)) != std::string::npos);

  // A refused module does not stop the search: the next candidate is used.
  // (In a child: the accepted module maps libbcc for good.)
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto ok = detail::open_bcc_module({QOCNET_BCC_STUB_V999, QOCNET_BCC_MODULE_TEST_BUILD_PATH}, false);
    ::_exit(ok.ok() && (*ok)->abi_version == QOCNET_BCC_ABI_VERSION ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Nothing of it reached this process.
  CHECK(compiler_libs_in(self_maps()).empty());
}

TEST_CASE("the build tree's compiler module opens, speaks this ABI and maps libbcc", "[bcc_module]") {
  // In a child, so this process stays without libbcc.
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    auto api = detail::open_bcc_module(detail::bcc_module_candidates(nullptr), false);
    std::string out = api.ok() ? std::string((*api)->libbcc) + "\n" + compiler_libs_in(self_maps())
                               : "ERROR " + api.error().to_string();
    if (::write(pipefd[1], out.data(), out.size()) < 0) ::_exit(2);
    ::_exit(api.ok() && (*api)->abi_version == QOCNET_BCC_ABI_VERSION ? 0 : 1);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(out.rfind("libbcc ", 0) == 0);
  CHECK(out.find("libbcc.so") != std::string::npos);
  CHECK(out.find("libLLVM") != std::string::npos);
}
