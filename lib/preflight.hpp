// SPDX-License-Identifier: Apache-2.0
// Checks made before touching the kernel, each failing with an error that
// names the cause and the fix.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet::detail {

// Loading and attaching programs needs CAP_BPF (or CAP_SYS_ADMIN),
// CAP_NET_ADMIN and CAP_PERFMON (or CAP_SYS_ADMIN) in the effective set.
Status check_privileges();

// The kernel headers libbcc will compile against: `explicit_dir` if given,
// else $BCC_KERNEL_SOURCE, else /lib/modules/$(uname -r)/build (or the
// kernel's built-in /sys/kernel/kheaders.tar.xz). Returns the directory used
// (empty for kheaders).
Result<std::filesystem::path> check_kernel_headers(const std::filesystem::path& explicit_dir);

// An interface name the kernel can hold (1-15 characters, no '/' or space);
// invalid_argument otherwise.
Status check_interface_name(const std::string& name);
// Resolves an interface name in the calling thread's network namespace.
Result<unsigned> resolve_interface(const std::string& name);

// Name of an ifindex in the calling thread's namespace ("ifindex N" if gone).
std::string interface_name(unsigned ifindex);

}  // namespace qocnet::detail
