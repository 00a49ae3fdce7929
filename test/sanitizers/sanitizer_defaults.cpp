// SPDX-License-Identifier: Apache-2.0
// Default options of the sanitizer runtimes, linked into every executable of
// a QOCNET_SANITIZE or QOCNET_FUZZ build (cmake/QocnetSanitize.cmake). The
// runtimes call these hooks at start-up; ASAN_OPTIONS, LSAN_OPTIONS and
// UBSAN_OPTIONS in the environment still override them option by option.
// The suppression files name third-party frames only (docs/TESTING.md).

#ifndef QOCNET_SANITIZER_DIR
#error "QOCNET_SANITIZER_DIR (test/sanitizers) must be defined by the build"
#endif

extern "C" {

// Used by the runtimes only; declared here so -Wmissing-declarations is quiet.
const char* __asan_default_options();
const char* __lsan_default_options();
const char* __lsan_default_suppressions();
const char* __ubsan_default_options();

const char* __asan_default_options() {
  return "detect_leaks=1:strict_string_checks=1:"
         "detect_stack_use_after_return=1:check_initialization_order=1:"
         "halt_on_error=1:print_suppressions=0";
}

const char* __lsan_default_options() {
  return "suppressions=" QOCNET_SANITIZER_DIR "/lsan.supp:print_suppressions=0";
}

const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:suppressions=" QOCNET_SANITIZER_DIR "/ubsan.supp";
}

}  // extern "C"
