// SPDX-License-Identifier: Apache-2.0
// qocnet::client::Process end to end: examples/cpp_process, started in a
// process's namespace, registers with a real qocnetd, receives its copy of
// real H.264 (ffmpeg-made), measures the share of complete, decodable frames
// and reports it; qocnetd's ControlService shows the registration and the
// measured QoC, high when the process gets everything and lower under an
// operator's frame_aware policy. qocnetd is then restarted (its registrations
// gone with it) and the process registers again by itself.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "../support/corpus.hpp"
#include "../support/daemon.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::microseconds;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The example, run with nsenter --net in `ns`; its output in a file.
class Example {
 public:
  Example(const testbed::Namespace& ns, const std::vector<std::string>& args, std::string out) : out_(std::move(out)) {
    std::vector<std::string> argv{"nsenter", "--net=" + ns.path(), QOCNET_CPP_PROCESS};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> cargv;
      for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      ::execvp(cargv[0], cargv.data());
      ::_exit(127);
    }
  }
  ~Example() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Example(const Example&) = delete;
  Example& operator=(const Example&) = delete;

  std::string output() const { return slurp(out_); }
  bool exited() {
    int st = 0;
    if (pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return pid_ <= 0;
  }
  // Sends `sig`, waits up to 15 s; the exit status (-1: still running).
  int stop(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
    for (int i = 0; i < 1500 && !exited(); ++i) std::this_thread::sleep_for(milliseconds(10));
    return exited() ? status_ : -1;
  }

 private:
  std::string out_;
  pid_t pid_ = -1;
  int status_ = -1;
};

bool listed(const Daemon& d, const std::string& name, v1::ProcessSpec* spec = nullptr) {
  auto control = d.control();
  v1::ListProcessesResponse r;
  if (!control->ListProcesses(ctx().get(), {}, &r).ok()) return false;
  for (const auto& p : r.processes())
    if (p.name() == name) {
      if (spec) *spec = p;
      return true;
    }
  return false;
}

// The QoC `process` last reported on the test stream, as qocnetd's
// WatchStats shows it (requirements are listed in the targets' order).
std::optional<double> measured_of(const Daemon& d, const std::string& process) {
  auto control = d.control();
  v1::WatchStatsRequest req;
  req.set_count(1);
  req.set_interval_ms(100);
  auto c = ctx(5);
  auto reader = control->WatchStats(c.get(), req);
  v1::StatsUpdate u;
  std::optional<double> out;
  while (reader->Read(&u))
    for (const auto& s : u.streams()) {
      if (s.stream().stream().source_port() != kSensorPort) continue;
      for (int i = 0; i < s.targets_size() && i < s.requirements_size(); ++i)
        if (s.targets(i).process() == process && s.requirements(i).has_measured())
          out = s.requirements(i).measured();
    }
  (void)reader->Finish();
  return out;
}

// Waits until qocnetd's measured QoC for `process` satisfies `ok` (15 s).
template <class Ok>
std::optional<double> wait_measured(const Daemon& d, const std::string& process, Ok ok) {
  std::optional<double> m;
  for (int i = 0; i < 150; ++i) {
    m = measured_of(d, process);
    if (m && ok(*m)) return m;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return m;
}

// Points the symlink `link` at `target` (replacing it at once).
void point(const std::string& link, const std::string& target) {
  const std::string tmp = link + ".new";
  fs::remove(tmp);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}

}  // namespace

TEST_CASE("a C++ Process measures and reports the QoC of real H.264 and registers again after a qocnetd restart",
          "[daemon][process]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  const auto& dgrams = [] {
    static const auto d = cut_every_7(corpus_ts(25, 2));
    return std::cref(d);
  }().get();
  const std::vector<std::string> args{"--no-pin", "--port", "e0"};
  auto d = std::make_unique<Daemon>(topo.edge, args, "cp");
  REQUIRE(d->wait_serving());
  // The process dials a path of the test's that follows the daemon across
  // its restart (each test daemon has a socket of its own).
  const std::string dir = "/tmp/" + testbed::unique_name("cpp");
  fs::create_directories(dir);
  const std::string sock = dir + "/qoc.sock";
  point(sock, d->process_address().substr(5));

  const std::string name = "cppproc";
  const std::string stream = std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) +
                             "->:" + std::to_string(kServicePort);
  Example ex(topo.procs[0],
             {"--address", "unix:" + sock, "--name", name, "--stream", stream, "--required", "0", "--port", "6000",
              "--interval", "0.5", "--seconds", "300", "--ready", dir + "/ready"},
             dir + "/out.txt");
  for (int i = 0; i < 200 && !fs::exists(dir + "/ready") && !ex.exited(); ++i)
    std::this_thread::sleep_for(milliseconds(100));
  INFO("the example's output:\n" << ex.output());
  REQUIRE(fs::exists(dir + "/ready"));

  // Registered from its namespace: qocnetd found its veth.
  v1::ProcessSpec spec;
  REQUIRE(listed(*d, name, &spec));
  CHECK(spec.ip() == testbed::Topology::process_ip(0));
  CHECK(spec.udp_port() == 6000);

  auto snd = testbed::UdpSocket::open(topo.sensor, testbed::Topology::sensor_ip, kSensorPort);
  REQUIRE_OK(snd);
  auto replay = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < dgrams.size(); ++i) {
      std::this_thread::sleep_until(t0 + microseconds(400 * i));
      REQUIRE_OK(snd->send_to(testbed::Topology::service_ip, kServicePort, dgrams[i]));
    }
  };

  // Everything delivered (keep): nearly every frame complete and decodable.
  replay();
  auto kept = wait_measured(*d, name, [](double m) { return m >= 0.95; });
  INFO("the example's output:\n" << ex.output());
  REQUIRE(kept);
  CHECK(*kept >= 0.95);
  CHECK(*kept <= 1.0);
  CHECK_THAT(ex.output(), Catch::Contains("policy " + stream + " keep reason current"));

  // The operator drops 30 % by whole frames: the process sees it on its
  // policy stream, and measures fewer decodable frames.
  v1::SetPolicyRequest sp;
  sp.set_process(name);
  *sp.mutable_stream() = stream_msg();
  sp.mutable_policy()->set_kind(v1::POLICY_KIND_FRAME_AWARE);
  sp.mutable_policy()->set_drop(0.3);
  v1::SetPolicyResponse spr;
  REQUIRE_GRPC_OK(d->control()->SetPolicy(ctx().get(), sp, &spr));
  replay();
  auto lossy = wait_measured(*d, name, [](double m) { return m < 0.9; });
  INFO("the example's output:\n" << ex.output());
  REQUIRE(lossy);
  CHECK(*lossy < 0.9);
  CHECK(*lossy > 0.05);
  CHECK_THAT(ex.output(), Catch::Contains("frame_aware(0.3) reason operator"));

  // qocnetd restarts without its state: the registration is gone, and the
  // process registers again by itself and reports to the new daemon.
  REQUIRE(d->stop(SIGTERM) == 0);
  d = std::make_unique<Daemon>(topo.edge, args, "cp");
  point(sock, d->process_address().substr(5));
  REQUIRE(d->wait_serving());
  bool again = false;
  for (int i = 0; i < 300 && !(again = listed(*d, name)); ++i) std::this_thread::sleep_for(milliseconds(100));
  INFO("the example's output:\n" << ex.output() << "\nqocnetd's log:\n" << d->log());
  REQUIRE(again);
  CHECK_THAT(ex.output(), Catch::Contains("session registered again"));
  replay();
  auto after = wait_measured(*d, name, [](double m) { return m >= 0.95; });
  REQUIRE(after);
  CHECK(*after >= 0.95);

  // Stopped, it unregisters and says what it counted over its life.
  CHECK(ex.stop(SIGTERM) == 0);
  const std::string out = ex.output();
  CHECK_THAT(out, Catch::Contains("registrations 2"));
  CHECK_THAT(out, Catch::Contains("total frames"));
  CHECK_FALSE(listed(*d, name));
  fs::remove_all(dir);
}

TEST_CASE("a C++ Process whose registration qocnetd kept across a restart goes on with its token",
          "[daemon][process][restart]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  PinDir pins;
  const std::string dir = "/tmp/" + testbed::unique_name("cpr");
  fs::create_directories(dir);
  // Pinned, with its state file: the registration and its token survive.
  const std::vector<std::string> args{"--pin-dir", pins.path, "--keep-datapath", "--port", "e0", "--state-file",
                                      dir + "/state.yaml"};
  auto d = std::make_unique<Daemon>(topo.edge, args, "cq");
  REQUIRE(d->wait_serving());
  const std::string sock = dir + "/qoc.sock";
  point(sock, d->process_address().substr(5));
  const std::string name = "cppkept";
  const std::string stream = std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) +
                             "->:" + std::to_string(kServicePort);
  Example ex(topo.procs[0],
             {"--address", "unix:" + sock, "--name", name, "--stream", stream, "--port", "6000", "--interval",
              "0.5", "--seconds", "300", "--ready", dir + "/ready"},
             dir + "/out.txt");
  for (int i = 0; i < 200 && !fs::exists(dir + "/ready") && !ex.exited(); ++i)
    std::this_thread::sleep_for(milliseconds(100));
  INFO("the example's output:\n" << ex.output());
  REQUIRE(fs::exists(dir + "/ready"));
  REQUIRE(listed(*d, name));

  REQUIRE(d->stop(SIGTERM) == 0);
  d = std::make_unique<Daemon>(topo.edge, args, "cq");
  point(sock, d->process_address().substr(5));
  REQUIRE(d->wait_serving());
  // The policy stream comes back with the token it has: no second registration.
  bool resumed = false;
  for (int i = 0; i < 300 && !(resumed = ex.output().find("session resumed") != std::string::npos); ++i)
    std::this_thread::sleep_for(milliseconds(100));
  INFO("the example's output:\n" << ex.output() << "\nqocnetd's log:\n" << d->log());
  CHECK(resumed);
  CHECK(listed(*d, name));
  CHECK(ex.output().find("session registered again") == std::string::npos);

  // Its reports reach the new daemon.
  const auto& dgrams = [] {
    static const auto v = cut_every_7(corpus_ts(25, 2));
    return std::cref(v);
  }().get();
  auto snd = testbed::UdpSocket::open(topo.sensor, testbed::Topology::sensor_ip, kSensorPort);
  REQUIRE_OK(snd);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < dgrams.size(); ++i) {
    std::this_thread::sleep_until(t0 + microseconds(400 * i));
    REQUIRE_OK(snd->send_to(testbed::Topology::service_ip, kServicePort, dgrams[i]));
  }
  auto m = wait_measured(*d, name, [](double v) { return v >= 0.95; });
  REQUIRE(m);
  CHECK(*m >= 0.95);
  CHECK(ex.stop(SIGTERM) == 0);
  CHECK_THAT(ex.output(), Catch::Contains("registrations 1"));
  CHECK(d->stop(SIGTERM) == 0);
  fs::remove_all(dir);
}
