// SPDX-License-Identifier: Apache-2.0
// Network namespace helpers: identify the calling thread's namespace and
// enter another one for the duration of a scope.
#pragma once

#include <sys/types.h>

#include <string>

#include "fd.hpp"
#include "qocnet/error.hpp"

namespace qocnet::detail {

// Inode of the calling thread's network namespace (unique while it lives).
ino_t current_netns_inode();

// Opens the calling thread's network namespace (to return to it later).
Result<UniqueFd> open_current_netns();

// Enters the namespace `target` (an fd from open_current_netns or a
// /run/netns/NAME file) for the lifetime of the guard, then returns the thread
// to where it was. Entering the namespace the thread is already in is free.
class NetnsGuard {
 public:
  static Result<NetnsGuard> enter(int target_fd);
  static Result<NetnsGuard> enter(const std::string& path);
  NetnsGuard(NetnsGuard&&) noexcept;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  NetnsGuard() = default;
  UniqueFd back_;  // invalid when no switch was needed
};

}  // namespace qocnet::detail
