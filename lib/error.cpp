// SPDX-License-Identifier: Apache-2.0
#include "qocnet/error.hpp"

#include <cstring>

namespace qocnet {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::not_found: return "not_found";
    case Errc::already_exists: return "already_exists";
    case Errc::failed_precondition: return "failed_precondition";
    case Errc::permission_denied: return "permission_denied";
    case Errc::resource_exhausted: return "resource_exhausted";
    case Errc::unavailable: return "unavailable";
    case Errc::internal: return "internal";
  }
  return "unknown";
}

std::string Error::to_string() const {
  std::string s = std::string(qocnet::to_string(code)) + ": " + message;
  if (sys_errno != 0)
    s += " (errno " + std::to_string(sys_errno) + ": " + std::strerror(sys_errno) + ")";
  if (!fix.empty()) s += "\n  fix: " + fix;
  if (!detail.empty()) {
    s += "\n";
    s += detail;
    if (s.back() == '\n') s.pop_back();
  }
  return s;
}

Error& Error::context(const std::string& what) {
  message = what + ": " + message;
  return *this;
}

Error make_error(Errc code, std::string message, std::string fix, int sys_errno) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  e.fix = std::move(fix);
  e.sys_errno = sys_errno < 0 ? -sys_errno : sys_errno;
  return e;
}

}  // namespace qocnet
