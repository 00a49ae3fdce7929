# SPDX-License-Identifier: Apache-2.0
# Sanitizer and fuzzing builds (docs/TESTING.md, Sanitizers and Fuzzing).
#
# QOCNET_SANITIZE=<list>  e.g. "address,undefined": every target of the build
#   (libqocnet, the gRPC layer, tools, tests) compiled and linked with
#   -fsanitize=<list>, frame pointers kept, -O1 (test code -O0: see
#   test/CMakeLists.txt), line tables only (-g1: every report names file and
#   line; full debug info doubles the build); UBSan findings are fatal
#   (-fno-sanitize-recover). Every executable gets the defaults of
#   test/sanitizers/sanitizer_defaults.cpp, so the checked-in suppression
#   files apply to tests, qocnetd, qocnet-sensor and qocnetctl however they
#   are started (ctest, a test spawning the daemon, by hand).
# QOCNET_FUZZ=ON  clang only: libFuzzer's coverage instrumentation plus ASan and
#   UBSan on everything; only the library layers and fuzz/ are configured.

set(QOCNET_SANITIZE "" CACHE STRING
    "Sanitizers for every target, e.g. address,undefined (empty: none)")
option(QOCNET_FUZZ "Build the libFuzzer targets in fuzz/ (clang; implies ASan and UBSan)" OFF)

set(QOCNET_SANITIZER_DEFAULTS ${PROJECT_SOURCE_DIR}/test/sanitizers/sanitizer_defaults.cpp)

function(_qocnet_sanitize_all sanitizers extra_compile)
  string(REPLACE ";" "," sanitizers "${sanitizers}")
  add_compile_options(-fsanitize=${sanitizers} ${extra_compile} -fno-omit-frame-pointer
                      -fno-optimize-sibling-calls -g1)
  add_link_options(-fsanitize=${sanitizers})
  if(sanitizers MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
  # The defaults (options and suppression files) go into every executable:
  # the sanitizer runtimes look the __*_default_* hooks up in the program.
  add_library(qocnet_sanitizer_defaults OBJECT ${QOCNET_SANITIZER_DEFAULTS})
  target_compile_definitions(qocnet_sanitizer_defaults PRIVATE
    QOCNET_SANITIZER_DIR="${PROJECT_SOURCE_DIR}/test/sanitizers")
  link_libraries("$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:qocnet_sanitizer_defaults>")
endfunction()

if(QOCNET_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "QOCNET_FUZZ needs clang for libFuzzer (got ${CMAKE_CXX_COMPILER_ID}); "
                        "configure a separate build dir with CC=clang-14 CXX=clang++-14 (scripts/fuzz does)")
  endif()
  if(QOCNET_SANITIZE AND NOT QOCNET_SANITIZE STREQUAL "address,undefined")
    message(FATAL_ERROR "QOCNET_FUZZ builds with address,undefined; leave QOCNET_SANITIZE empty")
  endif()
  # fuzzer-no-link: coverage feedback from the library too; fuzzer targets
  # add -fsanitize=fuzzer (libFuzzer's main) in fuzz/CMakeLists.txt.
  _qocnet_sanitize_all("address,undefined" "-fsanitize=fuzzer-no-link;-O1")
  # The fuzzers build only the library layers; the rest needs gcc-only flags
  # or is not fuzzed.
  set(QOCNET_BUILD_TESTS OFF CACHE BOOL "" FORCE)
  set(QOCNET_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
  set(QOCNET_BUILD_BENCH OFF CACHE BOOL "" FORCE)
elseif(QOCNET_SANITIZE)
  _qocnet_sanitize_all("${QOCNET_SANITIZE}" "-O1")
endif()
