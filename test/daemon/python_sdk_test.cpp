// SPDX-License-Identifier: Apache-2.0
// The Python SDK (clients/python, package qocnet) against a real qocnetd:
// the examples examples/python/pyav_qoc.py and opencv_qoc.py run in a
// process's namespace on the copies of a real H.264 MPEG-TS stream, register
// through qocnet.Process, report the share of frames that decode, and
// register again by themselves after qocnetd restarts. What qocnetd knows is
// read through its ControlService (ListProcesses, WatchStats).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "../support/corpus.hpp"
#include "../support/daemon.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

namespace {

// A program run in the background with its output in a file; SIGKILLed with
// the object unless stopped before.
class Child {
 public:
  Child(std::vector<std::string> argv, std::string log) : log_(std::move(log)) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execvp(cargv[0], cargv.data());
      ::_exit(127);
    }
  }
  ~Child() { stop(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Sends `sig`, waits up to 40 s for the exit (then SIGKILL); the exit
  // status, or 128 + the signal that ended it.
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int st = 0;
    const auto end = std::chrono::steady_clock::now() + seconds(40);
    while (::waitpid(pid_, &st, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  bool exited() {
    if (pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

// qocnetd at fixed socket paths in `dir`, so a restarted one is found where
// the process's qocnet.Process keeps dialling.
std::unique_ptr<Child> start_qocnetd(const testbed::Namespace& edge, const std::string& dir, const std::string& tag) {
  return std::make_unique<Child>(
      std::vector<std::string>{"nsenter", "--net=" + edge.path(), QOCNETD_PATH, "--listen", "unix:" + dir + "/grpc.sock",
                               "--process-listen", "unix:" + dir + "/process/grpc.sock", "--config",
                               dir + "/tenants.yaml", "--no-pin", "--port", "e0"},
      dir + "/" + tag + ".log");
}

bool wait_serving(const std::string& address, Child& d, seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (client::health_status(::grpc::CreateChannel(address, ::grpc::InsecureChannelCredentials()),
                              std::chrono::seconds(2)) == 1)
      return true;
    if (d.exited()) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

bool registered(v1::ControlService::Stub& c, const std::string& name) {
  v1::ListProcessesResponse procs;
  if (!c.ListProcesses(ctx().get(), {}, &procs).ok()) return false;
  for (const auto& p : procs.processes())
    if (p.name() == name) return true;
  return false;
}

// The QoC `name` last reported on the test's stream, as WatchStats shows it.
std::optional<double> measured(v1::ControlService::Stub& c, const std::string& name) {
  auto cx = ctx(5);
  v1::WatchStatsRequest r;
  r.set_count(1);
  r.set_interval_ms(100);
  auto reader = c.WatchStats(cx.get(), r);
  v1::StatsUpdate u;
  std::optional<double> out;
  while (reader->Read(&u))
    for (const auto& s : u.streams())
      for (int i = 0; i < s.targets_size() && i < s.requirements_size(); ++i)
        if (s.targets(i).process() == name && s.requirements(i).has_measured()) out = s.requirements(i).measured();
  (void)reader->Finish();
  return out;
}

template <class F>
bool eventually(seconds limit, F&& f) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(250));
  }
  return false;
}

void run_example(const std::string& script, const std::string& name) {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const std::string dir = "/tmp/" + testbed::unique_name("pysdk");
  fs::create_directories(dir);
  std::ofstream(dir + "/tenants.yaml") << kRootTenant;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  const std::string control_address = "unix:" + dir + "/grpc.sock";
  auto control = [&] {
    return v1::ControlService::NewStub(::grpc::CreateChannel(control_address, ::grpc::InsecureChannelCredentials()));
  };

  // Every log so far, for a failed check (read when it is made).
  auto logs = [&] {
    std::string out;
    for (const char* file : {"qocnetd1.log", "qocnetd2.log", "example.log"}) {
      std::ifstream in(dir + "/" + file);
      std::stringstream ss;
      ss << in.rdbuf();
      out += std::string("--- ") + file + ":\n" + ss.str();
    }
    return out;
  };
#define PYSDK_REQUIRE(cond) \
  do {                      \
    INFO(logs());           \
    REQUIRE(cond);          \
  } while (0)
#define PYSDK_CHECK(cond) \
  do {                    \
    INFO(logs());         \
    CHECK(cond);          \
  } while (0)

  auto d = start_qocnetd((*t)->edge, dir, "qocnetd1");
  PYSDK_REQUIRE(wait_serving(control_address, *d, seconds(90)));

  // A real H.264 stream: 320x240, 25 frame/s, a key frame every second,
  // sent at its own pace over and over by the sensor.
  const std::string clip = dir + "/clip.ts";
  auto made = testbed::run({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc2=size=320x240:rate=25", "-t", "30", "-c:v", "libx264", "-preset", "ultrafast",
                            "-b:v", "1M", "-bf", "0", "-g", "25", "-f", "mpegts", clip});
  INFO(describe(made));
  REQUIRE(made.ok());
  std::ifstream f(clip, std::ios::binary);
  const std::vector<std::uint8_t> ts((std::istreambuf_iterator<char>(f)), {});
  const auto dgrams = cut_every_7(ts);
  REQUIRE(dgrams.size() > 100);
  auto snd = testbed::UdpSocket::open((*t)->sensor, testbed::Topology::sensor_ip, kSensorPort);
  REQUIRE_OK(snd);
  std::atomic<bool> sending{true};
  std::thread sender([&] {
    const auto each = std::chrono::microseconds(30'000'000 / static_cast<long>(dgrams.size()));
    auto next = std::chrono::steady_clock::now();
    while (sending)
      for (std::size_t i = 0; i < dgrams.size() && sending; ++i) {
        std::this_thread::sleep_until(next);
        next += each;
        (void)snd->send_to(testbed::Topology::service_ip, kServicePort, dgrams[i]);
      }
  });
  struct Join {
    std::atomic<bool>& flag;
    std::thread& th;
    ~Join() {
      flag = false;
      if (th.joinable()) th.join();
    }
  } join{sending, sender};

  const std::string stream = std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) +
                             "->:" + std::to_string(kServicePort);
  Child example({"nsenter", "--net=" + (*t)->procs[0].path(), "env",
                 "PYTHONPATH=" QOCNET_SOURCE_DIR "/clients/python", "/usr/bin/python3",
                 QOCNET_SOURCE_DIR "/examples/python/" + script, "--address", "unix:" + dir + "/process/grpc.sock",
                 "--name", name, "--udp-port", "6000", "--stream", stream, "--window", "2"},
                dir + "/example.log");

  // It registers, and its measured QoC arrives: with nothing dropped, most
  // frames decode.
  PYSDK_REQUIRE(eventually(seconds(30), [&] { return registered(*control(), name); }));
  std::optional<double> qoc;
  PYSDK_REQUIRE(eventually(seconds(60), [&] { return (qoc = measured(*control(), name)).has_value(); }));
  INFO("measured " << *qoc);
  PYSDK_CHECK(*qoc >= 0.0);
  PYSDK_CHECK(*qoc <= 1.0);
  PYSDK_CHECK(*qoc > 0.5);
  PYSDK_CHECK(!example.exited());

  // qocnetd restarts without its state: the process registers again by
  // itself and reports again.
  PYSDK_CHECK(d->stop(SIGTERM) == 0);
  auto d2 = start_qocnetd((*t)->edge, dir, "qocnetd2");
  PYSDK_REQUIRE(wait_serving(control_address, *d2, seconds(90)));
  PYSDK_REQUIRE(eventually(seconds(60), [&] { return registered(*control(), name); }));
  std::optional<double> again;
  PYSDK_REQUIRE(eventually(seconds(60), [&] { return (again = measured(*control(), name)).has_value(); }));
  INFO("measured after the restart " << *again);
  PYSDK_CHECK(*again >= 0.0);
  PYSDK_CHECK(*again <= 1.0);
  PYSDK_CHECK(*again > 0.5);
  PYSDK_CHECK(example.log().find("registered again") != std::string::npos);

  PYSDK_CHECK(example.stop(SIGTERM) == 0);
  PYSDK_CHECK(eventually(seconds(10), [&] { return !registered(*control(), name); }));  // it unregistered on its way out
  PYSDK_CHECK(d2->stop(SIGTERM) == 0);
#undef PYSDK_REQUIRE
#undef PYSDK_CHECK
}

}  // namespace

TEST_CASE("python sdk: the PyAV example registers and reports its decoded share and registers again after a restart",
          "[daemon][python]") {
  run_example("pyav_qoc.py", "pyav");
}

TEST_CASE("python sdk: the OpenCV example registers and reports its decoded share and registers again after a restart",
          "[daemon][python]") {
  run_example("opencv_qoc.py", "opencv");
}
