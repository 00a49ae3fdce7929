// SPDX-License-Identifier: Apache-2.0
#include "control/peer_identity.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "control/rtnl.hpp"
#include "fd.hpp"

namespace qocnet::control {

namespace {

using detail::UniqueFd;

constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";
constexpr const char* kNetnsDir = "/run/netns";
constexpr std::size_t kMaxCgroupFile = 64 * 1024;

std::string proc_dir(pid_t pid) { return "/proc/" + std::to_string(pid); }

Error gone(pid_t pid) {
  return make_error(Errc::not_found, "process " + std::to_string(pid) + " has exited",
                    "the caller must stay alive until its call returns");
}

// Opens /proc/PID/ns/net relative to `dir` (an fd of /proc/PID, so that every
// file read belongs to the same process even if the pid is reused).
Result<UniqueFd> open_netns(int dir, pid_t pid) {
  UniqueFd fd(::openat(dir, "ns/net", O_RDONLY | O_CLOEXEC));
  if (fd.valid()) return fd;
  const int err = errno;
  if (err == ENOENT || err == ESRCH) return gone(pid);  // a zombie has no namespaces
  return make_error(err == EACCES || err == EPERM ? Errc::permission_denied : Errc::internal,
                    "cannot open the network namespace of process " + std::to_string(pid),
                    "qocnetd needs root (CAP_SYS_PTRACE over its callers) and the host's /proc",
                    err);
}

Result<UniqueFd> open_proc(pid_t pid) {
  if (pid <= 0)
    return make_error(Errc::invalid_argument, "pid " + std::to_string(pid) + " names no process",
                      "pass the pid SO_PEERCRED gave for the caller; it is 0 when the caller's "
                      "pid is not visible in qocnetd's pid namespace (run qocnetd in the host's)");
  UniqueFd dir(::open(proc_dir(pid).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) return dir;
  if (errno == ENOENT || errno == ESRCH) return gone(pid);
  return make_error(Errc::internal, "cannot open " + proc_dir(pid),
                    "check that /proc is mounted and shows qocnetd's callers (the host's pid "
                    "namespace)", errno);
}

// The "0::PATH" line of /proc/PID/cgroup; empty when there is none.
std::string read_cgroup(int dir) {
  UniqueFd fd(::openat(dir, "cgroup", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return {};
  std::string text;
  char buf[4096];
  ssize_t n;
  while (text.size() < kMaxCgroupFile && (n = ::read(fd.get(), buf, sizeof buf)) > 0)
    text.append(buf, static_cast<std::size_t>(n));
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, 3, "0::") == 0) return text.substr(at + 3, end - at - 3);
    at = end + 1;
  }
  return {};
}

Result<struct stat> stat_fd(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return make_error(Errc::internal, "cannot stat " + what, {}, errno);
  return st;
}

Result<struct stat> thread_netns() {
  struct stat st {};
  if (::stat(kThreadNetns, &st) != 0)
    return make_error(Errc::internal, std::string("cannot stat ") + kThreadNetns,
                      "check that /proc is mounted", errno);
  return st;
}

std::string mac_string(const std::vector<std::uint8_t>& a) {
  std::string s;
  char b[4];
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::snprintf(b, sizeof b, i ? ":%02x" : "%02x", a[i]);
    s += b;
  }
  return s;
}

std::string ip_string(const rtnl::Address& a) {
  char b[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family, a.local.data(), b, sizeof b);
  return b;
}

bool link_local_v6(const std::vector<std::uint8_t>& a) {
  return a.size() == 16 && a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

std::string who(const PeerIdentity& peer) {
  return "process " + std::to_string(peer.pid) + " (network namespace " +
         (peer.netns_name.empty() ? "inode " + std::to_string(peer.netns_inode)
                                  : peer.netns_name) +
         ")";
}

const char* kVethFix =
    "give the process a veth pair with one end in its namespace and the other in the edge "
    "namespace qocnetd runs in (e.g. `ip link add eth0 type veth peer name eN netns EDGE` run "
    "in the process's namespace), or add it as an operator with AddProcess";

}  // namespace

std::string netns_name_of(const struct stat& ns) {
  DIR* d = ::opendir(kNetnsDir);
  if (!d) return {};
  std::string found;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::stat((std::string(kNetnsDir) + "/" + n).c_str(), &st) == 0 && st.st_dev == ns.st_dev &&
        st.st_ino == ns.st_ino) {
      found = n;
      break;
    }
  }
  ::closedir(d);
  return found;
}

Result<PeerIdentity> identify_peer(pid_t pid, uid_t uid, gid_t gid) {
  QOCNET_ASSIGN(dir, open_proc(pid));
  QOCNET_ASSIGN(ns, open_netns(dir.get(), pid));
  QOCNET_ASSIGN(ns_st, stat_fd(ns.get(), "the network namespace of process " + std::to_string(pid)));
  QOCNET_ASSIGN(self_st, thread_netns());
  PeerIdentity id;
  id.pid = pid;
  id.uid = uid;
  id.gid = gid;
  id.netns_inode = ns_st.st_ino;
  id.netns_name = netns_name_of(ns_st);
  id.cgroup = read_cgroup(dir.get());
  id.same_netns = ns_st.st_dev == self_st.st_dev && ns_st.st_ino == self_st.st_ino;
  // The cgroup was read after the namespace: if the process died in between,
  // the /proc/PID fd (not the pid) tells, and a reused pid cannot answer for it.
  struct stat alive {};
  if (::fstatat(dir.get(), "ns/net", &alive, 0) != 0) return gone(pid);
  return id;
}

Result<PeerIdentity> identify_peer_pidfd(int pidfd, uid_t uid, gid_t gid) {
  const std::string what = "fd " + std::to_string(pidfd);
  UniqueFd info(::open(("/proc/self/fdinfo/" + std::to_string(pidfd)).c_str(), O_RDONLY | O_CLOEXEC));
  if (!info.valid())
    return make_error(Errc::invalid_argument, what + " is not open",
                      "pass the pidfd SO_PEERPIDFD gave for the caller", errno);
  char buf[1024];
  ssize_t n = ::read(info.get(), buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = '\0';
  const char* at = n > 0 ? std::strstr(buf, "\nPid:") : nullptr;
  long pid = 0;
  if (!at || std::sscanf(at + 5, "%ld", &pid) != 1)
    return make_error(Errc::invalid_argument, what + " is not a pidfd",
                      "pass the pidfd SO_PEERPIDFD (or pidfd_open) gave for the caller");
  if (pid < 0)
    return make_error(Errc::not_found, "the process of pidfd " + std::to_string(pidfd) + " has exited",
                      "the caller must stay alive until its call returns");
  QOCNET_ASSIGN(id, identify_peer(static_cast<pid_t>(pid), uid, gid));
  // Still the pidfd's process (alive or a zombie, so its pid not reused):
  // what /proc/PID showed was this process. Signal 0 only asks whether it is
  // there: EPERM (a caller of another uid, and no CAP_KILL here) says it is.
  if (::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0 && errno != EPERM) return gone(id.pid);
  return id;
}

Result<PeerAttachment> find_attachment(const PeerIdentity& peer, const std::string& interface) {
  const std::string in_own_ns =
      who(peer) + " shares qocnetd's own network namespace";
  const char* own_ns_fix =
      "a process in qocnetd's own namespace has no veth of its own; run it in its own network "
      "namespace or add it as an operator with AddProcess";
  if (peer.same_netns) return make_error(Errc::failed_precondition, in_own_ns, own_ns_fix);

  UniqueFd peer_ns;
  if (peer.netns_fd >= 0) {
    // The namespace the caller held when it connected: no pid to reuse.
    peer_ns = UniqueFd(::fcntl(peer.netns_fd, F_DUPFD_CLOEXEC, 0));
    if (!peer_ns.valid())
      return make_error(Errc::internal, "cannot duplicate the namespace fd of " + who(peer), {}, errno);
  } else {
    QOCNET_ASSIGN(dir, open_proc(peer.pid));
    QOCNET_ASSIGN(opened, open_netns(dir.get(), peer.pid));
    peer_ns = std::move(opened);
  }
  QOCNET_ASSIGN(peer_st, stat_fd(peer_ns.get(), "the network namespace of " + who(peer)));
  if (peer_st.st_ino != peer.netns_inode)
    return make_error(Errc::not_found,
                      who(peer) + " is no longer in the namespace it was identified in (now inode " +
                          std::to_string(peer_st.st_ino) + ")",
                      "identify the caller again (identify_peer) in the same call");
  QOCNET_ASSIGN(self_st, thread_netns());
  if (peer_st.st_dev == self_st.st_dev && peer_st.st_ino == self_st.st_ino)
    return make_error(Errc::failed_precondition, in_own_ns, own_ns_fix);
  UniqueFd edge_ns(::open(kThreadNetns, O_RDONLY | O_CLOEXEC));
  if (!edge_ns.valid())
    return make_error(Errc::internal, std::string("cannot open ") + kThreadNetns, {}, errno);

  QOCNET_ASSIGN(edge_sock, rtnl::Socket::open());
  QOCNET_ASSIGN(peer_sock, rtnl::Socket::open_in(peer_ns.get()));
  // Links first: listing a veth whose peer is in another namespace makes the
  // kernel number that namespace, so the nsids asked next exist.
  QOCNET_ASSIGN(peer_links, peer_sock.links());
  QOCNET_ASSIGN(edge_links, edge_sock.links());
  QOCNET_ASSIGN(peer_nsid_of_edge, peer_sock.nsid_of(edge_ns.get()));
  QOCNET_ASSIGN(edge_nsid_of_peer, edge_sock.nsid_of(peer_ns.get()));

  struct Candidate {
    const rtnl::Link* process;
    const rtnl::Link* edge;
  };
  std::vector<Candidate> ok;
  std::string all;  // every interface of the namespace, with why it does not qualify
  const rtnl::Link* named = nullptr;
  rtnl::Pairing named_pairing = rtnl::Pairing::not_veth;
  for (const auto& l : peer_links) {
    const rtnl::Link* e = nullptr;
    auto p = rtnl::classify(l, edge_links, peer_nsid_of_edge, edge_nsid_of_peer, &e);
    if (p == rtnl::Pairing::qualifies) ok.push_back({&l, e});
    all += (all.empty() ? "" : ", ") + l.name + " (" +
           (p == rtnl::Pairing::qualifies ? "veth to " + e->name : rtnl::describe(p)) + ")";
    if (l.name == interface) {
      named = &l;
      named_pairing = p;
    }
  }
  auto list_ok = [&] {
    std::string s;
    for (const auto& c : ok) s += (s.empty() ? "" : ", ") + c.process->name + " (edge " + c.edge->name + ")";
    return s;
  };

  const Candidate* pick = nullptr;
  if (!interface.empty()) {
    if (!named)
      return make_error(Errc::not_found,
                        who(peer) + " has no interface '" + interface + "'; it has: " + all,
                        "name one of its interfaces that is a veth to the edge" +
                            (ok.empty() ? std::string() : " (" + list_ok() + ")"));
    if (named_pairing != rtnl::Pairing::qualifies)
      return make_error(Errc::failed_precondition,
                        "interface " + interface + " of " + who(peer) + " is " +
                            rtnl::describe(named_pairing),
                        ok.empty() ? std::string(kVethFix)
                                   : "name one whose other end is in the edge namespace: " + list_ok());
    for (const auto& c : ok)
      if (c.process == named) pick = &c;
  } else if (ok.empty()) {
    return make_error(Errc::failed_precondition,
                      who(peer) + " has no veth whose other end is in qocnetd's network namespace; "
                                  "its interfaces: " + all,
                      kVethFix);
  } else if (ok.size() > 1) {
    return make_error(Errc::failed_precondition,
                      who(peer) + " has " + std::to_string(ok.size()) +
                          " veths whose other end is in qocnetd's network namespace: " + list_ok(),
                      "name the one its copies go to by its interface name in the process's "
                      "namespace (e.g. \"" + ok.front().process->name + "\")");
  } else {
    pick = &ok.front();
  }

  PeerAttachment a;
  a.edge_interface = pick->edge->name;
  a.edge_ifindex = pick->edge->ifindex;
  a.interface = pick->process->name;
  a.ifindex = pick->process->ifindex;
  a.mac = mac_string(pick->process->address);

  QOCNET_ASSIGN(addrs, peer_sock.addresses());
  std::vector<std::string> secondary_v4;
  for (const auto& ad : addrs) {
    if (ad.ifindex != a.ifindex) continue;
    if (ad.family == AF_INET) {
      (ad.flags & IFA_F_SECONDARY ? secondary_v4 : a.ipv4).push_back(ip_string(ad));
    } else if (ad.family == AF_INET6) {
      if (link_local_v6(ad.local) || ad.scope != RT_SCOPE_UNIVERSE || (ad.flags & IFA_F_DADFAILED))
        continue;
      a.ipv6.push_back(ip_string(ad));
    }
  }
  a.ipv4.insert(a.ipv4.end(), secondary_v4.begin(), secondary_v4.end());
  return a;
}

}  // namespace qocnet::control
