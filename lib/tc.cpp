// SPDX-License-Identifier: Apache-2.0
#include "tc.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "netns.hpp"

namespace qocnet::detail {

namespace fs = std::filesystem;

namespace {

// Which clsact qdiscs this process uses, and whether it created them.
struct QdiscUse {
  int users = 0;
  bool created = false;
};
std::mutex& qdisc_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::pair<ino_t, unsigned>, QdiscUse>& qdisc_registry() {
  static std::map<std::pair<ino_t, unsigned>, QdiscUse> r;
  return r;
}

const char* dir_name(TcDirection d) { return d == TcDirection::ingress ? "ingress" : "egress"; }

bpf_tc_hook make_hook(unsigned ifindex, TcDirection d) {
  bpf_tc_hook h{};
  h.sz = sizeof(h);
  h.ifindex = static_cast<int>(ifindex);
  h.attach_point = d == TcDirection::ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return h;
}

bpf_tc_opts make_opts() {
  bpf_tc_opts o{};
  o.sz = sizeof(o);
  o.handle = kTcHandle;
  o.priority = kTcPriority;
  return o;
}

std::string prog_name_of_id(std::uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return {};
  UniqueFd owner(fd);
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return {};
  return info.name;
}

// Takes the per-hook ownership lock, or says who holds it.
Result<UniqueFd> take_lock(const fs::path& path, const std::string& what) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid())
    return make_error(Errc::failed_precondition, "cannot open lock file " + path.string(),
                      "make the lock directory writable (EdgeOptions::lock_dir)", errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
    std::string holder = pid == ::getpid() ? std::string("this process")
                         : pid > 0          ? "qocnet process " + std::to_string(pid)
                                            : std::string("another qocnet process");
    return make_error(Errc::already_exists, what + " is already attached by " + holder,
                      pid == ::getpid() ? "detach it first (Edge::detach_port) or reuse the "
                                          "existing attachment"
                                        : "detach it in that process, or stop it; a port has one "
                                          "qocnet owner at a time");
  }
  std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    // The pid is only for messages; the lock itself holds.
  }
  return fd;
}

std::string handle_prio() {
  char buf[64];
  std::snprintf(buf, sizeof buf, "handle 0x%x prio %u", kTcHandle, kTcPriority);
  return buf;
}

}  // namespace

Result<int> count_tc_filters(unsigned ifindex, TcDirection d) {
  UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) return make_error(Errc::internal, "cannot open a netlink socket", {}, errno);
  struct {
    nlmsghdr n;
    tcmsg t;
  } req{};
  req.n.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.n.nlmsg_type = RTM_GETTFILTER;
  req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.n.nlmsg_seq = 1;
  req.t.tcm_family = AF_UNSPEC;
  req.t.tcm_ifindex = static_cast<int>(ifindex);
  req.t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, d == TcDirection::ingress ? TC_H_MIN_INGRESS
                                                                       : TC_H_MIN_EGRESS);
  if (::send(sock.get(), &req, req.n.nlmsg_len, 0) < 0)
    return make_error(Errc::internal, "cannot ask the kernel for TC filters", {}, errno);
  int count = 0;
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
    if (n < 0) return make_error(Errc::internal, "cannot read TC filters", {}, errno);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return count;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return count;
        return make_error(Errc::internal, "cannot list TC filters", {}, -e->error);
      }
      if (h->nlmsg_type == RTM_NEWTFILTER) ++count;
    }
  }
}

Result<bool> destroy_clsact_if_empty(unsigned ifindex) {
  QOCNET_ASSIGN(in, count_tc_filters(ifindex, TcDirection::ingress));
  QOCNET_ASSIGN(eg, count_tc_filters(ifindex, TcDirection::egress));
  if (in != 0 || eg != 0) return false;
  bpf_tc_hook hook = make_hook(ifindex, TcDirection::ingress);
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  return bpf_tc_hook_destroy(&hook) == 0;  // the interface may be gone already
}

Result<TcAttachment> TcAttachment::attach(const Program& prog, unsigned ifindex,
                                          const std::string& ifname, TcDirection dir,
                                          const fs::path& lock_dir, bool owns_qdisc) {
  const std::string what = "port " + ifname + " (" + dir_name(dir) + ")";
  TcAttachment a;
  a.ifindex_ = ifindex;
  a.ifname_ = ifname;
  a.dir_ = dir;
  a.netns_ino_ = current_netns_inode();
  QOCNET_ASSIGN(ns, open_current_netns());
  a.netns_ = std::move(ns);
  a.lock_path_ = lock_dir / ("tc-" + std::to_string(a.netns_ino_) + "-" + std::to_string(ifindex) +
                             "-" + dir_name(dir) + ".lock");
  QOCNET_ASSIGN(lock, take_lock(a.lock_path_, what));
  a.lock_ = std::move(lock);

  bpf_tc_hook hook = make_hook(ifindex, dir);
  {
    std::lock_guard<std::mutex> g(qdisc_mutex());
    int rc = bpf_tc_hook_create(&hook);
    if (rc != 0 && rc != -EEXIST)
      return make_error(rc == -EPERM ? Errc::permission_denied : Errc::internal,
                        "cannot create the clsact qdisc on " + ifname,
                        rc == -EPERM ? "run as root or grant CAP_NET_ADMIN"
                                     : "check that the kernel has sch_clsact (CONFIG_NET_CLS_ACT)",
                        -rc);
    auto& use = qdisc_registry()[{a.netns_ino_, ifindex}];
    if (rc == 0 || owns_qdisc) use.created = true;
    use.users++;
    a.created_qdisc_ = use.created;
    a.holds_qdisc_ = true;
  }

  bpf_tc_opts q = make_opts();
  if (bpf_tc_query(&hook, &q) == 0) {
    std::string name = prog_name_of_id(q.prog_id);
    if (name.rfind("qoc_", 0) != 0) {
      a.release_qdisc_use();
      return make_error(Errc::already_exists,
                        what + ": a filter that is not qocnet's (program '" + name + "', id " +
                            std::to_string(q.prog_id) + ") holds qocnet's handle/priority " + handle_prio(),
                        "remove it: tc filter del dev " + ifname + " " + dir_name(dir) + " " +
                            handle_prio() + " bpf");
    }
    if (q.prog_id == prog.id()) {
      a.adopted_ = true;  // already runs this program: nothing to change
      a.attached_ = true;
      return a;
    }
    a.replaced_stale_ = true;  // its owner is gone: we hold the lock
  }

  bpf_tc_opts o = make_opts();
  o.prog_fd = prog.fd();
  o.flags = BPF_TC_F_REPLACE;
  int rc = bpf_tc_attach(&hook, &o);
  if (rc != 0) {
    a.release_qdisc_use();
    return make_error(rc == -EPERM ? Errc::permission_denied : Errc::internal,
                      "cannot attach program " + prog.name() + " to " + what,
                      rc == -EPERM ? "run as root or grant CAP_NET_ADMIN" : "", -rc);
  }
  a.attached_ = true;
  return a;
}

TcAttachment::TcAttachment(TcAttachment&& o) noexcept
    : netns_(std::move(o.netns_)),
      lock_(std::move(o.lock_)),
      lock_path_(std::move(o.lock_path_)),
      netns_ino_(o.netns_ino_),
      ifindex_(o.ifindex_),
      ifname_(std::move(o.ifname_)),
      dir_(o.dir_),
      attached_(std::exchange(o.attached_, false)),
      persist_(o.persist_),
      replaced_stale_(o.replaced_stale_),
      adopted_(o.adopted_),
      created_qdisc_(o.created_qdisc_),
      holds_qdisc_(std::exchange(o.holds_qdisc_, false)) {}

TcAttachment::~TcAttachment() {
  if (persist_) return;
  (void)detach();
}

void TcAttachment::release_qdisc_use() {
  if (!holds_qdisc_) return;
  holds_qdisc_ = false;
  std::lock_guard<std::mutex> g(qdisc_mutex());
  auto it = qdisc_registry().find({netns_ino_, ifindex_});
  if (it == qdisc_registry().end()) return;
  if (--it->second.users > 0) return;
  const bool created = it->second.created;
  qdisc_registry().erase(it);
  if (!created) return;
  // Another tool may have added a filter to the clsact since qocnet created
  // it: then it stays (with qocnet's own filter gone). If the filters cannot
  // be listed, it stays too: a leftover empty qdisc costs nothing, a lost
  // filter of someone else's does.
  (void)destroy_clsact_if_empty(ifindex_);
}

Status TcAttachment::detach() {
  if (!netns_.valid()) return {};
  auto guard = NetnsGuard::enter(netns_.get());
  if (!guard) return std::move(guard).error();
  Status st;
  if (attached_) {
    attached_ = false;
    bpf_tc_hook hook = make_hook(ifindex_, dir_);
    bpf_tc_opts o = make_opts();
    int rc = bpf_tc_detach(&hook, &o);
    if (rc != 0 && rc != -ENOENT && rc != -ENODEV && rc != -EINVAL)
      st = make_error(Errc::internal, "cannot detach qocnet's filter from " + ifname_, {}, -rc);
  }
  release_qdisc_use();
  if (lock_.valid()) {
    ::unlink(lock_path_.c_str());
    lock_.reset();
  }
  return st;
}

}  // namespace qocnet::detail
