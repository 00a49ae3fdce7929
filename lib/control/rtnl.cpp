// SPDX-License-Identifier: Apache-2.0
#include "control/rtnl.hpp"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <system_error>
#include <thread>

namespace qocnet::control::rtnl {

namespace {

constexpr std::size_t kMaxAddrLen = 32;                    // MAX_ADDR_LEN
constexpr std::size_t kMaxReplyBytes = 32u << 20;          // a namespace with ~20 000 links
constexpr std::chrono::milliseconds kReplyTimeout{2000};   // the kernel answers in microseconds
constexpr int kDumpAttempts = 3;                           // NLM_F_DUMP_INTR retries

Error malformed(const std::string& what) {
  return make_error(Errc::internal, "malformed rtnetlink message: " + what,
                    "this is a kernel/qocnet mismatch; report it with the kernel version");
}

std::size_t align4(std::size_t n) { return (n + 3u) & ~std::size_t{3}; }

// Calls fn(type, flags, body, body_len) for every data message with sequence
// number `seq` (any when 0), stopping at NLMSG_DONE or an ack.
template <class Fn>
Result<DumpStatus> walk_messages(const std::uint8_t* data, std::size_t len, std::uint32_t seq,
                                 Fn&& fn) {
  DumpStatus st;
  std::size_t off = 0;
  if (data == nullptr && len != 0) return malformed("no buffer");
  while (off < len) {
    if (len - off < sizeof(nlmsghdr))
      return malformed(std::to_string(len - off) + " trailing bytes, too few for a header");
    nlmsghdr h;
    std::memcpy(&h, data + off, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
      return malformed("message length " + std::to_string(h.nlmsg_len) + " at offset " +
                       std::to_string(off) + " with " + std::to_string(len - off) + " bytes left");
    const std::uint8_t* body = data + off + sizeof h;
    const std::size_t body_len = h.nlmsg_len - sizeof h;
    off += std::min(align4(h.nlmsg_len), len - off);
    if (seq != 0 && h.nlmsg_seq != seq) continue;
    if (h.nlmsg_flags & NLM_F_DUMP_INTR) st.interrupted = true;
    if (h.nlmsg_type == NLMSG_NOOP) continue;
    if (h.nlmsg_type == NLMSG_OVERRUN) return malformed("NLMSG_OVERRUN");
    if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
      int err = 0;
      if (body_len >= sizeof err) std::memcpy(&err, body, sizeof err);
      else if (h.nlmsg_type == NLMSG_ERROR) return malformed("NLMSG_ERROR without its error");
      if (err > 0 || err == INT_MIN) return malformed("error code " + std::to_string(err));
      if (err < 0)
        return make_error(Errc::internal, "the kernel refused an rtnetlink request", {}, -err);
      st.done = true;
      return st;
    }
    QOCNET_TRY(fn(h.nlmsg_type, h.nlmsg_flags, body, body_len));
  }
  return st;
}

// Calls fn(type, payload, payload_len) for every attribute in [p, p+len).
template <class Fn>
Status walk_attrs(const std::uint8_t* p, std::size_t len, Fn&& fn) {
  std::size_t off = 0;
  while (off < len) {
    if (len - off < sizeof(rtattr))
      return malformed(std::to_string(len - off) + " trailing bytes, too few for an attribute");
    rtattr a;
    std::memcpy(&a, p + off, sizeof a);
    if (a.rta_len < sizeof a || a.rta_len > len - off)
      return malformed("attribute " + std::to_string(a.rta_type) + " of length " +
                       std::to_string(a.rta_len) + " with " + std::to_string(len - off) +
                       " bytes left");
    QOCNET_TRY(fn(static_cast<unsigned>(a.rta_type & NLA_TYPE_MASK), p + off + sizeof a,
                  a.rta_len - sizeof a));
    off += std::min(align4(a.rta_len), len - off);
  }
  return {};
}

Result<std::int32_t> read_s32(const char* what, const std::uint8_t* p, std::size_t len) {
  if (len != sizeof(std::int32_t))
    return malformed(std::string(what) + " of " + std::to_string(len) + " bytes, not 4");
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Result<std::string> read_string(const char* what, const std::uint8_t* p, std::size_t len,
                                std::size_t max) {
  const auto* end = static_cast<const std::uint8_t*>(std::memchr(p, 0, len));
  std::size_t n = end ? static_cast<std::size_t>(end - p) : len;
  if (n > max) return malformed(std::string(what) + " longer than " + std::to_string(max) + " bytes");
  return std::string(reinterpret_cast<const char*>(p), n);
}

Result<Link> parse_link(const std::uint8_t* body, std::size_t len) {
  if (len < sizeof(ifinfomsg)) return malformed("RTM_NEWLINK shorter than its ifinfomsg");
  ifinfomsg ifi;
  std::memcpy(&ifi, body, sizeof ifi);
  Link l;
  l.ifindex = ifi.ifi_index;
  if (l.ifindex <= 0) return malformed("link with ifindex " + std::to_string(l.ifindex));
  const std::size_t at = align4(sizeof ifi);
  QOCNET_TRY(walk_attrs(body + std::min(at, len), len - std::min(at, len),
                        [&](unsigned type, const std::uint8_t* p, std::size_t n) -> Status {
    switch (type) {
      case IFLA_IFNAME: {
        QOCNET_ASSIGN(s, read_string("IFLA_IFNAME", p, n, IFNAMSIZ - 1));
        l.name = std::move(s);
        break;
      }
      case IFLA_ADDRESS:
        if (n > kMaxAddrLen) return malformed("IFLA_ADDRESS of " + std::to_string(n) + " bytes");
        l.address.assign(p, p + n);
        break;
      case IFLA_LINK: {
        QOCNET_ASSIGN(v, read_s32("IFLA_LINK", p, n));
        l.link = v;
        break;
      }
      case IFLA_LINK_NETNSID: {
        QOCNET_ASSIGN(v, read_s32("IFLA_LINK_NETNSID", p, n));
        l.link_netnsid = v;
        break;
      }
      case IFLA_LINKINFO:
        return walk_attrs(p, n, [&](unsigned t, const std::uint8_t* q, std::size_t m) -> Status {
          if (t != IFLA_INFO_KIND) return {};
          QOCNET_ASSIGN(s, read_string("IFLA_INFO_KIND", q, m, 64));
          l.kind = std::move(s);
          return {};
        });
      default:
        break;
    }
    return {};
  }));
  if (l.name.empty()) return malformed("link " + std::to_string(l.ifindex) + " without a name");
  return l;
}

Result<std::optional<Address>> parse_address(const std::uint8_t* body, std::size_t len) {
  if (len < sizeof(ifaddrmsg)) return malformed("RTM_NEWADDR shorter than its ifaddrmsg");
  ifaddrmsg ifa;
  std::memcpy(&ifa, body, sizeof ifa);
  if (ifa.ifa_family != AF_INET && ifa.ifa_family != AF_INET6) return std::optional<Address>();
  const std::size_t want = ifa.ifa_family == AF_INET ? 4 : 16;
  Address a;
  a.family = ifa.ifa_family;
  a.ifindex = static_cast<int>(ifa.ifa_index);
  a.prefixlen = ifa.ifa_prefixlen;
  a.scope = ifa.ifa_scope;
  a.flags = ifa.ifa_flags;
  std::vector<std::uint8_t> local, address;
  const std::size_t at = align4(sizeof ifa);
  QOCNET_TRY(walk_attrs(body + std::min(at, len), len - std::min(at, len),
                        [&](unsigned type, const std::uint8_t* p, std::size_t n) -> Status {
    if (type == IFA_LOCAL || type == IFA_ADDRESS) {
      if (n != want)
        return malformed(std::string(type == IFA_LOCAL ? "IFA_LOCAL" : "IFA_ADDRESS") + " of " +
                         std::to_string(n) + " bytes for family " + std::to_string(a.family));
      (type == IFA_LOCAL ? local : address).assign(p, p + n);
    } else if (type == IFA_FLAGS) {
      QOCNET_ASSIGN(v, read_s32("IFA_FLAGS", p, n));
      a.flags = static_cast<std::uint32_t>(v);
    }
    return {};
  }));
  a.local = !local.empty() ? std::move(local) : std::move(address);
  if (a.local.empty())
    return malformed("address on ifindex " + std::to_string(a.ifindex) + " without IFA_LOCAL/IFA_ADDRESS");
  return std::optional<Address>(std::move(a));
}

std::vector<std::uint8_t> new_request(std::uint16_t type, std::uint16_t flags, const void* head,
                                      std::size_t head_len) {
  std::vector<std::uint8_t> m(sizeof(nlmsghdr) + align4(head_len), 0);
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  std::memcpy(m.data(), &h, sizeof h);
  std::memcpy(m.data() + sizeof h, head, head_len);
  return m;
}

void add_u32(std::vector<std::uint8_t>& m, unsigned short type, std::uint32_t v) {
  rtattr a{};
  a.rta_len = static_cast<unsigned short>(sizeof a + sizeof v);
  a.rta_type = type;
  const std::size_t at = m.size();
  m.resize(at + align4(a.rta_len), 0);
  std::memcpy(m.data() + at, &a, sizeof a);
  std::memcpy(m.data() + at + sizeof a, &v, sizeof v);
}

}  // namespace

Result<DumpStatus> parse_links(const std::uint8_t* data, std::size_t len, std::vector<Link>& out,
                               std::uint32_t seq) {
  return walk_messages(data, len, seq,
                       [&](std::uint16_t type, std::uint16_t, const std::uint8_t* b,
                           std::size_t n) -> Status {
    if (type != RTM_NEWLINK) return {};
    QOCNET_ASSIGN(l, parse_link(b, n));
    out.push_back(std::move(l));
    return {};
  });
}

Result<DumpStatus> parse_addresses(const std::uint8_t* data, std::size_t len,
                                   std::vector<Address>& out, std::uint32_t seq) {
  return walk_messages(data, len, seq,
                       [&](std::uint16_t type, std::uint16_t, const std::uint8_t* b,
                           std::size_t n) -> Status {
    if (type != RTM_NEWADDR) return {};
    QOCNET_ASSIGN(a, parse_address(b, n));
    if (a) out.push_back(std::move(*a));
    return {};
  });
}

Result<int> parse_nsid(const std::uint8_t* data, std::size_t len, std::uint32_t seq) {
  std::optional<int> nsid;
  QOCNET_TRY(walk_messages(data, len, seq,
                           [&](std::uint16_t type, std::uint16_t, const std::uint8_t* b,
                               std::size_t n) -> Status {
    if (type != RTM_NEWNSID || nsid) return {};
    const std::size_t at = align4(sizeof(rtgenmsg));
    if (n < at) return malformed("RTM_NEWNSID shorter than its rtgenmsg");
    return walk_attrs(b + at, n - at, [&](unsigned t, const std::uint8_t* p, std::size_t m) -> Status {
      if (t != NETNSA_NSID) return {};
      QOCNET_ASSIGN(v, read_s32("NETNSA_NSID", p, m));
      nsid = v < 0 ? -1 : v;
      return {};
    });
  }));
  if (!nsid) return malformed("no RTM_NEWNSID with NETNSA_NSID in the reply");
  return *nsid;
}

const char* describe(Pairing p) noexcept {
  switch (p) {
    case Pairing::qualifies: return "a veth whose other end is in qocnetd's namespace";
    case Pairing::not_veth: return "not a veth";
    case Pairing::peer_here: return "a veth whose other end is in the same namespace";
    case Pairing::peer_elsewhere: return "a veth whose other end is in another namespace, not qocnetd's";
    case Pairing::no_edge_end: return "a veth whose other end qocnetd's namespace does not have";
    case Pairing::edge_end_disagrees:
      return "a veth naming an interface of qocnetd's namespace that is not its other end";
  }
  return "unknown";
}

Pairing classify(const Link& p, const std::vector<Link>& edge_links, int process_nsid_of_edge,
                 int edge_nsid_of_process, const Link** edge_end) {
  if (edge_end) *edge_end = nullptr;
  if (p.kind != "veth") return Pairing::not_veth;
  if (!p.link_netnsid) return Pairing::peer_here;
  if (process_nsid_of_edge < 0 || *p.link_netnsid != process_nsid_of_edge)
    return Pairing::peer_elsewhere;
  if (!p.link) return Pairing::no_edge_end;
  auto e = std::find_if(edge_links.begin(), edge_links.end(),
                        [&](const Link& l) { return l.ifindex == *p.link; });
  if (e == edge_links.end()) return Pairing::no_edge_end;
  if (e->kind != "veth" || !e->link || *e->link != p.ifindex || !e->link_netnsid ||
      edge_nsid_of_process < 0 || *e->link_netnsid != edge_nsid_of_process)
    return Pairing::edge_end_disagrees;
  if (edge_end) *edge_end = &*e;
  return Pairing::qualifies;
}

// --- the socket -------------------------------------------------------------

Result<Socket> Socket::open() {
  detail::UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid())
    return make_error(Errc::internal, "cannot open a NETLINK_ROUTE socket", {}, errno);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
    return make_error(Errc::internal, "cannot bind a NETLINK_ROUTE socket", {}, errno);
  return Socket(std::move(fd));
}

Result<Socket> Socket::open_in(int netns_fd) {
  std::optional<Result<Socket>> out;
  try {
    // setns() changes only this thread, which ends at once; the socket it
    // makes stays in the namespace for good.
    std::thread t([&] {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) {
        int err = errno;
        out.emplace(make_error(err == EPERM ? Errc::permission_denied : Errc::internal,
                               "cannot enter the caller's network namespace",
                               "qocnetd needs CAP_SYS_ADMIN (run it as root)", err));
        return;
      }
      out.emplace(open());
    });
    t.join();
  } catch (const std::system_error& e) {
    return make_error(Errc::resource_exhausted, "cannot start a thread to enter a namespace",
                      "raise the process's thread limit", e.code().value());
  }
  return std::move(*out);
}

Result<std::vector<std::uint8_t>> Socket::request(std::vector<std::uint8_t> req, bool dump) {
  const std::uint32_t seq = ++seq_ == 0 ? ++seq_ : seq_;
  nlmsghdr h;
  std::memcpy(&h, req.data(), sizeof h);
  h.nlmsg_len = static_cast<std::uint32_t>(req.size());
  h.nlmsg_seq = seq;
  std::memcpy(req.data(), &h, sizeof h);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0)
    return make_error(Errc::internal, "cannot send an rtnetlink request", {}, errno);

  const auto deadline = std::chrono::steady_clock::now() + kReplyTimeout;
  std::vector<std::uint8_t> all, chunk;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_.get(), POLLIN, 0};
    int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return make_error(Errc::internal, "cannot wait for an rtnetlink reply", {}, errno);
    if (r == 0)
      return make_error(Errc::unavailable, "the kernel did not answer an rtnetlink request in " +
                                               std::to_string(kReplyTimeout.count()) + " ms",
                        "retry; the host may be overloaded");
    ssize_t want = ::recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (want < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (want < 0) return make_error(Errc::internal, "cannot read an rtnetlink reply", {}, errno);
    chunk.resize(static_cast<std::size_t>(std::max<ssize_t>(want, 1)));
    sockaddr_nl from{};
    iovec iov{chunk.data(), chunk.size()};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = ::recvmsg(fd_.get(), &mh, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return make_error(Errc::internal, "cannot read an rtnetlink reply", {}, errno);
    if (from.nl_pid != 0) continue;  // not the kernel: another process in that namespace
    if (mh.msg_flags & MSG_TRUNC) return malformed("a reply larger than its buffer");
    std::size_t ours = 0;
    QOCNET_ASSIGN(st, walk_messages(chunk.data(), static_cast<std::size_t>(n), seq,
                                    [&](std::uint16_t, std::uint16_t, const std::uint8_t*,
                                        std::size_t) -> Status {
                                      ++ours;
                                      return {};
                                    }));
    if (all.size() + static_cast<std::size_t>(n) > kMaxReplyBytes)
      return make_error(Errc::resource_exhausted,
                        "a namespace's rtnetlink dump exceeds " +
                            std::to_string(kMaxReplyBytes >> 20) + " MiB",
                        "the namespace has too many interfaces or addresses; remove some");
    all.insert(all.end(), chunk.begin(), chunk.begin() + n);
    if (dump ? st.done : ours > 0) return all;
  }
}

Result<std::vector<Link>> Socket::links() {
  for (int attempt = 0;; ++attempt) {
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    auto req = new_request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi);
    add_u32(req, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    QOCNET_ASSIGN(bytes, request(std::move(req), true));
    std::vector<Link> out;
    QOCNET_ASSIGN(st, parse_links(bytes.data(), bytes.size(), out, seq_));
    if (!st.interrupted) return out;
    if (attempt + 1 == kDumpAttempts)
      return make_error(Errc::unavailable, "a namespace's interfaces kept changing while listed",
                        "retry when the namespace is settled");
  }
}

Result<Link> Socket::link(int ifindex) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  auto req = new_request(RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
  add_u32(req, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  QOCNET_ASSIGN(bytes, request(std::move(req), false));
  std::vector<Link> out;
  QOCNET_TRY(parse_links(bytes.data(), bytes.size(), out, seq_));
  for (auto& l : out)
    if (l.ifindex == ifindex) return std::move(l);
  return make_error(Errc::not_found, "no interface with index " + std::to_string(ifindex),
                    "the interface went away; add it again");
}

Result<std::vector<Address>> Socket::addresses() {
  for (int attempt = 0;; ++attempt) {
    ifaddrmsg ifa{};
    ifa.ifa_family = AF_UNSPEC;
    QOCNET_ASSIGN(bytes, request(new_request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa,
                                             sizeof ifa), true));
    std::vector<Address> out;
    QOCNET_ASSIGN(st, parse_addresses(bytes.data(), bytes.size(), out, seq_));
    if (!st.interrupted) return out;
    if (attempt + 1 == kDumpAttempts)
      return make_error(Errc::unavailable, "a namespace's addresses kept changing while listed",
                        "retry when the namespace is settled");
  }
}

Result<int> Socket::nsid_of(int netns_fd) {
  rtgenmsg g{};
  g.rtgen_family = AF_UNSPEC;
  auto req = new_request(RTM_GETNSID, NLM_F_REQUEST, &g, sizeof g);
  add_u32(req, NETNSA_FD, static_cast<std::uint32_t>(netns_fd));
  QOCNET_ASSIGN(bytes, request(std::move(req), false));
  return parse_nsid(bytes.data(), bytes.size(), seq_);
}

}  // namespace qocnet::control::rtnl
