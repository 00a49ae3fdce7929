// SPDX-License-Identifier: Apache-2.0
// qocnetd as its systemd unit runs it (deploy/systemd/qocnetd.service): as
// root with only the capabilities of the unit's CapabilityBoundingSet, each
// of which it needs, and Type=notify: READY=1 once the datapath serves,
// STOPPING=1 on SIGTERM. A container's registration (another uid, its own
// namespace) and its copies are part of "serves".
#include <catch2/catch.hpp>
#include <sys/socket.h>
#include <sys/un.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "../support/daemon.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

// The capabilities this test knows by number (linux/capability.h).
const std::map<std::string, int> kCapNumbers{{"CAP_NET_ADMIN", 12}, {"CAP_SYS_PTRACE", 19},
                                             {"CAP_SYS_ADMIN", 21}, {"CAP_PERFMON", 38},
                                             {"CAP_BPF", 39}};

// The unit's CapabilityBoundingSet, as written.
std::vector<std::string> unit_capabilities() {
  std::ifstream in(QOCNET_SYSTEMD_UNIT_DIR "/qocnetd.service");
  REQUIRE(in);
  std::vector<std::string> caps;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapabilityBoundingSet=", 0) != 0) continue;
    std::istringstream words(line.substr(line.find('=') + 1));
    for (std::string w; words >> w;) {
      INFO("the unit grants " << w << ", which this test does not know");
      REQUIRE(kCapNumbers.count(w) == 1);
      caps.push_back(w);
    }
  }
  return caps;
}

// setpriv's --bounding-set for `caps` but `without`: "-all,+net_admin,...".
std::string bounding_set(const std::vector<std::string>& caps, const std::string& without = "") {
  std::string out = "-all";
  for (const auto& c : caps) {
    if (c == without) continue;
    std::string name = c.substr(4);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out += ",+" + name;
  }
  return out;
}

std::uint64_t mask_of(const std::vector<std::string>& caps) {
  std::uint64_t m = 0;
  for (const auto& c : caps) m |= std::uint64_t{1} << kCapNumbers.at(c);
  return m;
}

// CapEff of a running process.
std::uint64_t effective_caps(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  FAIL("no CapEff in /proc/" << pid << "/status");
  return 0;
}

// What systemd's NOTIFY_SOCKET receives: a datagram socket of the test's.
class NotifySocket {
 public:
  NotifySocket() : path_("/tmp/" + testbed::unique_name("notify")) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }
  // The next message, or "" when none comes within `limit`.
  std::string next(milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return "";
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string stream_text() {
  return std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) + "->:" +
         std::to_string(kServicePort);
}

// qocnetd in the topology's edge namespace under setpriv: root with exactly
// `bounding` as its bounding set (hence its permitted and effective sets),
// its pins in `pins`, its tenant the namespace of process 0.
std::unique_ptr<Daemon> start_confined(const testbed::Topology& topo, const PinDir& pins,
                                       const std::string& bounding, const std::vector<std::string>& env) {
  auto cfg = config_args("tenants:\n  - {name: zero, netns: " + topo.procs[0].name() + ", streams: [\"" +
                         stream_text() + "\"]}\n");
  std::vector<std::string> args{"--pin-dir", pins.path, "--port", "e0"};
  args.insert(args.end(), cfg.begin(), cfg.end());
  return std::make_unique<Daemon>(topo.edge, args, "cap", QOCNETD_PATH,
                                  Launch{{"setpriv", "--bounding-set=" + bounding, "--inh-caps=-all"}, env});
}

// A process of process 0's namespace, running as uid 65534 as a container's
// would, registers over the process socket.
Registered register_as_nobody(const testbed::Topology& topo, const Daemon& d) {
  return register_from(topo.procs[0], d.process_address(), registration(0, stream_msg(), 0),
                       {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
}

}  // namespace

TEST_CASE("qocnetd serves with only the capabilities its systemd unit grants and notifies systemd when ready",
          "[daemon][service]") {
  const auto caps = unit_capabilities();
  REQUIRE_FALSE(caps.empty());
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  PinDir pins;
  NotifySocket notify;
  auto d = start_confined(topo, pins, bounding_set(caps), {notify.env()});
  REQUIRE(d->wait_listening());

  // READY=1 comes only once the datapath serves: health already says so.
  std::string ready;
  for (int i = 0; i < 120 && ready.find("READY=1") == std::string::npos && !d->exited(); ++i)
    ready = notify.next(milliseconds(500));
  INFO("qocnetd's log:\n" << d->log());
  REQUIRE_THAT(ready, Catch::Contains("READY=1"));
  CHECK_THAT(ready, Catch::Contains("STATUS=serving"));
  CHECK(d->health() == 1);
  CHECK(effective_caps(d->pid()) == mask_of(caps));
  CHECK_FALSE(fs::is_empty(pins.path));

  const auto reg = register_as_nobody(topo, *d);
  REQUIRE_GRPC_OK(reg.status);
  auto rx = testbed::UdpSocket::open(topo.procs[0], testbed::Topology::process_ip(0), 6000);
  auto tx = testbed::UdpSocket::open(topo.sensor, testbed::Topology::sensor_ip, kSensorPort);
  REQUIRE_OK(rx);
  REQUIRE_OK(tx);
  for (std::uint64_t i = 0; i < 50; ++i)
    REQUIRE_OK(tx->send_to(testbed::Topology::service_ip, kServicePort, ts_datagram(i)));
  CHECK(drain_ts(rx->fd(), milliseconds(300)).size() == 50);

  CHECK(d->stop(SIGTERM) == 0);
  CHECK_THAT(notify.next(milliseconds(2000)), Catch::Contains("STOPPING=1"));
}

TEST_CASE("qocnetd needs each capability its systemd unit grants and names the one it lacks", "[daemon][service]") {
  const auto caps = unit_capabilities();
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  for (const auto& missing : caps) {
    DYNAMIC_SECTION("without " << missing) {
      PinDir pins;
      NotifySocket notify;
      auto d = start_confined(topo, pins, bounding_set(caps, missing), {notify.env()});
      // Either the datapath cannot start (qocnetd exits 1, never ready) or
      // a container cannot register; the error names a capability.
      std::string msg;
      for (int i = 0; i < 120 && msg.find("READY=1") == std::string::npos && !d->exited(); ++i)
        msg = notify.next(milliseconds(500));
      INFO("qocnetd's log:\n" << d->log());
      if (msg.find("READY=1") == std::string::npos) {
        REQUIRE(d->exited());
        CHECK(d->stop(SIGKILL) == -1);  // it exited by itself
        CHECK_THAT(d->log(), Catch::Contains("lacks CAP_") || Catch::Contains("grant CAP_"));
      } else {
        const auto reg = register_as_nobody(topo, *d);
        INFO(status_text(reg.status));
        CHECK(reg.status.error_code() == ::grpc::StatusCode::PERMISSION_DENIED);
        CHECK_THAT(reg.status.error_message(), Catch::Contains("CAP_"));
      }
    }
  }
}
