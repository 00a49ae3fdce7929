// SPDX-License-Identifier: Apache-2.0
// qocnet::control::rtnl -- the little of rtnetlink that peer identity needs:
// list a namespace's links and addresses, ask how a namespace numbers another
// (its nsid), and decide whether a link is a veth whose other end lives in
// qocnetd's namespace.
//
// The parsers are pure functions over bytes, bounded by the length they are
// given, and never trust a length field: a socket made in a container's
// namespace reads what that namespace's kernel says, but the container is
// the party being identified, so every byte is checked (and testable, and
// fuzzable, without root).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fd.hpp"
#include "qocnet/error.hpp"

namespace qocnet::control::rtnl {

// One RTM_NEWLINK.
struct Link {
  int ifindex = 0;
  std::string name;                   // IFLA_IFNAME
  std::string kind;                   // IFLA_LINKINFO/IFLA_INFO_KIND ("veth"); empty if none
  std::vector<std::uint8_t> address;  // IFLA_ADDRESS (the MAC of an Ethernet link)
  std::optional<int> link;            // IFLA_LINK: for a veth, its peer's ifindex
  std::optional<int> link_netnsid;    // IFLA_LINK_NETNSID: the peer's namespace, as this
                                      // namespace numbers it; absent when the peer is here
};

// One RTM_NEWADDR.
struct Address {
  int family = 0;  // AF_INET or AF_INET6
  int ifindex = 0;
  std::uint8_t prefixlen = 0;
  std::uint8_t scope = 0;             // RT_SCOPE_*
  std::uint32_t flags = 0;            // IFA_F_* (IFA_FLAGS when present, else ifa_flags)
  std::vector<std::uint8_t> local;    // IFA_LOCAL, else IFA_ADDRESS (4 or 16 bytes)
};

// What a run of messages said about its dump.
struct DumpStatus {
  bool done = false;         // NLMSG_DONE (or an ack of 0) was seen
  bool interrupted = false;  // a message carried NLM_F_DUMP_INTR: the dump may be inconsistent
};

// Parse a run of netlink messages (one or more recv()s, concatenated),
// appending each RTM_NEWLINK / RTM_NEWADDR to `out`. `seq` != 0: messages
// with another sequence number are skipped. Errors: a malformed message or
// attribute (internal), NLMSG_ERROR with an errno (internal, errno set).
Result<DumpStatus> parse_links(const std::uint8_t* data, std::size_t len, std::vector<Link>& out,
                               std::uint32_t seq = 0);
Result<DumpStatus> parse_addresses(const std::uint8_t* data, std::size_t len,
                                   std::vector<Address>& out, std::uint32_t seq = 0);
// The NETNSA_NSID of the RTM_NEWNSID among the messages: -1 when the namespace
// has no id for the other one. internal when there is none or it is malformed.
Result<int> parse_nsid(const std::uint8_t* data, std::size_t len, std::uint32_t seq = 0);

// Whether a link of the process's namespace is a veth whose other end is in
// the edge's (qocnetd's) namespace, checked from both ends.
enum class Pairing {
  qualifies,
  not_veth,               // no veth (loopback, macvlan, a tunnel, ...)
  peer_here,              // a veth whose other end is in the same namespace
  peer_elsewhere,         // its other end is in a namespace that is not the edge's
  no_edge_end,            // the edge has no veth with the ifindex it names
  edge_end_disagrees,     // the edge's veth with that ifindex is paired with something else
};
const char* describe(Pairing p) noexcept;

// `process_nsid_of_edge`: the nsid the process's namespace gives the edge's
// (-1: none); `edge_nsid_of_process`: the nsid the edge's namespace gives the
// process's. `edge_end` is set to the edge's link when the pairing qualifies.
Pairing classify(const Link& process_link, const std::vector<Link>& edge_links,
                 int process_nsid_of_edge, int edge_nsid_of_process,
                 const Link** edge_end = nullptr);

// A NETLINK_ROUTE socket. It keeps the namespace it was made in, whatever
// namespace its user's thread is in later. Only messages from the kernel
// (sender port 0) with this socket's sequence number are read: a process in
// the socket's namespace with CAP_NET_ADMIN can send to it too.
class Socket {
 public:
  // In the calling thread's namespace.
  static Result<Socket> open();
  // In the namespace `netns_fd` names, made by a short-lived thread that
  // enters it; the calling thread never changes namespace.
  static Result<Socket> open_in(int netns_fd);

  Result<std::vector<Link>> links();
  // The one link with this ifindex (not_found when there is none).
  Result<Link> link(int ifindex);
  Result<std::vector<Address>> addresses();
  // The nsid this socket's namespace gives the namespace `netns_fd`; -1 if none.
  Result<int> nsid_of(int netns_fd);

 private:
  explicit Socket(detail::UniqueFd fd) : fd_(std::move(fd)) {}
  // Sends `req` (its nlmsg_seq is filled in) and returns every message of the
  // reply, up to NLMSG_DONE / the ack when `dump`, else up to the first.
  Result<std::vector<std::uint8_t>> request(std::vector<std::uint8_t> req, bool dump);
  detail::UniqueFd fd_;
  std::uint32_t seq_ = 0;
};

}  // namespace qocnet::control::rtnl
