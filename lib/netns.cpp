// SPDX-License-Identifier: Apache-2.0
#include "netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace qocnet::detail {

namespace {
constexpr const char* kSelfNetns = "/proc/thread-self/ns/net";

ino_t inode_of_fd(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}
}  // namespace

ino_t current_netns_inode() {
  struct stat st {};
  return ::stat(kSelfNetns, &st) == 0 ? st.st_ino : 0;
}

Result<UniqueFd> open_current_netns() {
  int fd = ::open(kSelfNetns, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(Errc::internal, std::string("cannot open ") + kSelfNetns,
                      "check that /proc is mounted", errno);
  return UniqueFd(fd);
}

Result<NetnsGuard> NetnsGuard::enter(int target_fd) {
  NetnsGuard g;
  if (inode_of_fd(target_fd) == current_netns_inode()) return g;
  QOCNET_ASSIGN(back, open_current_netns());
  if (::setns(target_fd, CLONE_NEWNET) != 0)
    return make_error(errno == EPERM ? Errc::permission_denied : Errc::internal,
                      "cannot enter network namespace",
                      "entering a namespace needs CAP_SYS_ADMIN (run as root)", errno);
  g.back_ = std::move(back);
  return g;
}

Result<NetnsGuard> NetnsGuard::enter(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return make_error(Errc::not_found, "network namespace " + path + " cannot be opened",
                      "create it with `ip netns add NAME` (files live in /run/netns)", errno);
  return enter(fd.get());
}

NetnsGuard::NetnsGuard(NetnsGuard&& o) noexcept : back_(std::move(o.back_)) {}

NetnsGuard::~NetnsGuard() {
  if (back_.valid()) (void)::setns(back_.get(), CLONE_NEWNET);
}

}  // namespace qocnet::detail
