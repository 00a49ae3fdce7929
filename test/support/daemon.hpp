// SPDX-License-Identifier: Apache-2.0
// A qocnetd process for tests: started inside a namespace (nsenter --net, so
// /sys/fs/bpf stays visible for its pins), with its log in a file, and gRPC
// stubs to its local socket. Killed (SIGKILL) when the object goes, unless
// the test stopped it already.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "qocnet/testbed.hpp"
#include "qocnet_client/channel.hpp"
#include "qocnet/v1/control.grpc.pb.h"
#include "qocnet/v1/qoc.grpc.pb.h"
#include "qocnet/v1/sensor.grpc.pb.h"

namespace qocnet::test {

// A tenants entry admitting every root process to every stream: the default
// of a test's qocnetd (append it to a test's own configuration).
inline constexpr const char* kRootTenant = "tenants:\n  - {name: root, uid: 0, streams: [\"*\"]}\n";

// How a test's daemon is started besides its arguments: a command that runs
// it (e.g. setpriv with a bounding set), and environment variables.
struct Launch {
  std::vector<std::string> wrapper;  // argv before the program's own
  std::vector<std::string> env;      // NAME=VALUE, added to the test's
};

// A directory in the BPF file system for one test's pins, removed with it.
struct PinDir {
  std::string path = "/sys/fs/bpf/" + testbed::unique_name("pin");
  PinDir() = default;
  PinDir(const PinDir&) = delete;
  PinDir& operator=(const PinDir&) = delete;
  ~PinDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

class Daemon {
 public:
  // Starts qocnetd in `ns` with `args` (besides --listen). Does not wait.
  // `program` is qocnetd unless given (e.g. the sensor agent).
  Daemon(const testbed::Namespace& ns, std::vector<std::string> args, std::string tag = "d",
         const std::string& program = QOCNETD_PATH, const Launch& launch = {})
      : dir_("/tmp/" + testbed::unique_name(tag)), env_(launch.env) {
    std::filesystem::create_directories(dir_);
    socket_ = dir_ + "/grpc.sock";
    log_ = dir_ + "/daemon.log";
    process_socket_ = dir_ + "/process/grpc.sock";
    std::vector<std::string> argv{"nsenter", "--net=" + ns.path()};
    argv.insert(argv.end(), launch.wrapper.begin(), launch.wrapper.end());
    argv.insert(argv.end(), {program, "--listen", "unix:" + socket_});
    if (program == QOCNETD_PATH) {
      argv.push_back("--process-listen");
      argv.push_back("unix:" + process_socket_);
      // Without a configuration of its own, the test's processes (root, in
      // any namespace) may register any stream.
      if (std::find(args.begin(), args.end(), "--config") == args.end()) {
        std::ofstream(dir_ + "/tenants.yaml") << kRootTenant;
        argv.push_back("--config");
        argv.push_back(dir_ + "/tenants.yaml");
      }
    }
    argv.insert(argv.end(), args.begin(), args.end());
    start(argv);
  }
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& socket() const { return socket_; }
  std::string address() const { return "unix:" + socket_; }
  // qocnetd's process socket (QocService only; what containers reach).
  std::string process_address() const { return "unix:" + process_socket_; }
  pid_t pid() const { return pid_; }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Waits until the socket exists (the daemon listens before it compiles).
  bool wait_listening(std::chrono::seconds limit = std::chrono::seconds(10)) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (std::filesystem::exists(socket_)) return true;
      if (exited()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // Health status: 1 SERVING, 2 NOT_SERVING, -1 no answer.
  int health() const {
    return client::health_status(::grpc::CreateChannel(address(), ::grpc::InsecureChannelCredentials()),
                                 std::chrono::seconds(2));
  }

  // Waits until health says SERVING; false if the daemon exited or timed out.
  bool wait_serving(std::chrono::seconds limit = std::chrono::seconds(60)) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (health() == 1) return true;
      if (exited()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  bool exited() const {
    if (pid_ <= 0) return true;
    int st = 0;
    return ::waitpid(pid_, &st, WNOHANG) == pid_ ? (const_cast<Daemon*>(this)->pid_ = -1, true) : false;
  }

  // Sends `sig` and waits for the exit; returns the exit status (or 128+sig).
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

  std::unique_ptr<v1::ControlService::Stub> control() const {
    return v1::ControlService::NewStub(::grpc::CreateChannel(address(), ::grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<v1::SensorService::Stub> sensor() const {
    return v1::SensorService::NewStub(::grpc::CreateChannel(address(), ::grpc::InsecureChannelCredentials()));
  }
  // QocService over the process socket, as a process's own calls arrive.
  std::unique_ptr<v1::QocService::Stub> qoc() const {
    return v1::QocService::NewStub(::grpc::CreateChannel(process_address(), ::grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<v1::ControlService::Stub> control_on_process_socket() const {
    return v1::ControlService::NewStub(
        ::grpc::CreateChannel(process_address(), ::grpc::InsecureChannelCredentials()));
  }

 private:
  void start(const std::vector<std::string>& argv) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      for (auto& e : env_) ::putenv(e.data());
      std::vector<char*> cargv;
      for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      ::execvp(cargv[0], cargv.data());
      ::_exit(127);
    }
  }
  std::string dir_, socket_, process_socket_, log_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
};

// A test PKI made with openssl in `dir`: a CA (ca.pem, ca.key), a server
// certificate for localhost and 127.0.0.1 (server.pem, server.key) and a
// client certificate with common name `client` (<client>.pem, <client>.key).
inline void make_test_pki(const std::string& dir, const std::string& client) {
  auto sh = [&](const std::string& cmd) { REQUIRE_OK(testbed::run({"sh", "-c", "cd " + dir + " && " + cmd})); };
  sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=qocnet-test-ca -keyout ca.key -out ca.pem 2>/dev/null");
  sh("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null");
  sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in server.csr -CA ca.pem "
     "-CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.pem 2>/dev/null");
  sh("openssl req -newkey rsa:2048 -nodes -subj /CN=" + client + " -keyout " + client + ".key -out " + client +
     ".csr 2>/dev/null");
  sh("openssl x509 -req -in " + client + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out " + client +
     ".pem 2>/dev/null");
}

// A deadline-bound client context.
inline std::unique_ptr<::grpc::ClientContext> ctx(int seconds = 10) {
  auto c = std::make_unique<::grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

constexpr std::uint16_t kSensorPort = 40000;
constexpr std::uint16_t kServicePort = 5000;

inline v1::StreamId stream_msg() {
  v1::StreamId s;
  s.set_source(testbed::Topology::sensor_ip);
  s.set_source_port(kSensorPort);
  s.set_destination_port(kServicePort);
  return s;
}

// A client context carrying a process's token, as QocService wants it.
inline std::unique_ptr<::grpc::ClientContext> ctx(const std::string& token, int seconds = 10) {
  auto c = ctx(seconds);
  c->AddMetadata("authorization", "Bearer " + token);
  return c;
}

// The tenants entries that let process i of `t` (in namespace t.procs[i])
// register any stream: a qocnetd config fragment.
inline std::string tenants_yaml(const testbed::Topology& t) {
  std::string y = "tenants:\n";
  for (std::size_t i = 0; i < t.procs.size(); ++i)
    y += "  - {name: proc" + std::to_string(i) + ", netns: " + t.procs[i].name() + ", streams: [\"*\"]}\n";
  return y;
}

// Writes `yaml` to a file under /tmp and returns the argument pair
// {"--config", path}; the file goes with the test's Daemon directory clean-up
// (it is small and uniquely named).
inline std::vector<std::string> config_args(const std::string& yaml) {
  const std::string path = "/tmp/" + testbed::unique_name("cfg") + ".yaml";
  std::ofstream(path) << yaml;
  return {"--config", path};
}

// What process i would ask for: its name, UDP port and the stream.
inline v1::RegisterProcessRequest registration(int i, const v1::StreamId& stream, double required) {
  v1::RegisterProcessRequest r;
  r.set_name("proc" + std::to_string(i));
  r.set_udp_port(static_cast<std::uint32_t>(6000 + i));
  *r.add_streams() = stream;
  r.set_required(required);
  return r;
}

// A RegisterProcess made by a process inside `ns` (the register probe, run
// with nsenter --net), as a container's call reaches qocnetd.
struct Registered {
  ::grpc::Status status;
  v1::RegisterProcessResponse response;
};
// `as` runs the probe (e.g. setpriv --reuid=65534 for another user).
inline Registered register_from(const testbed::Namespace& ns, const std::string& address,
                                const v1::RegisterProcessRequest& req, const std::vector<std::string>& as = {}) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(req, &text);
  std::vector<std::string> argv{"nsenter", "--net=" + ns.path()};
  argv.insert(argv.end(), as.begin(), as.end());
  argv.insert(argv.end(), {QOCNET_REGISTER_PROBE, address, text});
  auto out = testbed::run(argv);
  if (!out) FAIL("register probe: " << out.error().to_string());
  const auto nl1 = out->find('\n');
  const auto nl2 = out->find('\n', nl1 + 1);
  REQUIRE(nl2 != std::string::npos);
  Registered r;
  r.status = ::grpc::Status(static_cast<::grpc::StatusCode>(std::stoi(out->substr(0, nl1))),
                            out->substr(nl1 + 1, nl2 - nl1 - 1));
  REQUIRE(google::protobuf::TextFormat::ParseFromString(out->substr(nl2 + 1), &r.response));
  return r;
}

// A datagram the DPI takes for MPEG-TS (one null packet, PID 0x1fff) with a
// sequence number in its payload: the datapath replicates TS streams only.
inline std::vector<std::uint8_t> ts_datagram(std::uint64_t seq) {
  std::vector<std::uint8_t> d(188, 0xff);
  d[0] = 0x47;
  d[1] = 0x1f;
  d[2] = 0xff;
  d[3] = 0x10;
  std::memcpy(&d[4], &seq, sizeof seq);
  return d;
}

// Reads datagrams until `quiet` passes with none; their sequence numbers.
inline std::vector<std::uint64_t> drain_ts(int fd, std::chrono::milliseconds quiet) {
  std::vector<std::uint64_t> out;
  std::uint8_t buf[2048];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) return out;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 12 || buf[0] != 0x47) continue;
    std::uint64_t seq;
    std::memcpy(&seq, &buf[4], sizeof seq);
    out.push_back(seq);
  }
}

inline v1::ProcessSpec process_msg(int i) {
  v1::ProcessSpec p;
  p.set_name("proc" + std::to_string(i));
  p.set_port(testbed::Topology::edge_port_to_process(i));
  p.set_mac(testbed::Topology::process_mac(i));
  p.set_ip(testbed::Topology::process_ip(i));
  p.set_udp_port(static_cast<std::uint32_t>(6000 + i));
  return p;
}

inline std::string status_text(const ::grpc::Status& s) {
  return std::to_string(s.error_code()) + ": " + s.error_message();
}

#define REQUIRE_GRPC_OK(expr)                 \
  do {                                        \
    ::grpc::Status st_ = (expr);              \
    INFO(status_text(st_));                   \
    REQUIRE(st_.ok());                        \
  } while (0)

#define REQUIRE_GRPC_CODE(expr, code, says)                  \
  do {                                                       \
    ::grpc::Status st_ = (expr);                             \
    INFO(status_text(st_));                                  \
    REQUIRE(st_.error_code() == ::grpc::StatusCode::code);   \
    CHECK_THAT(st_.error_message(), Catch::Contains(says));  \
  } while (0)

}  // namespace qocnet::test
