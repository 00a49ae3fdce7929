// SPDX-License-Identifier: Apache-2.0
// Peer identity against real namespaces, veths and processes: what
// identify_peer and find_attachment find for a process living in a
// "container" namespace, asked from a thread in the "edge" namespace (the way
// qocnetd, started by `nsenter --net=EDGE`, asks), and that veths a container
// can make on its own (inside itself, or to a third namespace), with ifindex
// numbers chosen to collide with the edge's, never pass for its attachment.
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "../support/check.hpp"
#include "control/peer_identity.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using qocnet::control::find_attachment;
using qocnet::control::identify_peer;
using qocnet::control::PeerIdentity;

namespace {

// A process that enters a namespace and waits there until destroyed.
class NsProcess {
 public:
  // `uid`: the process takes it after entering (-1: stays root).
  explicit NsProcess(const testbed::Namespace& ns, int uid = -1) {
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    int fd = ::open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::setns(fd, CLONE_NEWNET) != 0) ::_exit(1);
      if (uid >= 0 && (::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0)) ::_exit(1);
      char c = 1;
      if (::write(ready[1], &c, 1) != 1) ::_exit(1);
      for (;;) ::pause();
    }
    ::close(fd);
    ::close(ready[1]);
    char c = 0;
    const bool entered = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    REQUIRE(entered);
  }
  ~NsProcess() { stop(); }
  NsProcess(const NsProcess&) = delete;
  NsProcess& operator=(const NsProcess&) = delete;
  pid_t pid() const { return pid_; }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

testbed::Namespace make_ns(const char* role) {
  auto ns = testbed::Namespace::create(testbed::unique_name(role));
  REQUIRE_OK(ns);
  return std::move(ns).value();
}

// A veth pair with chosen ifindexes: `a` (index ia) in ns_a, `b` (index ib) in
// ns_b, both up.
void veth(const testbed::Namespace& ns_a, const std::string& a, int ia,
          const testbed::Namespace& ns_b, const std::string& b, int ib) {
  REQUIRE_OK(ns_a.ip({"link", "add", "name", a, "index", std::to_string(ia), "type", "veth", "peer",
                      "name", b, "index", std::to_string(ib), "netns", ns_b.name()}));
  REQUIRE_OK(ns_a.ip({"link", "set", a, "up"}));
  REQUIRE_OK(ns_b.ip({"link", "set", b, "up"}));
}

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

std::string own_cgroup() {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return {};
}

// Runs `f` on a thread whose effective capabilities lack `cap`, as in a
// daemon whose bounding set omits it (capabilities are per thread).
template <class F>
auto without_capability(int cap, F f) -> decltype(f()) {
  std::optional<decltype(f())> out;
  bool dropped = false;
  std::thread t([&] {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0) return;
    data[cap / 32].effective &= ~(1u << (cap % 32));
    if (::syscall(SYS_capset, &hdr, data) != 0) return;
    dropped = true;
    out.emplace(f());
  });
  t.join();
  REQUIRE(dropped);
  return std::move(*out);
}

PeerIdentity identify_from(const testbed::Namespace& edge, pid_t pid) {
  auto id = testbed::in_namespace(edge, [&] { return identify_peer(pid, 1000, 1001); });
  REQUIRE_OK(id);
  return *id;
}

}  // namespace

TEST_CASE("a process with one veth to the edge: its identity and attachment", "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  veth(edge, "e1", 10, cont, "eth0", 20);
  REQUIRE_OK(cont.ip({"link", "set", "eth0", "address", "02:78:00:00:00:02"}));
  REQUIRE_OK(cont.ip({"addr", "add", "10.78.0.2/24", "dev", "eth0"}));
  REQUIRE_OK(cont.ip({"addr", "add", "10.78.0.3/24", "dev", "eth0"}));  // secondary
  REQUIRE_OK(cont.ip({"addr", "add", "10.79.0.2/24", "dev", "eth0"}));  // a second primary
  REQUIRE_OK(cont.ip({"addr", "add", "fd00:78::2/64", "dev", "eth0", "nodad"}));
  NsProcess proc(cont);

  PeerIdentity id = identify_from(edge, proc.pid());
  CHECK(id.pid == proc.pid());
  CHECK(id.uid == 1000u);
  CHECK(id.gid == 1001u);
  CHECK(id.netns_inode == inode_of(cont.path()));
  CHECK(id.netns_name == cont.name());
  CHECK_FALSE(id.same_netns);
  // The child is in the test's cgroup; on this host's hybrid hierarchy that
  // is "/" (non-empty), under systemd a path like "/user.slice/...".
  CHECK(id.cgroup == own_cgroup());
  CHECK_FALSE(id.cgroup.empty());

  // The link-local address exists, so leaving it out is a choice, not luck.
  auto v6 = testbed::run({"ip", "-n", cont.name(), "-6", "addr", "show", "dev", "eth0"});
  REQUIRE_OK(v6);
  CHECK(v6->find("fe80::") != std::string::npos);

  const auto before = [&] {
    return testbed::in_namespace(edge, [] { return inode_of("/proc/thread-self/ns/net"); });
  }();
  auto a = testbed::in_namespace(edge, [&] {
    auto r = find_attachment(id);
    // The calling thread is still in the edge's namespace.
    CHECK(inode_of("/proc/thread-self/ns/net") == before);
    return r;
  });
  REQUIRE_OK(a);
  CHECK(a->edge_interface == "e1");
  CHECK(a->edge_ifindex == 10);
  CHECK(a->interface == "eth0");
  CHECK(a->ifindex == 20);
  CHECK(a->mac == "02:78:00:00:00:02");
  CHECK(a->ipv4 == std::vector<std::string>{"10.78.0.2", "10.79.0.2", "10.78.0.3"});
  CHECK(a->ipv6 == std::vector<std::string>{"fd00:78::2"});
  // The test's own thread outside in_namespace is back where it was.
  CHECK(inode_of("/proc/thread-self/ns/net") != before);
}

TEST_CASE("a veth pair made inside the container, with the edge's ifindexes, does not pass",
          "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  auto victim = make_ns("pv");
  veth(edge, "e1", 10, cont, "eth0", 20);   // the container's own attachment
  veth(edge, "e2", 11, victim, "v0", 21);   // another container's
  // Inside the container: fake0 (21) names 11 as its peer, and the edge's e2
  // (11) names 21 as its peer: every ifindex agrees; only the namespaces don't.
  veth(cont, "fake0", 21, cont, "fake1", 11);
  NsProcess proc(cont);
  PeerIdentity id = identify_from(edge, proc.pid());

  auto a = testbed::in_namespace(edge, [&] { return find_attachment(id); });
  REQUIRE_OK(a);
  CHECK(a->interface == "eth0");
  CHECK(a->edge_interface == "e1");

  REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id, "fake0"); }),
                Errc::failed_precondition);
  CHECK(err.message.find("fake0") != std::string::npos);
  CHECK(err.message.find("same namespace") != std::string::npos);
  CHECK(err.fix.find("eth0 (edge e1)") != std::string::npos);
}

TEST_CASE("a veth whose other end is in a third namespace does not pass, ifindexes colliding",
          "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  auto victim = make_ns("pv");
  auto third = make_ns("pt");
  veth(edge, "e1", 10, victim, "v0", 21);  // the edge's e1 (10) names 21 as its peer
  veth(cont, "fake0", 21, third, "t1", 10);  // the container's fake0 (21) names 10
  NsProcess proc(cont);
  PeerIdentity id = identify_from(edge, proc.pid());

  {
    REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id); }),
                  Errc::failed_precondition);
    CHECK(err.message.find("no veth whose other end is in qocnetd's network namespace") !=
          std::string::npos);
    CHECK(err.message.find("fake0 (a veth whose other end is in another namespace") !=
          std::string::npos);
    CHECK(err.message.find("lo (not a veth)") != std::string::npos);
    CHECK(err.message.find(cont.name()) != std::string::npos);
    CHECK(err.fix.find("veth pair") != std::string::npos);
  }
  // With a real veth to the edge as well, that one is the attachment.
  veth(edge, "e3", 12, cont, "eth0", 22);
  auto a = testbed::in_namespace(edge, [&] { return find_attachment(id); });
  REQUIRE_OK(a);
  CHECK(a->interface == "eth0");
  CHECK(a->edge_interface == "e3");
  CHECK(a->edge_ifindex == 12);
  REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id, "fake0"); }),
                Errc::failed_precondition);
  CHECK(err.message.find("another namespace") != std::string::npos);
}

TEST_CASE("two veths to the edge: the error names both, `interface` picks one", "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  veth(edge, "e1", 10, cont, "eth0", 20);
  veth(edge, "e2", 11, cont, "eth1", 21);
  REQUIRE_OK(cont.ip({"addr", "add", "10.78.1.2/24", "dev", "eth1"}));
  NsProcess proc(cont);
  PeerIdentity id = identify_from(edge, proc.pid());

  {
    REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id); }),
                  Errc::failed_precondition);
    CHECK(err.message.find("eth0 (edge e1)") != std::string::npos);
    CHECK(err.message.find("eth1 (edge e2)") != std::string::npos);
    CHECK(err.fix.find("name the one") != std::string::npos);
  }
  auto a = testbed::in_namespace(edge, [&] { return find_attachment(id, "eth1"); });
  REQUIRE_OK(a);
  CHECK(a->interface == "eth1");
  CHECK(a->ifindex == 21);
  CHECK(a->edge_interface == "e2");
  CHECK(a->edge_ifindex == 11);
  CHECK(a->ipv4 == std::vector<std::string>{"10.78.1.2"});

  REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id, "eth9"); }),
                Errc::not_found);
  CHECK(err.message.find("no interface 'eth9'") != std::string::npos);
  CHECK(err.message.find("eth0") != std::string::npos);
  REQUIRE_ERROR(lo, testbed::in_namespace(edge, [&] { return find_attachment(id, "lo"); }),
                Errc::failed_precondition);
  CHECK(lo.message.find("not a veth") != std::string::npos);
}

TEST_CASE("a process in the edge's own namespace has no attachment", "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  veth(edge, "e1", 10, cont, "eth0", 20);
  NsProcess proc(edge);
  PeerIdentity id = identify_from(edge, proc.pid());
  CHECK(id.same_netns);
  CHECK(id.netns_name == edge.name());
  REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id); }),
                Errc::failed_precondition);
  CHECK(err.message.find("own network namespace") != std::string::npos);
  CHECK(err.fix.find("AddProcess") != std::string::npos);
  // Identified from elsewhere, the same process is not in "qocnetd's" namespace.
  auto other = identify_peer(proc.pid(), 0, 0);
  REQUIRE_OK(other);
  CHECK_FALSE(other->same_netns);
}

TEST_CASE("a process that has exited is not_found, reaped or a zombie", "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  veth(edge, "e1", 10, cont, "eth0", 20);

  SECTION("reaped") {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(0);
    REQUIRE(::waitpid(pid, nullptr, 0) == pid);
    REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return identify_peer(pid, 0, 0); }),
                  Errc::not_found);
    CHECK(err.message.find("process " + std::to_string(pid) + " has exited") != std::string::npos);
  }
  SECTION("a zombie (exited, not yet reaped)") {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(0);
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0);
    auto r = testbed::in_namespace(edge, [&] { return identify_peer(pid, 0, 0); });
    ::waitpid(pid, nullptr, 0);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::not_found);
  }
  SECTION("identified, then gone before find_attachment") {
    NsProcess proc(cont);
    PeerIdentity id = identify_from(edge, proc.pid());
    proc.stop();
    REQUIRE_ERROR(err, testbed::in_namespace(edge, [&] { return find_attachment(id); }),
                  Errc::not_found);
    CHECK(err.message.find("has exited") != std::string::npos);
  }
  SECTION("not a pid") {
    REQUIRE_ERROR(err, identify_peer(0, 0, 0), Errc::invalid_argument);
  }
}

TEST_CASE("identify_peer_pidfd: the process the pidfd names, not_found once it is gone",
          "[peer]") {
  auto edge = make_ns("pe");
  auto cont = make_ns("pc");
  NsProcess proc(cont);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, proc.pid(), 0));
  REQUIRE(pidfd >= 0);
  auto id = testbed::in_namespace(edge, [&] { return control::identify_peer_pidfd(pidfd, 7, 8); });
  REQUIRE_OK(id);
  CHECK(id->pid == proc.pid());
  CHECK(id->uid == 7u);
  CHECK(id->netns_name == cont.name());
  CHECK(id->netns_inode == inode_of(cont.path()));
  proc.stop();
  REQUIRE_ERROR(err, control::identify_peer_pidfd(pidfd, 7, 8), Errc::not_found);
  CHECK(err.message.find("has exited") != std::string::npos);
  ::close(pidfd);

  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(null >= 0);
  REQUIRE_ERROR(notpid, control::identify_peer_pidfd(null, 0, 0), Errc::invalid_argument);
  CHECK(notpid.message.find("not a pidfd") != std::string::npos);
  ::close(null);
  REQUIRE_ERROR(closed, control::identify_peer_pidfd(null, 0, 0), Errc::invalid_argument);
}

TEST_CASE("identify_peer_pidfd: a caller of another uid is identified without CAP_KILL", "[peer]") {
  // qocnetd's systemd unit grants no CAP_KILL: asking whether a process of
  // another uid is still there (signal 0) gets EPERM, which says it is.
  auto cont = make_ns("pk");
  NsProcess proc(cont, 65534);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, proc.pid(), 0));
  REQUIRE(pidfd >= 0);
  auto id = without_capability(CAP_KILL, [&] { return control::identify_peer_pidfd(pidfd, 65534, 65534); });
  REQUIRE_OK(id);
  CHECK(id->pid == proc.pid());
  CHECK(id->netns_inode == inode_of(cont.path()));
  proc.stop();
  auto gone = without_capability(CAP_KILL, [&] { return control::identify_peer_pidfd(pidfd, 65534, 65534); });
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == Errc::not_found);
  ::close(pidfd);
}
