// SPDX-License-Identifier: Apache-2.0
// The rtnetlink parsers of peer identity (lib/control/rtnl.hpp), on messages
// built by hand: well-formed dumps, every truncation, corrupted lengths and
// attribute sizes, kernel errors; and the veth pairing rule, one condition
// at a time.
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "../support/check.hpp"
#include "control/rtnl.hpp"

using namespace qocnet;
using namespace qocnet::control::rtnl;

namespace {

using Bytes = std::vector<std::uint8_t>;

void pad4(Bytes& b) {
  while (b.size() % 4) b.push_back(0);
}

template <class T>
void put(Bytes& b, const T& v) {
  const std::size_t at = b.size();
  b.resize(at + sizeof v);
  std::memcpy(b.data() + at, &v, sizeof v);
}

Bytes attr(unsigned short type, const Bytes& payload) {
  Bytes b;
  rtattr a{};
  a.rta_len = static_cast<unsigned short>(sizeof a + payload.size());
  a.rta_type = type;
  put(b, a);
  b.insert(b.end(), payload.begin(), payload.end());
  pad4(b);
  return b;
}

Bytes s32(std::int32_t v) {
  Bytes b;
  put(b, v);
  return b;
}

Bytes str(const std::string& s) {
  Bytes b(s.begin(), s.end());
  b.push_back(0);
  return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const auto& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

Bytes message(std::uint16_t type, const Bytes& body, std::uint32_t seq = 7,
              std::uint16_t flags = NLM_F_MULTI) {
  Bytes b;
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(sizeof h + body.size());
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  put(b, h);
  b.insert(b.end(), body.begin(), body.end());
  pad4(b);
  return b;
}

Bytes link_msg(int ifindex, const Bytes& attrs, std::uint32_t seq = 7) {
  Bytes body;
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  put(body, ifi);
  body.insert(body.end(), attrs.begin(), attrs.end());
  return message(RTM_NEWLINK, body, seq);
}

Bytes veth_attrs(const std::string& name, int link, std::optional<int> netnsid) {
  Bytes a = cat({attr(IFLA_IFNAME, str(name)),
                 attr(IFLA_ADDRESS, Bytes{0x02, 0x78, 0, 0, 0, 0x02}),
                 attr(IFLA_LINK, s32(link)),
                 attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, str("veth")))});
  if (netnsid) a = cat({a, attr(IFLA_LINK_NETNSID, s32(*netnsid))});
  return a;
}

Bytes done_msg(std::uint32_t seq = 7, std::int32_t err = 0) { return message(NLMSG_DONE, s32(err), seq); }

Bytes error_msg(std::int32_t err, std::uint32_t seq = 7) {
  Bytes body = s32(err);
  nlmsghdr orig{};
  put(body, orig);
  return message(NLMSG_ERROR, body, seq, 0);
}

// A dump of lo and one veth, then DONE.
Bytes good_dump() {
  return cat({link_msg(1, attr(IFLA_IFNAME, str("lo"))), link_msg(20, veth_attrs("eth0", 10, 3)),
              done_msg()});
}

Result<DumpStatus> links(const Bytes& b, std::vector<Link>& out, std::uint32_t seq = 0) {
  return parse_links(b.data(), b.size(), out, seq);
}

void set_u32(Bytes& b, std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, sizeof v); }
void set_u16(Bytes& b, std::size_t at, std::uint16_t v) { std::memcpy(b.data() + at, &v, sizeof v); }

}  // namespace

TEST_CASE("parse_links reads a dump's links: name, MAC, kind, peer ifindex and netnsid", "[rtnl]") {
  std::vector<Link> out;
  auto st = links(good_dump(), out);
  REQUIRE_OK(st);
  CHECK(st->done);
  CHECK_FALSE(st->interrupted);
  REQUIRE(out.size() == 2);
  CHECK(out[0].ifindex == 1);
  CHECK(out[0].name == "lo");
  CHECK(out[0].kind.empty());
  CHECK_FALSE(out[0].link);
  CHECK_FALSE(out[0].link_netnsid);
  CHECK(out[1].ifindex == 20);
  CHECK(out[1].name == "eth0");
  CHECK(out[1].kind == "veth");
  CHECK(out[1].address == Bytes{0x02, 0x78, 0, 0, 0, 0x02});
  REQUIRE(out[1].link);
  CHECK(*out[1].link == 10);
  REQUIRE(out[1].link_netnsid);
  CHECK(*out[1].link_netnsid == 3);
}

TEST_CASE("parse_links: every truncation is an error or an unfinished dump, never a finished one",
          "[rtnl]") {
  const Bytes full = good_dump();
  for (std::size_t len = 0; len < full.size(); ++len) {
    // A copy of exactly `len` bytes, so reading past it would be caught by ASan.
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    std::vector<Link> out;
    auto st = parse_links(cut.empty() ? nullptr : cut.data(), cut.size(), out);
    INFO("length " << len);
    CHECK((!st.ok() || !st->done));
    CHECK(out.size() <= 2);
  }
}

TEST_CASE("parse_links survives every byte of a dump set to 0x00 and to 0xff", "[rtnl]") {
  const Bytes full = good_dump();
  for (std::size_t i = 0; i < full.size(); ++i)
    for (std::uint8_t v : {std::uint8_t{0x00}, std::uint8_t{0xff}}) {
      Bytes b = full;
      b[i] = v;
      std::vector<Link> out;
      auto st = links(b, out);  // must not crash or read out of bounds
      CHECK(out.size() <= 2);
      (void)st;
    }
}

TEST_CASE("parse_links refuses malformed lengths and sizes, naming them", "[rtnl]") {
  std::vector<Link> out;
  SECTION("a message length below its header") {
    Bytes b = good_dump();
    set_u32(b, 0, 8);
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
    CHECK(err.message.find("message length 8") != std::string::npos);
  }
  SECTION("a message length beyond the buffer") {
    Bytes b = good_dump();
    set_u32(b, 0, static_cast<std::uint32_t>(b.size() + 4));
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
  }
  SECTION("an attribute length below its header") {
    Bytes b = link_msg(2, attr(IFLA_IFNAME, str("x")));
    set_u16(b, sizeof(nlmsghdr) + sizeof(ifinfomsg), 2);
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
    CHECK(err.message.find("attribute") != std::string::npos);
  }
  SECTION("an attribute length beyond its message") {
    Bytes b = link_msg(2, attr(IFLA_IFNAME, str("x")));
    set_u16(b, sizeof(nlmsghdr) + sizeof(ifinfomsg), 200);
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
  }
  SECTION("a nested attribute beyond its parent") {
    Bytes kind = attr(IFLA_INFO_KIND, str("veth"));
    set_u16(kind, 0, 40);
    Bytes b = link_msg(2, cat({attr(IFLA_IFNAME, str("x")), attr(IFLA_LINKINFO, kind)}));
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
  }
  SECTION("IFLA_LINK of 2 bytes") {
    Bytes b = link_msg(2, cat({attr(IFLA_IFNAME, str("x")), attr(IFLA_LINK, Bytes{1, 0})}));
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
    CHECK(err.message.find("IFLA_LINK of 2 bytes") != std::string::npos);
  }
  SECTION("IFLA_LINK_NETNSID of 8 bytes") {
    Bytes b = link_msg(2, cat({attr(IFLA_IFNAME, str("x")), attr(IFLA_LINK_NETNSID, Bytes(8, 0))}));
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
  }
  SECTION("a name longer than IFNAMSIZ") {
    Bytes b = link_msg(2, attr(IFLA_IFNAME, str("a-name-of-twenty-chars")));
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
  }
  SECTION("a link without a name, or with ifindex 0") {
    REQUIRE_ERROR(a, links(link_msg(2, Bytes{}), out), Errc::internal);
    REQUIRE_ERROR(b, links(link_msg(0, attr(IFLA_IFNAME, str("x"))), out), Errc::internal);
  }
  SECTION("RTM_NEWLINK shorter than its ifinfomsg") {
    REQUIRE_ERROR(err, links(message(RTM_NEWLINK, Bytes(4, 0)), out), Errc::internal);
  }
  SECTION("a hardware address longer than MAX_ADDR_LEN") {
    Bytes b = link_msg(2, cat({attr(IFLA_IFNAME, str("x")), attr(IFLA_ADDRESS, Bytes(33, 1))}));
    REQUIRE_ERROR(err, links(b, out), Errc::internal);
  }
  SECTION("trailing bytes too few for a header") {
    Bytes b = cat({good_dump(), Bytes(8, 0)});
    // DONE comes first: what follows it is not read.
    REQUIRE_OK(links(b, out));
    Bytes c = cat({link_msg(1, attr(IFLA_IFNAME, str("lo"))), Bytes(8, 0)});
    REQUIRE_ERROR(err, links(c, out), Errc::internal);
  }
}

TEST_CASE("parse_links: kernel errors, acks, interrupted dumps and other sequence numbers",
          "[rtnl]") {
  std::vector<Link> out;
  SECTION("NLMSG_ERROR carries the errno") {
    REQUIRE_ERROR(err, links(error_msg(-EPERM), out), Errc::internal);
    CHECK(err.sys_errno == EPERM);
  }
  SECTION("an ack (error 0) ends the reply") {
    auto st = links(error_msg(0), out);
    REQUIRE_OK(st);
    CHECK(st->done);
  }
  SECTION("NLMSG_DONE with an error is an error") {
    REQUIRE_ERROR(err, links(done_msg(7, -EINTR), out), Errc::internal);
    CHECK(err.sys_errno == EINTR);
  }
  SECTION("a positive error code is malformed") {
    REQUIRE_ERROR(err, links(error_msg(5), out), Errc::internal);
    CHECK(err.sys_errno == 0);
  }
  SECTION("NLM_F_DUMP_INTR is reported") {
    Bytes b = good_dump();
    set_u16(b, offsetof(nlmsghdr, nlmsg_flags), NLM_F_MULTI | NLM_F_DUMP_INTR);
    auto st = links(b, out);
    REQUIRE_OK(st);
    CHECK(st->interrupted);
  }
  SECTION("messages of another sequence number are skipped, DONE included") {
    Bytes b = cat({link_msg(5, attr(IFLA_IFNAME, str("spoof")), 99), done_msg(99),
                   link_msg(1, attr(IFLA_IFNAME, str("lo")), 7), done_msg(7)});
    auto st = links(b, out, 7);
    REQUIRE_OK(st);
    CHECK(st->done);
    REQUIRE(out.size() == 1);
    CHECK(out[0].name == "lo");
  }
}

TEST_CASE("parse_addresses: IFA_LOCAL over IFA_ADDRESS, IFA_FLAGS, sizes checked", "[rtnl]") {
  auto addr_msg = [](int family, int ifindex, std::uint8_t flags, const Bytes& attrs) {
    Bytes body;
    ifaddrmsg ifa{};
    ifa.ifa_family = static_cast<std::uint8_t>(family);
    ifa.ifa_index = static_cast<std::uint32_t>(ifindex);
    ifa.ifa_prefixlen = 24;
    ifa.ifa_flags = flags;
    put(body, ifa);
    body.insert(body.end(), attrs.begin(), attrs.end());
    return message(RTM_NEWADDR, body);
  };
  Bytes v6(16, 0);
  v6[0] = 0xfd;
  v6[15] = 2;
  Bytes b = cat({addr_msg(AF_INET, 20, 0, cat({attr(IFA_ADDRESS, Bytes{10, 0, 0, 9}),
                                               attr(IFA_LOCAL, Bytes{10, 0, 0, 2})})),
                 addr_msg(AF_INET6, 20, 0, cat({attr(IFA_ADDRESS, v6),
                                                attr(IFA_FLAGS, s32(IFA_F_SECONDARY | 0x1000))})),
                 addr_msg(AF_PACKET, 20, 0, attr(IFA_ADDRESS, Bytes{1, 2})), done_msg()});
  std::vector<Address> out;
  auto st = parse_addresses(b.data(), b.size(), out);
  REQUIRE_OK(st);
  CHECK(st->done);
  REQUIRE(out.size() == 2);
  CHECK(out[0].family == AF_INET);
  CHECK(out[0].local == Bytes{10, 0, 0, 2});
  CHECK(out[0].ifindex == 20);
  CHECK(out[1].family == AF_INET6);
  CHECK(out[1].local == v6);
  CHECK(out[1].flags == (IFA_F_SECONDARY | 0x1000u));

  std::vector<Address> bad;
  Bytes wrong = addr_msg(AF_INET, 20, 0, attr(IFA_LOCAL, v6));
  REQUIRE_ERROR(err, parse_addresses(wrong.data(), wrong.size(), bad), Errc::internal);
  CHECK(err.message.find("IFA_LOCAL of 16 bytes") != std::string::npos);
  Bytes none = addr_msg(AF_INET, 20, 0, Bytes{});
  REQUIRE_ERROR(err2, parse_addresses(none.data(), none.size(), bad), Errc::internal);

  for (std::size_t len = 0; len < b.size(); ++len) {
    Bytes cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
    std::vector<Address> o;
    auto r = parse_addresses(cut.empty() ? nullptr : cut.data(), cut.size(), o);
    CHECK((!r.ok() || !r->done));
  }
}

TEST_CASE("parse_nsid: the id, -1 for none, an error when absent or malformed", "[rtnl]") {
  auto nsid_msg = [](const Bytes& attrs) {
    Bytes body{AF_UNSPEC, 0, 0, 0};  // rtgenmsg, padded
    body.insert(body.end(), attrs.begin(), attrs.end());
    return message(RTM_NEWNSID, body, 7, 0);
  };
  Bytes five = nsid_msg(attr(NETNSA_NSID, s32(5)));
  auto r = parse_nsid(five.data(), five.size(), 7);
  REQUIRE_OK(r);
  CHECK(*r == 5);
  Bytes none = nsid_msg(attr(NETNSA_NSID, s32(NETNSA_NSID_NOT_ASSIGNED)));
  auto n = parse_nsid(none.data(), none.size());
  REQUIRE_OK(n);
  CHECK(*n == -1);
  Bytes absent = nsid_msg(Bytes{});
  REQUIRE_ERROR(e1, parse_nsid(absent.data(), absent.size()), Errc::internal);
  Bytes shortattr = nsid_msg(attr(NETNSA_NSID, Bytes{1}));
  REQUIRE_ERROR(e2, parse_nsid(shortattr.data(), shortattr.size()), Errc::internal);
  REQUIRE_ERROR(e3, parse_nsid(five.data(), five.size(), 8), Errc::internal);  // not ours
  Bytes err = error_msg(-EINVAL);
  REQUIRE_ERROR(e4, parse_nsid(err.data(), err.size()), Errc::internal);
  CHECK(e4.sys_errno == EINVAL);
}

TEST_CASE("classify: a veth qualifies only when both ends name each other across the two "
          "namespaces", "[rtnl]") {
  // The process's eth0 (20) names the edge's ifindex 10 in the namespace it
  // numbers 3 (the edge's); the edge's e1 (10) names 20 in the namespace it
  // numbers 7 (the process's).
  Link p{20, "eth0", "veth", {}, 10, 3};
  Link e{10, "e1", "veth", {}, 20, 7};
  Link other{11, "e2", "veth", {}, 21, 8};
  std::vector<Link> edge{other, e};
  int process_nsid_of_edge = 3, edge_nsid_of_process = 7;
  auto run = [&](const Link& pl, const std::vector<Link>& el) {
    return classify(pl, el, process_nsid_of_edge, edge_nsid_of_process);
  };
  const Link* found = nullptr;
  CHECK(classify(p, edge, 3, 7, &found) == Pairing::qualifies);
  REQUIRE(found != nullptr);
  CHECK(found->name == "e1");

  auto with = [](Link l, auto change) {
    change(l);
    return l;
  };
  CHECK(run(with(p, [](Link& l) { l.kind = "macvlan"; }), edge) == Pairing::not_veth);
  CHECK(run(with(p, [](Link& l) { l.kind.clear(); }), edge) == Pairing::not_veth);
  CHECK(run(with(p, [](Link& l) { l.link_netnsid.reset(); }), edge) == Pairing::peer_here);
  CHECK(run(with(p, [](Link& l) { l.link_netnsid = 4; }), edge) == Pairing::peer_elsewhere);
  CHECK(run(with(p, [](Link& l) { l.link = 12; }), edge) == Pairing::no_edge_end);
  CHECK(run(with(p, [](Link& l) { l.link.reset(); }), edge) == Pairing::no_edge_end);
  CHECK(run(p, {other}) == Pairing::no_edge_end);
  CHECK(run(p, {other, with(e, [](Link& l) { l.link = 21; })}) == Pairing::edge_end_disagrees);
  CHECK(run(p, {with(e, [](Link& l) { l.link.reset(); })}) == Pairing::edge_end_disagrees);
  CHECK(run(p, {with(e, [](Link& l) { l.link_netnsid = 8; })}) == Pairing::edge_end_disagrees);
  CHECK(run(p, {with(e, [](Link& l) { l.link_netnsid.reset(); })}) == Pairing::edge_end_disagrees);
  CHECK(run(p, {with(e, [](Link& l) { l.kind = "vxlan"; })}) == Pairing::edge_end_disagrees);
  // The process's namespace has no id for the edge's, or the edge none for it.
  CHECK(classify(p, edge, -1, 7) == Pairing::peer_elsewhere);
  CHECK(classify(p, edge, 3, -1) == Pairing::edge_end_disagrees);
  found = &p;
  CHECK(classify(p, edge, 3, 8, &found) == Pairing::edge_end_disagrees);
  CHECK(found == nullptr);
}
