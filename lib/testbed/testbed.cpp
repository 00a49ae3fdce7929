// SPDX-License-Identifier: Apache-2.0
#include "qocnet/testbed.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

namespace qocnet::testbed {

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

bool pid_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

Result<std::string> run(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    return make_error(Errc::internal, "pipe failed", {}, errno);
  pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::internal, "fork failed", {}, errno);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  // stderr of these tools is short; read stdout first, then stderr.
  std::string o = read_all(out[0]);
  std::string e = read_all(err[0]);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!e.empty() && e.back() == '\n') e.pop_back();
    return make_error(WIFEXITED(status) && WEXITSTATUS(status) == 127 ? Errc::unavailable
                                                                      : Errc::internal,
                      "`" + join(argv) + "` failed: " + e,
                      "the testbed needs root and iproute2 (scripts/bootstrap installs it)");
  }
  return o;
}

std::string unique_name(std::string_view role) {
  static std::atomic<int> counter{0};
  std::string n = "qn" + std::to_string(::getpid()) + "x" + std::to_string(counter++) + std::string(role);
  return n.substr(0, 15);
}

int sweep_stale_namespaces() {
  int removed = 0;
  DIR* d = ::opendir("/run/netns");
  if (!d) return 0;
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("qn", 0) != 0) continue;
    auto x = n.find('x', 2);
    if (x == std::string::npos || x == 2) continue;
    std::string digits = n.substr(2, x - 2);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!pid_alive(std::stol(digits))) stale.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : stale)
    if (run({"ip", "netns", "del", n})) ++removed;
  return removed;
}

Result<Namespace> Namespace::create(std::string name) {
  QOCNET_TRY(run({"ip", "netns", "add", name}));
  Namespace ns(std::move(name));
  QOCNET_TRY(ns.ip({"link", "set", "lo", "up"}));
  return ns;
}

Namespace::Namespace(Namespace&& o) noexcept : name_(std::move(o.name_)) { o.name_.clear(); }

Namespace::~Namespace() {
  if (!name_.empty()) (void)run({"ip", "netns", "del", name_});
}

Status Namespace::ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip", "-n", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  QOCNET_TRY(run(argv));
  return {};
}

Result<std::uint64_t> Namespace::link_stat(const std::string& ifname, const std::string& stat) const {
  // /sys shows the namespace of whoever mounted it, so ask iproute2 instead.
  QOCNET_ASSIGN(out, run({"ip", "-n", name_, "-s", "-j", "link", "show", "dev", ifname}));
  // Minimal JSON pick: "<stat>":<number> inside stats64.rx / .tx.
  std::string dir = stat.rfind("rx_", 0) == 0 ? "\"rx\":{" : "\"tx\":{";
  std::string key = "\"" + stat.substr(3) + "\":";
  auto s64 = out.find("\"stats64\"");
  auto blk = s64 == std::string::npos ? s64 : out.find(dir, s64);
  auto at = blk == std::string::npos ? blk : out.find(key, blk);
  if (at == std::string::npos)
    return make_error(Errc::not_found, "no counter " + stat + " for " + ifname + " in " + name_);
  return static_cast<std::uint64_t>(std::stoull(out.substr(at + key.size())));
}

namespace detail {
ThreadNetns::ThreadNetns(const Namespace& ns) {
  back_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int fd = ::open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (back_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    if (back_ >= 0) ::close(back_);
    throw std::system_error(err, std::generic_category(), "cannot enter namespace " + ns.name());
  }
  ::close(fd);
}
ThreadNetns::~ThreadNetns() {
  (void)::setns(back_, CLONE_NEWNET);
  ::close(back_);
}
}  // namespace detail

Status add_veth(const VethEnd& a, const VethEnd& b) {
  // Create in a's namespace with the peer placed straight into b's.
  std::vector<std::string> args{"link", "add", a.ifname};
  if (!a.mac.empty()) args.insert(args.end(), {"address", a.mac});
  args.insert(args.end(), {"type", "veth", "peer", "name", b.ifname});
  if (!b.mac.empty()) args.insert(args.end(), {"address", b.mac});
  args.insert(args.end(), {"netns", b.ns->name()});
  QOCNET_TRY(a.ns->ip(args));
  for (const VethEnd* end : {&a, &b}) {
    if (!end->cidr.empty()) QOCNET_TRY(end->ns->ip({"addr", "add", end->cidr, "dev", end->ifname}));
    QOCNET_TRY(end->ns->ip({"link", "set", end->ifname, "up"}));
  }
  return {};
}

Result<UdpSocket> UdpSocket::open(const Namespace& ns, const std::string& bind_ip,
                                  std::uint16_t port, int rcvbuf_bytes) {
  int fd = in_namespace(ns, [] { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
  if (fd < 0) return make_error(Errc::internal, "socket() failed", {}, errno);
  UdpSocket s(fd);
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, bind_ip.c_str(), &a.sin_addr) != 1)
    return make_error(Errc::invalid_argument, "'" + bind_ip + "' is not an IPv4 address");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return make_error(Errc::internal,
                      "bind " + bind_ip + ":" + std::to_string(port) + " in " + ns.name() + " failed",
                      "is the address configured in that namespace?", errno);
  return s;
}

UdpSocket::UdpSocket(UdpSocket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}
UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Status UdpSocket::send_to(const std::string& ip, std::uint16_t port,
                          std::span<const std::uint8_t> data) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
    return make_error(Errc::invalid_argument, "'" + ip + "' is not an IPv4 address");
  for (;;) {
    ssize_t n = ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (n == static_cast<ssize_t>(data.size())) return {};
    if (n < 0 && (errno == ENOBUFS || errno == EAGAIN)) {  // the qdisc is full: wait
      ::usleep(100);
      continue;
    }
    return make_error(Errc::internal, "sendto " + ip + " failed", {}, errno);
  }
}

Status UdpSocket::send_seq(const std::string& ip, std::uint16_t port, std::uint64_t seq,
                           std::size_t size) {
  std::vector<std::uint8_t> buf(std::max<std::size_t>(size, sizeof seq), 0);
  std::memcpy(buf.data(), &seq, sizeof seq);
  return send_to(ip, port, buf);
}

std::vector<std::uint64_t> UdpSocket::drain_seqs(std::chrono::milliseconds quiet,
                                                 std::size_t max) {
  std::vector<std::uint64_t> seqs;
  std::uint8_t buf[65536];
  while (seqs.size() < max) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n >= static_cast<ssize_t>(sizeof(std::uint64_t))) {
      std::uint64_t s;
      std::memcpy(&s, buf, sizeof s);
      seqs.push_back(s);
    }
  }
  return seqs;
}

Result<std::unique_ptr<Topology>> Topology::create(int processes, bool distinct_addresses) {
  if (processes < 1 || processes > kMaxProcesses)
    return make_error(Errc::invalid_argument, "a topology has 1 to " + std::to_string(kMaxProcesses) +
                                                  " processes, not " + std::to_string(processes));
  QOCNET_ASSIGN(sensor, Namespace::create(unique_name("sen")));
  QOCNET_ASSIGN(edge, Namespace::create(unique_name("edg")));
  std::unique_ptr<Topology> t(new Topology(std::move(sensor), std::move(edge)));
  const std::string cidr_sensor = std::string(sensor_ip) + "/24";
  const std::string cidr_service = std::string(service_ip) + "/24";
  QOCNET_TRY(add_veth({&t->sensor, "s0", sensor_mac, cidr_sensor},
                      {&t->edge, "e0", service_mac, cidr_service}));
  QOCNET_TRY(t->sensor.ip({"neigh", "replace", service_ip, "lladdr", service_mac, "dev", "s0",
                           "nud", "permanent"}));
  for (int i = 0; i < processes; ++i) {
    QOCNET_ASSIGN(p, Namespace::create(unique_name("p" + std::to_string(i))));
    t->procs.push_back(std::move(p));
    if (distinct_addresses) {
      QOCNET_TRY(add_veth({&t->edge, edge_port_to_process(i), "", ""},
                          {&t->procs.back(), "p0", process_mac(i), process_ip(i) + "/24"}));
      // The sensor's subnet is reached through p0 (replies, reverse-path checks).
      QOCNET_TRY(t->procs.back().ip({"route", "add", "10.77.0.0/24", "dev", "p0"}));
    } else {
      QOCNET_TRY(add_veth({&t->edge, edge_port_to_process(i), "", ""},
                          {&t->procs.back(), "p0", service_mac, cidr_service}));
    }
  }
  return t;
}

}  // namespace qocnet::testbed
