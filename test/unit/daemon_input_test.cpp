// SPDX-License-Identifier: Apache-2.0
// qocnetd's defences against careless or hostile input that need no daemon:
// the rate limiter's memory, the limits of request fields, the config
// parser on malformed YAML, and what --listen may replace.
#include <catch2/catch.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "convert.hpp"
#include "../support/check.hpp"
#include "daemon_config.hpp"
#include "qocnet/v1/control.pb.h"
#include "qocnet/v1/qoc.pb.h"
#include "server.hpp"
#include "services.hpp"

using namespace qocnet;
using namespace qocnet::grpc_api;
namespace fs = std::filesystem;

TEST_CASE("the rate limiter forgets idle callers and holds at most its cap", "[unit][limits]") {
  RateLimiter limiter(10, 20, 100);
  const auto t0 = RateLimiter::Clock::now();
  // Fresh names, each refused or not, never grow the map past the cap.
  for (int i = 0; i < 10000; ++i) (void)limiter.allow("name" + std::to_string(i), t0);
  CHECK(limiter.clients() <= 100);
  // A caller that keeps calling keeps its (empty) bucket against the churn.
  RateLimiter busy(1, 2, 50);
  CHECK(busy.allow("victim", t0));
  CHECK(busy.allow("victim", t0));
  CHECK_FALSE(busy.allow("victim", t0));
  // Idle for burst / rate seconds: full again, so forgotten.
  const auto later = t0 + std::chrono::seconds(3);
  for (int i = 0; i < 49; ++i) (void)busy.allow("x" + std::to_string(i), later);
  CHECK(busy.clients() <= 50);
  CHECK(busy.allow("victim", later));
  RateLimiter idle(10, 20, 1000);
  for (int i = 0; i < 500; ++i) (void)idle.allow("n" + std::to_string(i), t0);
  CHECK(idle.clients() == 500);
  for (int i = 0; i < 1024; ++i) (void)idle.allow("again", t0 + std::chrono::seconds(5));
  CHECK(idle.clients() == 1);  // the 500 were idle 5 s > 20 / 10 s
}

TEST_CASE("the rate limiter still limits one caller", "[unit][limits]") {
  RateLimiter limiter(2, 5);
  const auto t0 = RateLimiter::Clock::now();
  int ok = 0;
  for (int i = 0; i < 12; ++i) ok += limiter.allow("p", t0) ? 1 : 0;
  CHECK(ok == 5);
  CHECK(limiter.allow("p", t0 + std::chrono::milliseconds(600)));
  CHECK_FALSE(limiter.allow("p", t0 + std::chrono::milliseconds(600)));
}

TEST_CASE("over-long text fields of any request are refused naming the field and the limit", "[unit][limits]") {
  const std::string mib(1 << 20, 'a');
  {
    v1::ReportRequirementRequest r;
    r.set_name(mib);
    auto st = check_request(r);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_argument);
    CHECK_THAT(st.error().message, Catch::Contains("name is 1048576 bytes, more than the limit of 64"));
  }
  {
    v1::RegisterProcessRequest r;
    r.set_name("p");
    r.set_interface(std::string(16, 'f'));
    auto st = check_request(r);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message, Catch::Contains("interface is 16 bytes, more than the limit of 15"));
  }
  {
    v1::AddSensorRequest r;
    r.mutable_sensor()->set_name("s");
    r.mutable_sensor()->set_address("unix:/x");
    r.mutable_sensor()->add_streams()->set_source("10.0.0.1");
    r.mutable_sensor()->add_streams()->set_source(std::string(46, '1'));
    auto st = check_request(r);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message, Catch::Contains("sensor.streams[1].source is 46 bytes, more than the limit of 45"));
  }
  {
    v1::SetCloneTargetsRequest r;
    for (int i = 0; i < 1025; ++i) r.add_processes("p");
    auto st = check_request(r);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message, Catch::Contains("processes has 1025 entries, more than the limit of 1024"));
  }
  {
    v1::AttachPortRequest r;
    r.set_port(std::string(16, 'e'));
    auto st = check_request(r);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message, Catch::Contains("port is 16 bytes, more than the limit of 15"));
  }
  {
    v1::SetQocTableRequest r;
    r.set_yaml(std::string(64 * 1024, '#'));
    CHECK(check_request(r).ok());
    r.set_yaml(std::string(64 * 1024 + 1, '#'));
    CHECK_FALSE(check_request(r).ok());
  }
  {
    v1::RegisterProcessRequest r;
    r.set_name("p");
    r.set_interface("eth0");
    *r.add_streams() = v1::StreamId();
    CHECK(check_request(r).ok());
  }
}

TEST_CASE("every shape mistake in the daemon config is an error naming the key, never an exception",
          "[unit][config]") {
  struct Case { const char* yaml; const char* says; };
  const Case cases[] = {
      {"? [a, b]\n: 1\n", "top level: has a key that is a list"},
      {"? {a: 1}\n: 1\n", "top level: has a key that is a mapping"},
      {"[1, 2]\n", "top level: is a list, not a mapping"},
      {"just text\n", "top level: is a single value, not a mapping"},
      {"listen: [a, b]\n", "listen: is a list, not a single value"},
      {"listen: {a: 1}\n", "listen: is a mapping, not a single value"},
      {"listen:\n", "listen: is empty, not a single value"},
      {"log_level: [debug]\n", "log_level: is a list"},
      {"keep_datapath: maybe\n", "keep_datapath: is 'maybe', not true or false"},
      {"keep_datapath: [true]\n", "keep_datapath: is a list"},
      {"tls: yes\n", "tls: is a single value, not a mapping"},
      {"tls: {cert: [a]}\n", "tls.cert: is a list"},
      {"tls: {cert: a, cert: b}\n", "tls.cert: appears twice"},
      {"tls: {? [x] : 1}\n", "tls: has a key that is a list"},
      {"rate_limit: 5\n", "rate_limit: is a single value, not a mapping"},
      {"rate_limit: {per_second: fast}\n", "rate_limit.per_second: is 'fast', not a finite number"},
      {"rate_limit: {per_second: .nan}\n", "not a finite number"},
      {"rate_limit: {burst: {a: 1}}\n", "rate_limit.burst: is a mapping"},
      {"ports: e0\n", "ports: is a single value, not a list"},
      {"ports: [[e0]]\n", "ports[0]: is a list, not a single value"},
      {"ports: [{a: 1}]\n", "ports[0]: is a mapping"},
      {"ports: [name-longer-than-15]\n", "ports[0]"},
      {"pairs: {ingress: e0}\n", "pairs: is a mapping, not a list"},
      {"pairs: [e0]\n", "pairs[0]: is a single value, not a mapping"},
      {"pairs: [{ingress: e0}]\n", "pairs[0].egress: is missing"},
      {"pairs: [{ingress: [e0], egress: e1}]\n", "pairs[0].ingress: is a list"},
      {"processes: [{name: p, port: e1}]\n", "processes[0].mac: is missing"},
      {"processes: [{name: [p], port: e1, mac: '02:00:00:00:00:01'}]\n", "processes[0].name: is a list"},
      {"processes: [{name: p, port: e1, mac: '02:00:00:00:00:01', udp_port: 70000}]\n",
       "processes[0].udp_port: is '70000', not a whole number in 0..65535"},
      {"processes: [{name: p, port: e1, mac: '02:00:00:00:00:01', udp_port: -1}]\n", "processes[0].udp_port"},
      {"processes: [{name: p, port: e1, mac: '02:00:00:00:00:01', udp_port: {a: 1}}]\n",
       "processes[0].udp_port: is a mapping"},
      {"processes: [{name: p, port: e1, mac: zz}]\n", "processes[0].mac"},
      {"processes: [{name: p, port: e1, mac: '02:00:00:00:00:01', ip: 300.1.1.1}]\n", "processes[0].ip"},
      {"processes: [{name: 'bad name', port: e1, mac: '02:00:00:00:00:01'}]\n", "processes[0].name"},
      {"streams: [{targets: [p]}]\n", "streams[0].stream: is missing"},
      {"streams: [{stream: [1]}]\n", "streams[0].stream: is a list"},
      {"streams: [{stream: '10.0.0.1:1->:2', targets: p}]\n", "streams[0].targets: is a single value, not a list"},
      {"streams: [{stream: '10.0.0.1:1->:2', targets: [[p]]}]\n", "streams[0].targets[0]: is a list"},
      {"streams: [{stream: '10.0.0.1:1->:2', policies: [keep]}]\n", "streams[0].policies: is a list, not a mapping"},
      {"streams: [{stream: '10.0.0.1:1->:2', policies: {p: [keep]}}]\n", "streams[0].policies.p: is a list"},
      {"streams: [{stream: '10.0.0.1:1->:2', policies: {? [p] : keep}}]\n", "streams[0].policies: has a key"},
      {"streams: [{stream: '10.0.0.1:1->:2', policies: {p: 'bogus(1)'}}]\n", "streams[0].policies.p"},
      {"sensors: [{name: s, address: 'unix:/x'}]\n", "sensors[0].streams: is missing"},
      {"sensors: [{name: s, address: 'unix:/x', streams: '10.0.0.1:1->:2'}]\n",
       "sensors[0].streams: is a single value, not a list"},
      {"sensors: [{name: s, address: {a: 1}, streams: []}]\n", "sensors[0].address: is a mapping"},
      {"sensors: [{name: s, address: 'unix:/x', streams: [{a: 1}]}]\n", "sensors[0].streams[0]: is a mapping"},
      {"qoc_table: [a]\n", "qoc_table: is a list"},
      {"loop: {z: [1]}\n", "loop.z: is a list"},
      {"loop: {gain: 0.5}\n", "loop.gain: is not a known key"},
      {"loop: {bins: 2.5}\n", "out of range"},
      {"loop: {climb: 0}\n", "out of range"},
      {"loop: {z: -1}\n", "out of range"},
      {"loop: []\n", "loop: is a list, not a mapping"},
      {"unknown_key: 1\n", "unknown_key: is not a known key"},
      {"listen: a\nlisten: b\n", "listen: appears twice"},
      {"listen: [\n", "not YAML"},
      {"&a [*a]\n", "top level"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    Result<DaemonConfig> r = make_error(Errc::internal, "not run", "");
    REQUIRE_NOTHROW(r = parse_daemon_config(c.yaml, "cfg.yaml"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::StartsWith("cfg.yaml") && Catch::Contains(c.says));
  }
}

TEST_CASE("a good daemon config parses, canonical and without reading files", "[unit][config]") {
  auto r = parse_daemon_config(
      "listen: unix:/tmp/x.sock\nkeep_datapath: true\nrate_limit: {per_second: 5, burst: 10}\n"
      "qoc_table: /nonexistent/table.yaml\nports: [e0]\npairs: [{ingress: e0, egress: e1}]\n"
      "processes: [{name: p, port: e1, mac: '02:AB:00:00:00:01', ip: 10.1.0.2, udp_port: 6000}]\n"
      "streams: [{stream: '[2001:0db8::0:1]:40000->:5000', targets: [p], policies: {p: 'uniform(0.1)'}}]\n"
      "sensors: [{name: s, address: 'unix:/x', streams: ['[::ffff:10.0.0.1]:40000->:5000']}]\n",
      "cfg.yaml");
  INFO((r.ok() ? std::string() : r.error().to_string()));
  REQUIRE(r.ok());
  CHECK(r->keep_datapath);
  CHECK(r->rate == 5);
  CHECK(r->qoc_table_file == "/nonexistent/table.yaml");
  REQUIRE(r->controller.processes.size() == 1);
  CHECK(r->controller.processes[0].mac == "02:ab:00:00:00:01");
  CHECK(r->controller.streams[0].stream.source == "2001:db8::1");
  CHECK(r->controller.sensors[0].streams[0].source == "10.0.0.1");
}

TEST_CASE("an unknown log level is refused, not taken as 'log nothing'", "[unit][config]") {
  DaemonConfig c;
  c.log_level = "verbose";
  auto st = validate(c);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Catch::Contains("log_level 'verbose' is not a log level"));
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    c.log_level = ok;
    CHECK(validate(c).ok());
  }
}

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("qocnet-listen-" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A Unix socket bound at `path`; listening or not (then it is stale once closed).
int unix_socket(const fs::path& path, bool listening) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  if (listening) REQUIRE(::listen(fd, 4) == 0);
  return fd;
}

ListenOptions local_only(const std::string& address) {
  ListenOptions o;
  o.listen = address;
  return o;
}

Result<std::unique_ptr<::grpc::Server>> listen_at(const fs::path& path) {
  return start_server(local_only("unix:" + path.string()), {});
}

}  // namespace

TEST_CASE("qocnetd's --listen replaces only a stale socket, never another file", "[unit][listen]") {
  TempDir dir;
  const fs::path sock = dir.path / "q.sock";
  SECTION("a regular file stays") {
    std::ofstream(sock) << "precious";
    auto r = listen_at(sock);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("not a socket"));
    std::ifstream in(sock);
    std::string text;
    in >> text;
    CHECK(text == "precious");
  }
  SECTION("a directory stays, even an empty one") {
    fs::create_directories(sock);
    auto r = listen_at(sock);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("is a directory"));
    CHECK(fs::is_directory(sock));
  }
  SECTION("a symbolic link stays, and so does what it points to") {
    const fs::path target = dir.path / "target";
    std::ofstream(target) << "x";
    fs::create_symlink(target, sock);
    auto r = listen_at(sock);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("symbolic link"));
    CHECK(fs::is_symlink(sock));
    CHECK(fs::exists(target));
  }
  SECTION("a symbolic link to a stale socket stays") {
    const fs::path target = dir.path / "stale.sock";
    ::close(unix_socket(target, false));
    fs::create_symlink(target, sock);
    REQUIRE_FALSE(listen_at(sock).ok());
    CHECK(fs::is_symlink(sock));
    CHECK(fs::exists(target));
  }
  SECTION("a live socket of another server stays") {
    const int fd = unix_socket(sock, true);
    auto r = listen_at(sock);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::already_exists);
    CHECK_THAT(r.error().message, Catch::Contains("another server listens"));
    struct stat st {};
    CHECK(::lstat(sock.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    ::close(fd);
  }
  SECTION("a regular file at the temporary name stays") {
    std::ofstream(sock.string() + ".starting") << "precious";
    REQUIRE_FALSE(listen_at(sock).ok());
    CHECK(fs::is_regular_file(sock.string() + ".starting"));
  }
  SECTION("a stale socket is replaced, and removed at the end") {
    ::close(unix_socket(sock, false));
    auto r = listen_at(sock);
    INFO((r.ok() ? std::string() : r.error().to_string()));
    REQUIRE(r.ok());
    (*r)->Shutdown();
    remove_socket(local_only("unix:" + sock.string()));
    CHECK_FALSE(fs::exists(sock));
  }
  SECTION("a file put at the path after start is not removed at the end") {
    auto r = listen_at(sock);
    REQUIRE(r.ok());
    fs::remove(sock);
    std::ofstream(sock) << "new";
    (*r)->Shutdown();
    remove_socket(local_only("unix:" + sock.string()));
    CHECK(fs::is_regular_file(sock));
  }
}

TEST_CASE("the configuration qocnetd installs with reads back: default deny, loopback endpoints, no ports",
          "[unit][config]") {
  auto c = load_daemon_config(std::string(QOCNET_SOURCE_DIR) + "/deploy/qocnetd.yaml");
  REQUIRE_OK(c);
  CHECK(c->tenancy.tenants.empty());
  CHECK(c->tenancy.operators.empty());
  CHECK(c->metrics.rfind("127.0.0.1:", 0) == 0);
  CHECK(c->health.rfind("127.0.0.1:", 0) == 0);
  CHECK(c->controller.ports.empty());
  CHECK(c->tcp.empty());
  REQUIRE_OK(validate(*c));
}
