// SPDX-License-Identifier: Apache-2.0
// Finding and opening the compiler module, libqocnet-bcc.so (bcc_module.h):
// the one part of qocnet that links libbcc, LLVM and Clang. libqocnet opens it
// on the first compile only, so a process that never compiles never maps them.
#pragma once

#include <filesystem>
#include <vector>

#include "bcc_module.h"
#include "qocnet/error.hpp"

namespace qocnet::detail {

// The module's file name.
inline constexpr const char* kBccModuleName = "libqocnet-bcc.so";

// Where the module is looked for, in order. With `env_value` (the value of
// QOCNET_BCC_MODULE) set and not empty: that path only. Otherwise the build
// tree's module (where cmake built it for this libqocnet), then the installed
// one, <libdir>/qocnet/libqocnet-bcc.so.
std::vector<std::filesystem::path> bcc_module_candidates(const char* env_value);

// dlopen()s the candidates in order and returns the table of the first that
// is a shared object exporting qocnet_bcc_module and speaks this libqocnet's
// ABI version (QOCNET_BCC_ABI_VERSION). Otherwise an error naming every path
// tried and why it failed (missing, not loadable, not a qocnet module, another
// ABI version): `unavailable` when none exists, `failed_precondition` when one
// exists but was refused. `from_env` says the candidates came from
// QOCNET_BCC_MODULE (the fix then names it). Every call opens afresh; a
// refused module is closed again, an accepted one stays loaded for good.
Result<const qocnet_bcc_api*> open_bcc_module(const std::vector<std::filesystem::path>& candidates,
                                              bool from_env);

// The process's module: opened on the first call from QOCNET_BCC_MODULE or
// the default candidates, then kept. A failure is not remembered (the next
// compile looks again). Thread-safe.
Result<const qocnet_bcc_api*> bcc_module();

}  // namespace qocnet::detail
