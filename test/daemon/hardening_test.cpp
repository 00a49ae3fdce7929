// SPDX-License-Identifier: Apache-2.0
// qocnetd against hostile or careless input: one stream written several ways
// is one stream; forged calls do not use up a process's rate budget and
// over-long fields are refused naming the field; tokens survive a restart;
// the sensor agent obeys only an authenticated edge and a restarted edge's
// new epoch; a hung sensor stalls no other call.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "../support/daemon.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

v1::StreamId stream_written(const std::string& source) {
  v1::StreamId s = stream_msg();
  s.set_source(source);
  return s;
}

// Process i registers from its own namespace (the process socket).
v1::RegisterProcessResponse register_process(const Daemon& d, const testbed::Topology& t, int i,
                                             const v1::StreamId& stream, double required) {
  auto r = register_from(t.procs[static_cast<std::size_t>(i)], d.process_address(),
                         registration(i, stream, required));
  REQUIRE_GRPC_OK(r.status);
  return r.response;
}

std::map<std::string, v1::Policy> target_policies(const Daemon& d, const v1::StreamId& stream) {
  v1::GetTargetStatsRequest tr;
  *tr.mutable_stream() = stream;
  v1::GetTargetStatsResponse ts;
  REQUIRE_GRPC_OK(d.control()->GetTargetStats(ctx().get(), tr, &ts));
  std::map<std::string, v1::Policy> out;
  for (const auto& t : ts.targets()) out[t.process()] = t.policy();
  return out;
}

}  // namespace

TEST_CASE("one stream written two ways is one stream: a second registration keeps the first's policy",
          "[daemon][input]") {
  auto t = testbed::Topology::create(3, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  // IPv6, two spellings; then IPv4 and its IPv4-mapped spelling.
  for (auto [first, second] : {std::pair{"2001:db8::1", "2001:0db8:0:0::1"},
                               std::pair{"10.200.0.1", "::ffff:10.200.0.1"}}) {
    INFO(first << " then " << second);
    auto r0 = register_process(d, **t, 0, stream_written(first), 0.99);
    REQUIRE(r0.policies_size() == 1);
    REQUIRE(r0.policies(0).policy().kind() == v1::POLICY_KIND_DIFFERENTIAL);
    auto r1 = register_process(d, **t, 1, stream_written(second), 0.0);
    REQUIRE(r1.policies_size() == 1);
    CHECK(r1.policies(0).stream().source() == first);  // the canonical spelling
    auto policies = target_policies(d, stream_written(second));
    REQUIRE(policies.size() == 2);
    CHECK(policies["proc0"].kind() == v1::POLICY_KIND_DIFFERENTIAL);
    CHECK(policies["proc0"].drop() == Approx(0.005).margin(1e-6));
    // proc0's requirement, reported on the other spelling, is about its stream.
    v1::ReportRequirementRequest rr;
    rr.set_name("proc0");
    *rr.mutable_stream() = stream_written(second);
    rr.set_required(0.9);
    v1::ReportRequirementResponse rresp;
    REQUIRE_GRPC_OK(d.qoc()->ReportRequirement(ctx(r0.token()).get(), rr, &rresp));
    REQUIRE(rresp.policies_size() == 1);
    for (const auto& [name, token] : {std::pair{"proc0", r0.token()}, std::pair{"proc1", r1.token()}}) {
      v1::UnregisterProcessRequest un;
      un.set_name(name);
      v1::UnregisterProcessResponse unr;
      REQUIRE_GRPC_OK(d.qoc()->UnregisterProcess(ctx(token).get(), un, &unr));
    }
  }
}

namespace {

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

std::string temp_config(const std::string& text) {
  const std::string path = "/tmp/" + testbed::unique_name("cfg") + ".yaml";
  std::ofstream(path) << text << kRootTenant;
  return path;
}

}  // namespace

TEST_CASE("forged calls are charged to their caller, never to the process they name", "[daemon][limits]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const auto cfg = temp_config("rate_limit: {per_second: 0.5, burst: 4}\n");
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0", "--config", cfg});
  REQUIRE(d.wait_serving());
  fs::remove(cfg);
  auto reg = register_process(d, **t, 0, stream_msg(), 0.9);
  auto q = d.qoc();
  v1::ReportRequirementRequest forged;
  forged.set_name("proc0");
  forged.set_required(0.5);
  int denied = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    v1::ReportRequirementResponse r;
    auto st = q->ReportRequirement(ctx(std::string(32, '0')).get(), forged, &r);
    denied += st.error_code() == ::grpc::StatusCode::PERMISSION_DENIED;
    if (st.error_code() == ::grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++limited;
      CHECK_THAT(st.error_message(), !Catch::Contains("process proc0"));
    }
  }
  CHECK(denied >= 1);
  CHECK(limited >= 6);  // the forger's own budget ran out
  // The process's own budget is untouched: its burst of calls all go through.
  v1::ReportRequirementRequest real = forged;
  for (int i = 0; i < 4; ++i) {
    v1::ReportRequirementResponse r;
    REQUIRE_GRPC_OK(q->ReportRequirement(ctx(reg.token()).get(), real, &r));
  }
}

TEST_CASE("a local caller gets no fresh rate-limit budget by reconnecting", "[daemon][limits]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const auto cfg = temp_config("rate_limit: {per_second: 0.5, burst: 4}\n");
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0", "--config", cfg});
  REQUIRE(d.wait_serving());
  fs::remove(cfg);
  // Every call on a connection of its own, on the process socket: the
  // caller (its uid and namespace) pays, not the connection.
  v1::ReportRequirementRequest forged;
  forged.set_name("nobody");
  forged.set_required(0.5);
  int refused = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    ::grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // no connection shared between channels
    auto stub = v1::QocService::NewStub(
        ::grpc::CreateCustomChannel(d.process_address(), ::grpc::InsecureChannelCredentials(), args));
    v1::ReportRequirementResponse r;
    auto st = stub->ReportRequirement(ctx("t").get(), forged, &r);
    if (st.error_code() == ::grpc::StatusCode::RESOURCE_EXHAUSTED) ++limited;
    else ++refused;
  }
  INFO(refused << " refused, " << limited << " over the limit");
  CHECK(refused <= 6);  // the burst of 4, plus what refilled meanwhile
  CHECK(limited >= 6);
}

TEST_CASE("over-long fields are refused naming the field and the limit",
          "[daemon][limits]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  auto q = d.qoc();
  auto c = d.control();
  {
    v1::ReportRequirementRequest r;
    r.set_name(std::string(100 * 1024, 'n'));
    v1::ReportRequirementResponse resp;
    REQUIRE_GRPC_CODE(q->ReportRequirement(ctx("t").get(), r, &resp), INVALID_ARGUMENT,
                      "name is 102400 bytes, more than the limit of 64");
    v1::AddSensorRequest s;
    s.mutable_sensor()->set_name("cam");
    s.mutable_sensor()->set_address("unix:/nonexistent.sock");
    *s.mutable_sensor()->add_streams() = stream_written(std::string(200, '1'));
    v1::AddSensorResponse sr;
    REQUIRE_GRPC_CODE(c->AddSensor(ctx().get(), s, &sr), INVALID_ARGUMENT,
                      "sensor.streams[0].source is 200 bytes, more than the limit of 45");
    v1::RegisterProcessRequest reg = registration(0, stream_msg(), 0);
    reg.set_interface(std::string(5000, 'f'));
    v1::RegisterProcessResponse rr;
    REQUIRE_GRPC_CODE(q->RegisterProcess(ctx().get(), reg, &rr), INVALID_ARGUMENT,
                      "interface is 5000 bytes, more than the limit of 15");
  }
}

TEST_CASE("refused calls with fresh names cost the daemon no memory", "[daemon][limits]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  auto q = d.qoc();
  // Refused calls with fresh 100 KiB names: the daemon does not keep them.
  const long before = rss_kib(d.pid());
  for (int i = 0; i < 400; ++i) {
    v1::WatchPolicyRequest w;
    w.set_name(std::to_string(i) + std::string(100 * 1024, 'x'));
    ::grpc::ClientContext wc;
    wc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    wc.AddMetadata("authorization", "Bearer t");
    auto reader = q->WatchPolicy(&wc, w);
    v1::PolicyUpdate u;
    while (reader->Read(&u)) {
    }
    (void)reader->Finish();
    v1::ReportRequirementRequest r;
    r.set_name(std::to_string(i) + std::string(100 * 1024, 'y'));
    v1::ReportRequirementResponse resp;
    (void)q->ReportRequirement(ctx("t").get(), r, &resp);
  }
  const long after = rss_kib(d.pid());
  INFO("qocnetd RSS " << before << " KiB before, " << after << " KiB after 800 calls with fresh 100 KiB names");
  CHECK(after - before < 20 * 1024);  // the names alone would be 80 MiB
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sensor agent's policy of the test stream (its default if it has none).
v1::Policy sensor_policy(const Daemon& sensor) {
  v1::GetSensorStatusResponse st;
  REQUIRE_GRPC_OK(sensor.sensor()->GetSensorStatus(ctx().get(), {}, &st));
  for (const auto& s : st.streams())
    if (s.stream().source_port() == kSensorPort) return s.policy();
  return st.default_policy();
}

// Waits (up to `limit`) until the edge says the sensor agent acknowledged a
// policy of the test stream that drops `drop` (and its last push did not fail).
bool sensor_reaches(const Daemon& edge, double drop, std::chrono::milliseconds limit = milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    v1::ListSensorsResponse ls;
    REQUIRE_GRPC_OK(edge.control()->ListSensors(ctx().get(), {}, &ls));
    REQUIRE(ls.sensors_size() == 1);
    if (std::abs(ls.sensors(0).applied().drop() - drop) < 1e-9 && ls.sensors(0).last_error().empty()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

v1::ReportRequirementResponse report(const Daemon& d, const std::string& name, const std::string& token,
                                     double required) {
  v1::ReportRequirementRequest rr;
  rr.set_name(name);
  rr.set_required(required);
  v1::ReportRequirementResponse resp;
  REQUIRE_GRPC_OK(d.qoc()->ReportRequirement(ctx(token).get(), rr, &resp));
  REQUIRE(resp.policies_size() == 1);
  return resp;
}

std::string sensor_config(const Daemon& sensor) {
  return temp_config("sensors:\n  - {name: cam, address: \"" + sensor.address() + "\", streams: [\"" +
                     std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) + "->:" +
                     std::to_string(kServicePort) + "\"]}\n");
}

// qocnetd on e0, without pins, pushing the test stream's policy to `sensor`.
std::unique_ptr<Daemon> edge_pushing_to(const testbed::Topology& t, const Daemon& sensor) {
  const auto cfg = sensor_config(sensor);
  auto edge = std::make_unique<Daemon>(t.edge, std::vector<std::string>{"--no-pin", "--port", "e0", "--config", cfg},
                                       "ed");
  REQUIRE(edge->wait_serving());
  fs::remove(cfg);
  return edge;
}

}  // namespace

TEST_CASE("a registered process keeps its token across a qocnetd restart", "[daemon][restart]") {
  auto t = testbed::Topology::create(2, true);
  REQUIRE_OK(t);
  PinDir pins;
  const std::string state = "/tmp/" + testbed::unique_name("state") + ".yaml";
  const std::vector<std::string> args{"--pin-dir", pins.path, "--keep-datapath", "--port", "e0", "--state-file", state};
  std::string token;
  {
    Daemon first((*t)->edge, args, "r1");
    REQUIRE(first.wait_serving());
    token = register_process(first, **t, 0, stream_msg(), 0.9).token();
    REQUIRE(first.stop(SIGTERM) == 0);
  }
  // Only the token's hash is kept.
  const std::string kept = slurp(state);
  CHECK_THAT(kept, Catch::Contains("proc0"));
  CHECK(kept.find(token) == std::string::npos);
  Daemon second((*t)->edge, args, "r2");
  REQUIRE(second.wait_serving());
  INFO(second.log());
  // The process goes on with the token it has: reports and its policy stream.
  auto resp = report(second, "proc0", token, 0.99);
  CHECK(resp.policies(0).required() == Approx(0.99));
  ::grpc::ClientContext wc;
  wc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::WatchPolicyRequest w;
  w.set_name("proc0");
  wc.AddMetadata("authorization", "Bearer " + token);
  auto reader = second.qoc()->WatchPolicy(&wc, w);
  v1::PolicyUpdate u;
  REQUIRE(reader->Read(&u));
  CHECK(u.reason() == "current");
  wc.TryCancel();
  while (reader->Read(&u)) {
  }
  // Anyone else's token is still wrong, and the name is still taken.
  v1::ReportRequirementRequest wrong;
  wrong.set_name("proc0");
  wrong.set_required(0.5);
  v1::ReportRequirementResponse wr;
  REQUIRE_GRPC_CODE(second.qoc()->ReportRequirement(ctx(std::string(32, '0')).get(), wrong, &wr), PERMISSION_DENIED, "token");
  REQUIRE_GRPC_CODE(register_from((*t)->procs[0], second.process_address(), registration(0, stream_msg(), 0)).status,
                    ALREADY_EXISTS, "proc0");
  // Unregistered, its token is gone from the state too.
  v1::UnregisterProcessRequest un;
  un.set_name("proc0");
  v1::UnregisterProcessResponse unr;
  REQUIRE_GRPC_OK(second.qoc()->UnregisterProcess(ctx(token).get(), un, &unr));
  CHECK(slurp(state).find("proc0") == std::string::npos);
  CHECK(second.stop(SIGTERM) == 0);
  fs::remove(state);
}

TEST_CASE("a restarted edge is obeyed by the sensor agent, whatever generation it starts at", "[daemon][restart]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  PinDir pins;
  Daemon sensor((*t)->sensor, {"--uplink", "s0"}, "sa", QOCNET_SENSOR_PATH);
  REQUIRE(sensor.wait_serving());
  const auto cfg = sensor_config(sensor);
  const std::vector<std::string> args{"--pin-dir", pins.path, "--keep-datapath", "--port", "e0", "--config", cfg};
  std::string token;
  double last_drop = 0;
  {
    Daemon first((*t)->edge, args, "r1");
    REQUIRE(first.wait_serving());
    token = register_process(first, **t, 0, stream_msg(), 0.9).token();
    // Many changes: the first edge's generation climbs well above 1.
    for (double r : {0.95, 0.99, 0.9, 0.95, 0.99, 0.9, 0.95, 0.99})
      last_drop = report(first, "proc0", token, r).policies(0).policy().drop();
    INFO(first.log());
    REQUIRE(sensor_reaches(first, last_drop));
    REQUIRE(first.stop(SIGTERM) == 0);
  }
  Daemon second((*t)->edge, args, "r2");
  REQUIRE(second.wait_serving());
  // Operators' changes (the restart test of tokens is the one above).
  v1::SetRequirementRequest sr;
  sr.set_process("proc0");
  *sr.mutable_stream() = stream_msg();
  v1::SetRequirementResponse srr;
  for (double r : {0.95, 0.99, 0.9}) {
    sr.set_required(r);
    REQUIRE_GRPC_OK(second.control()->SetRequirement(ctx().get(), sr, &srr));
  }
  const double wanted = srr.policy().policy().drop();
  REQUIRE(wanted != Approx(last_drop));
  INFO(second.log() << sensor.log());
  CHECK(sensor_reaches(second, wanted));
  v1::ListSensorsResponse sensors;
  REQUIRE_GRPC_OK(second.control()->ListSensors(ctx().get(), {}, &sensors));
  REQUIRE(sensors.sensors_size() == 1);
  CHECK(sensors.sensors(0).last_error().empty());
  CHECK(second.stop(SIGTERM) == 0);
  fs::remove(cfg);
}

TEST_CASE("a generation of 2^64-1 sent to the sensor agent does not freeze it", "[daemon][restart]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon sensor((*t)->sensor, {"--uplink", "s0"}, "sa", QOCNET_SENSOR_PATH);
  REQUIRE(sensor.wait_serving());
  auto edge_owner = edge_pushing_to(**t, sensor);
  Daemon& edge = *edge_owner;
  const auto token = register_process(edge, **t, 0, stream_msg(), 0.9).token();
  const double first = report(edge, "proc0", token, 0.95).policies(0).policy().drop();
  REQUIRE(sensor_reaches(edge, first));
  v1::SetStreamPolicyRequest forged;
  *forged.mutable_stream() = stream_msg();
  forged.mutable_policy()->set_kind(v1::POLICY_KIND_KEEP);
  forged.set_generation(~std::uint64_t{0});
  v1::SetStreamPolicyResponse fr;
  auto st = sensor.sensor()->SetStreamPolicy(ctx().get(), forged, &fr);
  INFO(status_text(st));
  CHECK(st.error_code() == ::grpc::StatusCode::INVALID_ARGUMENT);
  // The edge's next change is obeyed.
  const double next = report(edge, "proc0", token, 0.9).policies(0).policy().drop();
  REQUIRE(next != Approx(first));
  INFO(edge.log());
  CHECK(sensor_reaches(edge, next));
}

TEST_CASE("a stale edge's push is refused, a client's later order cannot hold the edge back", "[daemon][restart]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon sensor((*t)->sensor, {"--uplink", "s0"}, "sa", QOCNET_SENSOR_PATH);
  REQUIRE(sensor.wait_serving());
  auto edge_owner = edge_pushing_to(**t, sensor);
  Daemon& edge = *edge_owner;
  const auto token = register_process(edge, **t, 0, stream_msg(), 0.95).token();
  const double first = report(edge, "proc0", token, 0.95).policies(0).policy().drop();
  REQUIRE(sensor_reaches(edge, first));
  v1::GetSensorStatusResponse status;
  REQUIRE_GRPC_OK(sensor.sensor()->GetSensorStatus(ctx().get(), {}, &status));
  const std::uint64_t epoch = status.epoch();
  REQUIRE(epoch > 0);
  // An older epoch (an edge from before a restart) is refused, whatever its generation.
  v1::SetStreamPolicyRequest stale;
  *stale.mutable_stream() = stream_msg();
  stale.mutable_policy()->set_kind(v1::POLICY_KIND_KEEP);
  stale.set_epoch(epoch - 1);
  stale.set_generation(1000000);
  v1::SetStreamPolicyResponse sr;
  REQUIRE_GRPC_CODE(sensor.sensor()->SetStreamPolicy(ctx().get(), stale, &sr), FAILED_PRECONDITION, "older");
  CHECK(sensor_policy(sensor).drop() == Approx(first));
  // A later generation in the edge's own epoch, from someone else: the edge
  // moves to a newer epoch and is obeyed again.
  stale.set_epoch(epoch);
  stale.set_generation(std::uint64_t{1} << 62);
  REQUIRE_GRPC_OK(sensor.sensor()->SetStreamPolicy(ctx().get(), stale, &sr));
  const double next = report(edge, "proc0", token, 0.9).policies(0).policy().drop();
  INFO(edge.log());
  CHECK(sensor_reaches(edge, next));
  REQUIRE_GRPC_OK(sensor.sensor()->GetSensorStatus(ctx().get(), {}, &status));
  CHECK(status.epoch() > epoch);
}

TEST_CASE("the sensor agent takes policies only from the edge", "[daemon][auth]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon sensor((*t)->sensor, {"--uplink", "s0"}, "sa", QOCNET_SENSOR_PATH);
  REQUIRE(sensor.wait_serving());
  // Past the socket's file mode (the first barrier), the peer's uid decides.
  fs::permissions(sensor.socket(), fs::perms::all);
  fs::permissions(fs::path(sensor.socket()).parent_path(), fs::perms::owner_all | fs::perms::group_exec |
                                                               fs::perms::others_exec);
  auto as_nobody = [&](const std::string& call) {
    auto r = testbed::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                           QOCNET_SOURCE_DIR "/test/daemon/grpc_probe.py", "--stubs", QOCNET_PYTHON_STUBS,
                           "--address", sensor.address(), "--call", call, "--stream",
                           std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) + ":" +
                               std::to_string(kServicePort)});
    INFO(describe(r));
    REQUIRE(r.ok());
    return *r;
  };
  CHECK_THAT(as_nobody("sensor-set-policy"), Catch::StartsWith("PERMISSION_DENIED") && Catch::Contains("uid 65534"));
  CHECK_THAT(as_nobody("sensor-status"), Catch::StartsWith("PERMISSION_DENIED"));
  CHECK(sensor_policy(sensor).kind() == v1::POLICY_KIND_KEEP);  // nothing changed
  // The edge (root, the agent's own uid) is obeyed.
  auto edge_owner = edge_pushing_to(**t, sensor);
  Daemon& edge = *edge_owner;
  const auto token = register_process(edge, **t, 0, stream_msg(), 0.9).token();
  const double drop = report(edge, "proc0", token, 0.95).policies(0).policy().drop();
  INFO(edge.log());
  CHECK(sensor_reaches(edge, drop));
  CHECK(sensor_policy(sensor).drop() == Approx(drop));
}

TEST_CASE("a hung sensor stalls no other call, and its policy arrives once it recovers", "[daemon][sensor]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  // A "sensor" that accepts connections (the kernel does, backlog) and never answers.
  const std::string dir = "/tmp/" + testbed::unique_name("hung");
  fs::create_directories(dir);
  const std::string hung = dir + "/sensor.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", hung.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(fd, 64) == 0);
  const auto cfg = temp_config("sensors:\n  - {name: cam, address: \"unix:" + hung + "\", streams: [\"" +
                               std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) +
                               "->:" + std::to_string(kServicePort) + "\"]}\n");
  Daemon edge((*t)->edge, {"--no-pin", "--port", "e0", "--config", cfg}, "ed");
  REQUIRE(edge.wait_serving());
  fs::remove(cfg);
  auto longest = [](auto&& call) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  };
  // Each push to the hung sensor waits for its 1 s deadline; meanwhile
  // processes keep changing their needs and operators keep asking.
  std::string token;
  auto took = longest([&] { token = register_process(edge, **t, 0, stream_msg(), 0.9).token(); });
  CHECK(took < milliseconds(500));
  std::atomic<bool> stop{false};
  std::atomic<int> reports{0};
  milliseconds slowest_report{0};
  std::string report_error;  // Catch's assertions are for the main thread only
  std::thread changer([&] {
    auto qoc = edge.qoc();
    for (int i = 0; !stop; ++i) {
      v1::ReportRequirementRequest rr;
      rr.set_name("proc0");
      rr.set_required(i % 2 ? 0.9 : 0.95);
      v1::ReportRequirementResponse resp;
      ::grpc::Status st;
      auto d = longest([&] { st = qoc->ReportRequirement(ctx(token).get(), rr, &resp); });
      if (!st.ok() && report_error.empty())
        report_error = std::to_string(st.error_code()) + ": " + st.error_message();
      slowest_report = std::max(slowest_report, d);
      ++reports;
      std::this_thread::sleep_for(milliseconds(50));
    }
  });
  milliseconds slowest{0};
  auto c = edge.control();
  for (int i = 0; i < 30; ++i) {
    slowest = std::max(slowest, longest([&] {
                         v1::ListProcessesResponse r;
                         REQUIRE_GRPC_OK(c->ListProcesses(ctx().get(), {}, &r));
                       }));
    std::this_thread::sleep_for(milliseconds(50));
  }
  stop = true;
  changer.join();
  CHECK(report_error == "");
  INFO("slowest ListProcesses " << slowest.count() << " ms, slowest ReportRequirement " << slowest_report.count()
                                << " ms, " << reports.load() << " reports, with the sensor hung");
  CHECK(slowest < milliseconds(500));
  CHECK(slowest_report < milliseconds(500));
  CHECK(reports >= 10);
  v1::ListSensorsResponse sensors;
  REQUIRE_GRPC_OK(c->ListSensors(ctx().get(), {}, &sensors));
  REQUIRE(sensors.sensors_size() == 1);
  CHECK_THAT(sensors.sensors(0).last_error(), Catch::Contains("cam"));

  // The sensor comes back at the same address: the latest policy reaches it by retry.
  const double wanted = report(edge, "proc0", token, 0.95).policies(0).policy().drop();
  Daemon sensor((*t)->sensor, {"--uplink", "s0"}, "sa", QOCNET_SENSOR_PATH);
  REQUIRE(sensor.wait_serving());
  ::close(fd);
  fs::remove(hung);
  fs::create_symlink(sensor.socket(), hung);
  INFO(edge.log());
  CHECK(sensor_reaches(edge, wanted, milliseconds(15000)));
  CHECK(sensor_policy(sensor).drop() == Approx(wanted));
  fs::remove_all(dir);
}

TEST_CASE("over TCP the sensor agent takes policies only from an edge with a certificate of its CA", "[daemon][auth]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  const std::string dir = "/tmp/" + testbed::unique_name("tls");
  fs::create_directories(dir);
  make_test_pki(dir, "edge");
  // Sensor and edge share one namespace here so that 127.0.0.1 reaches the agent.
  const int port = 21000 + (::getpid() % 20000);
  const std::string tcp = "127.0.0.1:" + std::to_string(port);
  // Without --tls-ca, TCP is refused at start.
  auto refused = testbed::run({"nsenter", "--net=" + (*t)->sensor.path(), QOCNET_SENSOR_PATH, "--uplink", "s0",
                               "--listen", "unix:" + dir + "/x.sock", "--tcp", tcp, "--tls-cert",
                               dir + "/server.pem", "--tls-key", dir + "/server.key"});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().to_string(), Catch::Contains("--tls-ca"));
  Daemon sensor((*t)->sensor, {"--uplink", "s0", "--tcp", tcp, "--tls-cert", dir + "/server.pem", "--tls-key",
                               dir + "/server.key", "--tls-ca", dir + "/ca.pem"},
                "sa", QOCNET_SENSOR_PATH);
  REQUIRE(sensor.wait_serving());
  auto call = [&](bool with_cert) {
    std::vector<std::string> argv{"nsenter", "--net=" + (*t)->sensor.path(), "/usr/bin/python3",
                                  QOCNET_SOURCE_DIR "/test/daemon/grpc_probe.py", "--stubs", QOCNET_PYTHON_STUBS,
                                  "--address", "localhost:" + std::to_string(port), "--ca", dir + "/ca.pem",
                                  "--call", "sensor-set-policy"};
    if (with_cert) argv.insert(argv.end(), {"--cert", dir + "/edge.pem", "--key", dir + "/edge.key"});
    auto r = testbed::run(argv);
    INFO(describe(r));
    REQUIRE(r.ok());
    return *r;
  };
  CHECK_THAT(call(false), Catch::StartsWith("UNAUTHENTICATED") && Catch::Contains("client certificate"));
  CHECK(sensor_policy(sensor).kind() == v1::POLICY_KIND_KEEP);  // nothing changed
  CHECK(call(true) == "OK\n");
  CHECK(sensor_policy(sensor).kind() == v1::POLICY_KIND_UNIFORM);
  // qocnetd with its client certificate, the agent at its TCP address.
  const auto cfg = temp_config("sensors:\n  - {name: cam, address: \"localhost:" + std::to_string(port) +
                               "\", streams: [\"" + std::string(testbed::Topology::sensor_ip) + ":" +
                               std::to_string(kSensorPort) + "->:" + std::to_string(kServicePort) + "\"]}\n");
  Daemon edge((*t)->sensor, {"--no-pin", "--config", cfg, "--sensor-tls-ca", dir + "/ca.pem", "--sensor-tls-cert",
                             dir + "/edge.pem", "--sensor-tls-key", dir + "/edge.key"},
              "ed");
  REQUIRE(edge.wait_serving());
  fs::remove(cfg);
  v1::AddProcessRequest add;
  *add.mutable_process() = process_msg(0);
  add.mutable_process()->set_port("s0");
  v1::AddProcessResponse ar;
  REQUIRE_GRPC_OK(edge.control()->AddProcess(ctx().get(), add, &ar));
  v1::SetCloneTargetsRequest targets;
  *targets.mutable_stream() = stream_msg();
  targets.add_processes("proc0");
  v1::SetCloneTargetsResponse tr;
  REQUIRE_GRPC_OK(edge.control()->SetCloneTargets(ctx().get(), targets, &tr));
  v1::SetPolicyRequest sp;
  sp.set_process("proc0");
  *sp.mutable_stream() = stream_msg();
  sp.mutable_policy()->set_kind(v1::POLICY_KIND_DIFFERENTIAL);
  sp.mutable_policy()->set_drop(0.3);
  v1::SetPolicyResponse spr;
  REQUIRE_GRPC_OK(edge.control()->SetPolicy(ctx().get(), sp, &spr));
  INFO(edge.log() << sensor.log());
  CHECK(sensor_reaches(edge, 0.3));
  CHECK(sensor_policy(sensor).kind() == v1::POLICY_KIND_DIFFERENTIAL);
  fs::remove_all(dir);
}
