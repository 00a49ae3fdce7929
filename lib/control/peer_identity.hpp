// SPDX-License-Identifier: Apache-2.0
// qocnet::control -- who a local caller is, from the kernel's word alone.
//
// A computation process reaches qocnetd over the process socket; the socket's
// SO_PEERCRED gives its pid, uid and gid. From the pid qocnetd reads the
// process's network namespace and cgroup (its identity, for the stream
// allowlist), and finds in that namespace the interface whose veth peer lives
// in qocnetd's own namespace (its attachment: where its copies go). Nothing
// the caller says enters either: a container cannot name another's address.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet::control {

struct PeerIdentity {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::uint64_t netns_inode = 0;  // inode of /proc/PID/ns/net
  std::string netns_name;         // NAME if /run/netns/NAME is that namespace; empty otherwise
  std::string cgroup;             // the cgroup v2 path ("0::/PATH" in /proc/PID/cgroup); empty if none
  bool same_netns = false;        // the caller shares qocnetd's network namespace
  // An open fd of the peer's network namespace, when the caller already holds
  // one (qocnetd opens it as the peer connects, before its pid could be
  // reused): find_attachment then enters that namespace instead of
  // /proc/PID/ns/net. -1: use the pid. Not owned.
  int netns_fd = -1;
};

// NAME if /run/netns/NAME is the namespace `ns` (compared by st_dev, st_ino); "" if none.
std::string netns_name_of(const struct stat& ns);

// Reads the identity of process `pid` (credentials as SO_PEERCRED gave them).
// not_found if the process is gone (it must stay alive during its call),
// also when it is a zombie; invalid_argument for pid <= 0 (SO_PEERCRED gives
// 0 when the caller's pid is not visible in qocnetd's pid namespace).
// Every file is read through one fd of /proc/PID, so all of it is one
// process's even if the pid is reused meanwhile. `same_netns` compares with
// the CALLING THREAD's namespace (/proc/thread-self/ns/net): call it from a
// thread in qocnetd's edge namespace.
Result<PeerIdentity> identify_peer(pid_t pid, uid_t uid, gid_t gid);

// The same from a pidfd (SO_PEERPIDFD, Linux 6.5; or pidfd_open), which names
// the process itself rather than its number: a caller that exits and whose
// pid is reused before qocnetd reads /proc cannot be mistaken for the new
// process. invalid_argument if `pidfd` is not a pidfd; not_found once the
// process has exited.
Result<PeerIdentity> identify_peer_pidfd(int pidfd, uid_t uid, gid_t gid);

// Where a process's copies go: its own interface, seen from both ends.
struct PeerAttachment {
  std::string edge_interface;          // the veth peer in qocnetd's namespace (ProcessSpec::port)
  int edge_ifindex = 0;
  std::string interface;               // the process-side interface, in its namespace ("eth0")
  int ifindex = 0;
  std::string mac;                     // the process-side MAC, "02:00:00:00:00:01"
  std::vector<std::string> ipv4;       // the process-side IPv4 addresses, primary first
  std::vector<std::string> ipv6;       // its global/ULA IPv6 addresses (no link-local)
};

// Finds, in the peer's network namespace, the veth interface whose other end
// is an interface of the calling thread's namespace, and checks the pairing
// from both sides (each end's peer ifindex and link namespace), so an
// interface made inside the container cannot pass for one of the edge's.
//   `interface`: the process-side name to take when several qualify; empty:
//                exactly one must qualify (else failed_precondition naming them).
// failed_precondition when the peer shares qocnetd's namespace or has no such
// interface, naming what was found and the fix; not_found when `interface`
// does not exist there, or the process has exited or is no longer in the
// namespace `peer` recorded (netns_inode).
//
// The pairing, with e/P the edge-side/process-side ifindexes: P is a veth with
// IFLA_LINK = e and IFLA_LINK_NETNSID = the id the peer's namespace gives the
// edge's (RTM_GETNSID asked in the peer's namespace), and the edge's e is a
// veth with IFLA_LINK = P and IFLA_LINK_NETNSID = the id the edge's namespace
// gives the peer's. A veth pair made inside the container, or to a third
// namespace, fails whatever its ifindexes.
//
// The peer's namespace is read through a NETLINK_ROUTE socket that a
// short-lived thread makes there (setns in that thread only); the calling
// thread and all others stay where they are. Needs CAP_SYS_ADMIN (setns) and
// read access to /proc/PID/ns/net (root). No gRPC; blocking (a thread start
// and five netlink round trips); every netlink reply is bounded (2 s, 32 MiB)
// and only the kernel's is read.
Result<PeerAttachment> find_attachment(const PeerIdentity& peer, const std::string& interface = "");

}  // namespace qocnet::control
