// SPDX-License-Identifier: Apache-2.0
#include "preflight.hpp"

#include <linux/capability.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace qocnet::detail {

namespace fs = std::filesystem;

namespace {

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

bool has_cap(const __user_cap_data_struct (&data)[2], int cap) {
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

bool headers_usable(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "include", ec) &&
         (fs::exists(dir / "Makefile", ec) || fs::exists(dir / "include/linux", ec));
}

}  // namespace

Status check_privileges() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0)
    return make_error(Errc::internal, "cannot read this process's capabilities (capget)", {}, errno);
  const bool admin = has_cap(data, CAP_SYS_ADMIN);
  std::string missing;
  auto need = [&](bool ok, const char* name) {
    if (ok) return;
    if (!missing.empty()) missing += ", ";
    missing += name;
  };
  need(has_cap(data, CAP_BPF) || admin, "CAP_BPF");
  need(has_cap(data, CAP_NET_ADMIN), "CAP_NET_ADMIN");
  need(has_cap(data, CAP_PERFMON) || admin, "CAP_PERFMON");
  if (missing.empty()) return {};
  std::string who = ::geteuid() == 0 ? "this root process lacks " : "not running as root; missing ";
  return make_error(Errc::permission_denied,
                    "loading qocnet's datapath needs privileges: " + who + missing,
                    "run as root (sudo), or grant the capabilities: "
                    "setcap cap_bpf,cap_net_admin,cap_perfmon+ep <program>");
}

Result<fs::path> check_kernel_headers(const fs::path& explicit_dir) {
  std::vector<fs::path> tried;
  auto try_dir = [&](const fs::path& d) {
    tried.push_back(d);
    return headers_usable(d);
  };
  if (!explicit_dir.empty()) {
    if (try_dir(explicit_dir)) return explicit_dir;
  } else if (const char* env = std::getenv("BCC_KERNEL_SOURCE"); env && *env) {
    if (try_dir(env)) return fs::path(env);
  } else {
    utsname u{};
    ::uname(&u);
    fs::path build = fs::path("/lib/modules") / u.release / "build";
    if (try_dir(build)) return build;
    std::error_code ec;
    if (fs::exists("/sys/kernel/kheaders.tar.xz", ec)) return fs::path();
    tried.emplace_back("/sys/kernel/kheaders.tar.xz");
  }
  std::string list;
  for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p.string();
  return make_error(Errc::unavailable,
                    "kernel headers not found for the running kernel; tried: " + list,
                    "run scripts/bootstrap as root (installs linux-headers-amd64 and links "
                    "/lib/modules/$(uname -r)/build and source to it), or point "
                    "BCC_KERNEL_SOURCE / EdgeOptions::kernel_headers at a kernel headers tree");
}

Status check_interface_name(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find_first_of("/: \t\n\r\v\f") != std::string::npos ||
      name.find('\0') != std::string::npos || name == "." || name == "..")
    return make_error(Errc::invalid_argument,
                      "'" + name + "' is not a valid interface name",
                      "interface names are 1-15 characters without '/', ':' or spaces");
  return {};
}

Result<unsigned> resolve_interface(const std::string& name) {
  QOCNET_TRY(check_interface_name(name));
  unsigned idx = ::if_nametoindex(name.c_str());
  if (idx == 0)
    return make_error(Errc::not_found,
                      "interface '" + name + "' does not exist in this network namespace",
                      "check the name with `ip link show` (in the namespace the edge runs in)",
                      errno);
  return idx;
}

std::string interface_name(unsigned ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (::if_indextoname(ifindex, buf)) return buf;
  return "ifindex " + std::to_string(ifindex);
}

}  // namespace qocnet::detail
