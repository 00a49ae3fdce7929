// SPDX-License-Identifier: Apache-2.0
// Test runner for suites that need root: reports SKIPPED (exit 77, which CTest
// shows as "Skipped") with the reason when the process cannot load BPF
// programs or create namespaces. Under CI (CI set) a missing privilege is a
// failure instead: CI runs as root and nothing may skip there.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "preflight.hpp"
#include "qocnet/testbed.hpp"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--list", 0) == 0) listing = true;
  if (!listing) {
    std::string why;
    if (::geteuid() != 0) why = "needs root (network namespaces, TC filters, BPF programs)";
    else if (auto st = qocnet::detail::check_privileges(); !st) why = st.error().to_string();
    if (!why.empty()) {
      const char* ci = std::getenv("CI");
      if (ci && *ci) {
        std::fprintf(stderr, "FAILED: %s (CI runs as root; nothing may skip there)\n", why.c_str());
        return 1;
      }
      std::printf("SKIPPED: %s\n", why.c_str());
      return 77;
    }
    qocnet::testbed::sweep_stale_namespaces();
  }
  return Catch::Session().run(argc, argv);
}
