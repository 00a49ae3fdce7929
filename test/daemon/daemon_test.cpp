// SPDX-License-Identifier: Apache-2.0
// qocnetd through its gRPC services: the status codes of the contract, that a
// rejected call leaves no state behind, authorization (tokens, mTLS), the rate
// limit, and restart without loss (kill -9 mid-stream, re-adoption of the
// pinned datapath, a changed program swapped in while traffic flows).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <mutex>
#include <thread>
#include <utility>

#include "../support/daemon.hpp"
#include "pinning.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

// Everything a caller can see of the edge's configuration, as one string.
std::string snapshot(const Daemon& d) {
  auto c = d.control();
  std::string out;
  v1::ListProcessesResponse procs;
  REQUIRE_GRPC_OK(c->ListProcesses(ctx().get(), {}, &procs));
  out += procs.SerializeAsString();
  v1::ListPortPairsResponse pairs;
  REQUIRE_GRPC_OK(c->ListPortPairs(ctx().get(), {}, &pairs));
  out += pairs.SerializeAsString();
  v1::GetStatusResponse status;
  REQUIRE_GRPC_OK(c->GetStatus(ctx().get(), {}, &status));
  for (const auto& p : status.ports()) out += p;
  v1::GetTargetStatsRequest tr;
  *tr.mutable_stream() = stream_msg();
  v1::GetTargetStatsResponse ts;
  auto st = c->GetTargetStats(ctx().get(), tr, &ts);
  if (st.ok())
    for (const auto& t : ts.targets()) out += t.process() + "=" + t.policy().SerializeAsString();
  else
    out += "targets:" + std::to_string(st.error_code());
  v1::ListSensorsResponse sensors;
  REQUIRE_GRPC_OK(c->ListSensors(ctx().get(), {}, &sensors));
  out += sensors.SerializeAsString();
  return out;
}

void sysctl_quiet(const testbed::Topology& t) {
  std::vector<const testbed::Namespace*> all{&t.sensor, &t.edge};
  for (const auto& p : t.procs) all.push_back(&p);
  for (const auto* ns : all)
    REQUIRE_OK(testbed::run({"ip", "netns", "exec", ns->name(), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                             "net.ipv6.conf.default.disable_ipv6=1"}));
}



}  // namespace

TEST_CASE("calls before the datapath is up get UNAVAILABLE, health turns SERVING", "[daemon]") {
  auto t = testbed::Topology::create(1);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin"});
  REQUIRE(d.wait_listening());
  // The daemon listens at once and compiles in the background (about a second).
  v1::GetStatusResponse status;
  auto early = d.control()->GetStatus(ctx().get(), {}, &status);
  INFO(d.log());
  if (!early.ok()) {
    CHECK(early.error_code() == ::grpc::StatusCode::UNAVAILABLE);
    CHECK_THAT(early.error_message(), Catch::Contains("still compiling"));
    CHECK(d.health() == 2);  // NOT_SERVING
  } else {
    WARN("the datapath compiled before the first call: UNAVAILABLE not observed this run");
  }
  REQUIRE(d.wait_serving());
  REQUIRE_GRPC_OK(d.control()->GetStatus(ctx().get(), {}, &status));
  CHECK(status.programs_size() == 3);
  CHECK_FALSE(status.adopted());
  CHECK(status.compile_seconds() > 0);
  // Server reflection lists the services (what grpcurl relies on).
  auto listed = testbed::run({"/usr/bin/python3", QOCNET_SOURCE_DIR "/test/daemon/grpc_probe.py", "--stubs",
                              QOCNET_PYTHON_STUBS, "--address", d.address(), "--call", "reflection"});
  INFO(describe(listed));
  REQUIRE(listed.ok());
  CHECK_THAT(*listed, Catch::Contains("qocnet.v1.ControlService") && Catch::Contains("qocnet.v1.QocService") &&
                          Catch::Contains("grpc.health.v1.Health"));
  CHECK(d.stop(SIGTERM) == 0);
  CHECK_THAT(d.log(), Catch::Contains("event=shutdown"));

  // SIGTERM while the datapath still compiles: a clean exit, nothing attached.
  Daemon early_stop((*t)->edge, {"--no-pin", "--port", "e0"}, "d2");
  REQUIRE(early_stop.wait_listening());
  CHECK(early_stop.stop(SIGTERM) == 0);
  INFO(early_stop.log());
  auto filters = testbed::run({"ip", "netns", "exec", (*t)->edge.name(), "tc", "filter", "show", "dev", "e0",
                               "ingress"});
  REQUIRE_OK(filters);
  CHECK(filters->find("qoc_edge_in") == std::string::npos);
}

TEST_CASE("every rejected call names its problem and changes nothing", "[daemon]") {
  auto t = testbed::Topology::create(2, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  auto c = d.control();
  v1::AddProcessRequest add;
  *add.mutable_process() = process_msg(0);
  v1::AddProcessResponse added;
  REQUIRE_GRPC_OK(c->AddProcess(ctx().get(), add, &added));
  v1::SetCloneTargetsRequest targets;
  *targets.mutable_stream() = stream_msg();
  targets.add_processes("proc0");
  v1::SetCloneTargetsResponse targets_resp;
  REQUIRE_GRPC_OK(c->SetCloneTargets(ctx().get(), targets, &targets_resp));
  const std::string before = snapshot(d);

  SECTION("INVALID_ARGUMENT names the field") {
    v1::SetPolicyRequest r;
    r.set_process("proc0");
    *r.mutable_stream() = stream_msg();
    r.mutable_policy()->set_kind(v1::POLICY_KIND_UNIFORM);
    r.mutable_policy()->set_drop(1.5);
    v1::SetPolicyResponse resp;
    REQUIRE_GRPC_CODE(c->SetPolicy(ctx().get(), r, &resp), INVALID_ARGUMENT, "policy.drop");
    r.mutable_policy()->set_kind(v1::POLICY_KIND_UNSPECIFIED);
    REQUIRE_GRPC_CODE(c->SetPolicy(ctx().get(), r, &resp), INVALID_ARGUMENT, "policy.kind");
    r.mutable_policy()->set_kind(v1::POLICY_KIND_UNIFORM);
    r.mutable_policy()->set_drop(0.1);
    r.mutable_stream()->set_source_port(0);
    REQUIRE_GRPC_CODE(c->SetPolicy(ctx().get(), r, &resp), INVALID_ARGUMENT, "stream.source_port");
    v1::AddProcessRequest bad = add;
    bad.mutable_process()->set_name("p1");
    bad.mutable_process()->set_mac("zz");
    v1::AddProcessResponse ar;
    REQUIRE_GRPC_CODE(c->AddProcess(ctx().get(), bad, &ar), INVALID_ARGUMENT, "MAC");
    v1::SetQocTableRequest tab;
    tab.set_yaml("metric: x\nlossless: 1\npolicies:\n  uniform: {loss: [0.1, 0.05], qoc: [0.9, 0.8]}\n");
    v1::SetQocTableResponse tr;
    REQUIRE_GRPC_CODE(c->SetQocTable(ctx().get(), tab, &tr), INVALID_ARGUMENT, "");
  }
  SECTION("NOT_FOUND") {
    v1::AttachPortRequest r;
    r.set_port("qocnetnope9");
    v1::AttachPortResponse resp;
    REQUIRE_GRPC_CODE(c->AttachPort(ctx().get(), r, &resp), NOT_FOUND, "qocnetnope9");
    v1::RemoveProcessRequest rp;
    rp.set_name("ghost");
    v1::RemoveProcessResponse rpr;
    REQUIRE_GRPC_CODE(c->RemoveProcess(ctx().get(), rp, &rpr), NOT_FOUND, "ghost");
    v1::RemoveSensorRequest rs;
    rs.set_name("ghost");
    v1::RemoveSensorResponse rsr;
    REQUIRE_GRPC_CODE(c->RemoveSensor(ctx().get(), rs, &rsr), NOT_FOUND, "ghost");
  }
  SECTION("ALREADY_EXISTS") {
    v1::AddProcessResponse ar;
    REQUIRE_GRPC_CODE(c->AddProcess(ctx().get(), add, &ar), ALREADY_EXISTS, "proc0");
    v1::AttachPortRequest r;
    r.set_port("e0");
    v1::AttachPortResponse resp;
    REQUIRE_GRPC_CODE(c->AttachPort(ctx().get(), r, &resp), ALREADY_EXISTS, "e0");
  }
  SECTION("FAILED_PRECONDITION") {
    v1::SetPortPairRequest r;
    r.mutable_pair()->set_ingress("e2");
    r.mutable_pair()->set_egress("e1");
    v1::SetPortPairResponse resp;
    REQUIRE_GRPC_CODE(c->SetPortPair(ctx().get(), r, &resp), FAILED_PRECONDITION, "not attached");
    v1::SetRequirementRequest q;
    q.set_process("proc0");
    *q.mutable_stream() = stream_msg();
    q.mutable_stream()->set_destination_port(5999);
    q.set_required(0.9);
    v1::SetRequirementResponse qr;
    REQUIRE_GRPC_CODE(c->SetRequirement(ctx().get(), q, &qr), FAILED_PRECONDITION, "not a clone target");
  }
  SECTION("PERMISSION_DENIED for a token that is not the process's") {
    auto q = d.qoc();
    auto reg = register_from((*t)->procs[1], d.process_address(), registration(1, stream_msg(), 0.9));
    REQUIRE_GRPC_OK(reg.status);
    const auto& regr = reg.response;
    const std::string registered = snapshot(d);
    v1::ReportRequirementRequest rr;
    rr.set_name("proc1");
    rr.set_required(0.5);
    v1::ReportRequirementResponse rresp;
    REQUIRE_GRPC_CODE(q->ReportRequirement(ctx(regr.token() + "x").get(), rr, &rresp), PERMISSION_DENIED, "token");
    // proc0 was added by an operator: it has no token, so no report is taken.
    rr.set_name("proc0");
    REQUIRE_GRPC_CODE(q->ReportRequirement(ctx(regr.token()).get(), rr, &rresp), PERMISSION_DENIED, "token");
    CHECK(snapshot(d) == registered);
    v1::UnregisterProcessRequest un;
    un.set_name("proc1");
    v1::UnregisterProcessResponse unr;
    REQUIRE_GRPC_OK(q->UnregisterProcess(ctx(regr.token()).get(), un, &unr));
  }
  CHECK(snapshot(d) == before);
}

TEST_CASE("registration, requirements and the closed loop, policy streams follow", "[daemon]") {
  auto t = testbed::Topology::create(3, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  auto q = d.qoc();
  std::vector<std::string> tokens;
  for (int i = 0; i < 3; ++i) {
    auto reg = register_from((*t)->procs[static_cast<std::size_t>(i)], d.process_address(),
                             registration(i, stream_msg(), i == 0 ? 0.99 : i == 1 ? 0.9 : 0.0));
    REQUIRE_GRPC_OK(reg.status);
    const auto& r = reg.response;
    REQUIRE(r.policies_size() == 1);
    tokens.push_back(r.token());
    if (i == 2) CHECK(r.policies(0).policy().kind() == v1::POLICY_KIND_KEEP);
    else CHECK(r.policies(0).policy().kind() == v1::POLICY_KIND_DIFFERENTIAL);
  }
  // Paper Table 1: 0.99 allows differential at 0.5 % loss; 0.9 more.
  v1::GetTargetStatsRequest tr;
  *tr.mutable_stream() = stream_msg();
  v1::GetTargetStatsResponse ts;
  REQUIRE_GRPC_OK(d.control()->GetTargetStats(ctx().get(), tr, &ts));
  REQUIRE(ts.targets_size() == 3);
  CHECK(ts.targets(0).policy().drop() == Approx(0.005).margin(1e-6));
  CHECK(ts.targets(1).policy().drop() > 0.005);

  // proc1 follows its policy stream.
  ::grpc::ClientContext watch_ctx;
  v1::WatchPolicyRequest wr;
  wr.set_name("proc1");
  watch_ctx.AddMetadata("authorization", "Bearer " + tokens[1]);
  auto reader = q->WatchPolicy(&watch_ctx, wr);
  v1::PolicyUpdate u;
  REQUIRE(reader->Read(&u));
  CHECK(u.reason() == "current");
  const double first_drop = u.policy().policy().drop();

  // Measured below its requirement: tightened (less loss); well above: loosened.
  v1::ReportMeasuredQocRequest m;
  m.set_name("proc1");
  m.set_measured(0.7);
  v1::ReportMeasuredQocResponse mr;
  REQUIRE_GRPC_OK(q->ReportMeasuredQoc(ctx(tokens[1]).get(), m, &mr));
  CHECK(mr.action() == v1::LOOP_ACTION_TIGHTENED);
  CHECK(mr.policy().target() > 0.9);
  CHECK(mr.policy().policy().drop() < first_drop);
  REQUIRE(reader->Read(&u));
  CHECK(u.reason() == "measured");
  CHECK(u.policy().policy().drop() == Approx(mr.policy().policy().drop()));
  const double tightened_drop = mr.policy().policy().drop();
  // Reports at the requirement and above: the loop climbs, a few grid
  // points a report, past proc0's 0.005.
  m.set_measured(1.0);
  bool loosened = false;
  for (int i = 0; i < 30 && mr.policy().policy().drop() <= 0.0051; ++i) {
    REQUIRE_GRPC_OK(q->ReportMeasuredQoc(ctx(tokens[1]).get(), m, &mr));
    loosened |= mr.action() == v1::LOOP_ACTION_LOOSENED;
  }
  CHECK(loosened);
  INFO("proc1 after the climb: " << mr.policy().policy().ShortDebugString());
  CHECK(mr.policy().policy().kind() == v1::POLICY_KIND_DIFFERENTIAL);  // the kind it learnt
  CHECK(mr.policy().policy().drop() > 0.0051);
  CHECK(mr.policy().policy().drop() > tightened_drop);
  CHECK(mr.policy().target() >= 0.9);  // the QoC expected there still meets the requirement
  m.set_measured(1.5);
  REQUIRE_GRPC_CODE(q->ReportMeasuredQoc(ctx(tokens[1]).get(), m, &mr), INVALID_ARGUMENT, "measured");

  // The strictest process leaves: the effective policy loosens to the next one.
  v1::GetEffectivePolicyRequest er;
  *er.mutable_stream() = stream_msg();
  v1::GetEffectivePolicyResponse e1, e2;
  v1::SetRequirementRequest sr;  // proc2 (keep) asks for 0.9 too, then all are lossy
  sr.set_process("proc2");
  *sr.mutable_stream() = stream_msg();
  sr.set_required(0.9);
  v1::SetRequirementResponse srr;
  REQUIRE_GRPC_OK(d.control()->SetRequirement(ctx().get(), sr, &srr));
  REQUIRE_GRPC_OK(d.control()->GetEffectivePolicy(ctx().get(), er, &e1));
  CHECK(e1.policy().drop() == Approx(0.005).margin(1e-6));
  v1::UnregisterProcessRequest un;
  un.set_name("proc0");
  v1::UnregisterProcessResponse unr;
  REQUIRE_GRPC_OK(q->UnregisterProcess(ctx(tokens[0]).get(), un, &unr));
  REQUIRE_GRPC_OK(d.control()->GetEffectivePolicy(ctx().get(), er, &e2));
  CHECK(e2.policy().drop() > e1.policy().drop());
  watch_ctx.TryCancel();
  while (reader->Read(&u)) {
  }
}

TEST_CASE("a client over its rate limit gets RESOURCE_EXHAUSTED, metrics answer", "[daemon]") {
  auto t = testbed::Topology::create(1);
  REQUIRE_OK(t);
  const std::string cfg = "/tmp/" + testbed::unique_name("cfg") + ".yaml";
  const int metrics_port = 30000 + (::getpid() % 20000);
  const int health_port = metrics_port + 1;
  std::ofstream(cfg) << "rate_limit: {per_second: 2, burst: 5}\nmetrics: 127.0.0.1:" << metrics_port
                     << "\nhealth: 127.0.0.1:" << health_port << "\n" << kRootTenant;
  Daemon d((*t)->edge, {"--no-pin", "--config", cfg});
  // Prometheus metrics and the health endpoint on opt-in ports (inside the
  // namespace): "STATUS BODY".
  auto fetch = [&](int port, const std::string& path) {
    auto r = testbed::run({"nsenter", "--net=" + (*t)->edge.path(), "/usr/bin/python3", "-c",
                           "import sys, urllib.request, urllib.error\n"
                           "try:\n"
                           "  r = urllib.request.urlopen('http://127.0.0.1:" + std::to_string(port) + path +
                               "', timeout=5); sys.stdout.write(str(r.status) + ' ' + r.read().decode())\n"
                           "except urllib.error.HTTPError as e:\n"
                           "  sys.stdout.write(str(e.code) + ' ' + e.read().decode())\n"});
    INFO(describe(r));
    REQUIRE(r.ok());
    return *r;
  };
  REQUIRE(d.wait_listening());
  // Before the datapath serves, /healthz says 503 (the compile takes seconds);
  // /livez says the process is alive.
  std::string early;
  for (int i = 0; i < 100 && early.rfind("503", 0) != 0 && early.rfind("200", 0) != 0; ++i) {
    auto r = testbed::run({"nsenter", "--net=" + (*t)->edge.path(), "/usr/bin/python3", "-c",
                           "import urllib.request, urllib.error, sys\n"
                           "try: urllib.request.urlopen('http://127.0.0.1:" + std::to_string(health_port) +
                               "/healthz', timeout=1); print(200)\n"
                           "except urllib.error.HTTPError as e: print(e.code)\n"
                           "except Exception: print('none')\n"});
    if (r) early = *r;
  }
  CHECK_THAT(early, Catch::StartsWith("503"));
  REQUIRE(d.wait_serving());
  CHECK(fetch(health_port, "/healthz") == "200 serving\n");
  CHECK(fetch(health_port, "/livez") == "200 alive\n");
  CHECK_THAT(fetch(health_port, "/other"), Catch::StartsWith("404"));
  CHECK_THAT(fetch(metrics_port, "/metrics"), Catch::Contains("qocnet_up 1") &&
                                                  Catch::Contains("qocnet_policy_changes_total") &&
                                                  Catch::Contains("qocnet_serving 1"));
  auto c = d.control();
  int ok = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    v1::ListProcessesResponse r;
    auto st = c->ListProcesses(ctx().get(), {}, &r);
    if (st.ok()) ++ok;
    else if (st.error_code() == ::grpc::StatusCode::RESOURCE_EXHAUSTED) ++limited;
  }
  fs::remove(cfg);
  CHECK(ok >= 5);
  CHECK(ok <= 7);  // the burst, plus what refilled meanwhile
  CHECK(limited == 12 - ok);
}

TEST_CASE("operator calls over TCP need a client certificate", "[daemon]") {
  auto t = testbed::Topology::create(1);
  REQUIRE_OK(t);
  const std::string dir = "/tmp/" + testbed::unique_name("tls");
  fs::create_directories(dir);
  make_test_pki(dir, "client");
  // The daemon listens inside its namespace: the client runs there too.
  auto call = [&](int port, bool with_cert, const std::string& what) {
    std::vector<std::string> argv{"nsenter", "--net=" + (*t)->edge.path(), "/usr/bin/python3",
                                  QOCNET_SOURCE_DIR "/test/daemon/grpc_probe.py", "--stubs", QOCNET_PYTHON_STUBS,
                                  "--address", "localhost:" + std::to_string(port), "--ca", dir + "/ca.pem",
                                  "--call", what};
    if (with_cert) argv.insert(argv.end(), {"--cert", dir + "/client.pem", "--key", dir + "/client.key"});
    auto r = testbed::run(argv);
    INFO(describe(r));
    REQUIRE(r.ok());
    return *r;
  };
  const int port = 20000 + (::getpid() % 20000);
  {
    // Server TLS only (loopback): processes may call, operators may not.
    Daemon d((*t)->edge, {"--no-pin", "--tcp", "127.0.0.1:" + std::to_string(port), "--tls-cert",
                          dir + "/server.pem", "--tls-key", dir + "/server.key"});
    REQUIRE(d.wait_serving());
    const auto op = call(port, false, "list-processes");
    CHECK_THAT(op, Catch::StartsWith("PERMISSION_DENIED") && Catch::Contains("client certificate"));
    // A process call gets through to the token check.
    CHECK_THAT(call(port, false, "unregister"),
               Catch::StartsWith("PERMISSION_DENIED") && Catch::Contains("registered process 'nobody'"));
  }
  for (const std::string listed : {"someone-else", "client"}) {
    // Mutual TLS: a client certificate signed by the CA is an operator only
    // if `operators` names it; otherwise its calls are a process's.
    INFO("operators: [" << listed << "]");
    const std::string cfg = dir + "/operators-" + listed + ".yaml";
    std::ofstream(cfg) << "operators: [" << listed << "]\n" << kRootTenant;
    const int p = port + (listed == "client" ? 1 : 3);
    Daemon d((*t)->edge, {"--no-pin", "--config", cfg, "--tcp", "127.0.0.1:" + std::to_string(p), "--tls-cert",
                          dir + "/server.pem", "--tls-key", dir + "/server.key", "--tls-ca", dir + "/ca.pem"});
    REQUIRE(d.wait_serving());
    if (listed == "client") {
      CHECK(call(p, true, "list-processes") == "OK\n");
    } else {
      CHECK_THAT(call(p, true, "list-processes"),
                 Catch::StartsWith("PERMISSION_DENIED") && Catch::Contains("operators"));
      CHECK_THAT(call(p, true, "unregister"),
                 Catch::StartsWith("PERMISSION_DENIED") && Catch::Contains("registered process 'nobody'"));
    }
    CHECK_THAT(call(p, false, "list-processes"), Catch::StartsWith("UNAVAILABLE"));  // no handshake
  }
  // A non-loopback address without a CA is refused at start.
  auto refused = testbed::run({QOCNETD_PATH, "--no-pin", "--listen", "unix:" + dir + "/x.sock", "--tcp",
                               "0.0.0.0:" + std::to_string(port + 2), "--tls-cert", dir + "/server.pem",
                               "--tls-key", dir + "/server.key"});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().to_string(), Catch::Contains("mutual TLS"));
  fs::remove_all(dir);
}

namespace {

// Sends numbered datagrams from the sensor to the service address until told
// to stop; returns how many it sent.
struct Sender {
  Sender(const testbed::Topology& t, int per_ms) {
    auto s = testbed::UdpSocket::open(t.sensor, testbed::Topology::sensor_ip, kSensorPort);
    REQUIRE_OK(s);
    sock = std::make_unique<testbed::UdpSocket>(std::move(*s));
    thread = std::thread([this, per_ms] {
      while (!stop) {
        for (int i = 0; i < per_ms; ++i) {
          const auto d = ts_datagram(sent++);
          (void)sock->send_to(testbed::Topology::service_ip, kServicePort, d);
        }
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
  }
  std::uint64_t finish() {
    stop = true;
    thread.join();
    return sent;
  }
  std::unique_ptr<testbed::UdpSocket> sock;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  std::thread thread;
};

// Drains a process's socket in its own thread (the socket buffer alone
// would overflow at these rates) until told to stop.
struct Receiver {
  explicit Receiver(testbed::UdpSocket s) : sock(std::move(s)) {
    thread = std::thread([this] {
      for (;;) {
        auto v = drain_ts(sock.fd(), milliseconds(50));
        std::lock_guard lock(mu);
        got.insert(got.end(), v.begin(), v.end());
        if (stop && v.empty()) return;
      }
    });
  }
  ~Receiver() { finish(); }
  // Stops after the socket was quiet for a while; returns what arrived since the last call.
  std::vector<std::uint64_t> finish() {
    stop = true;
    if (thread.joinable()) thread.join();
    std::lock_guard lock(mu);
    return std::exchange(got, {});
  }
  testbed::UdpSocket sock;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::uint64_t> got;
  std::thread thread;
};

// Every sequence number below `sent` exactly once.
void require_all_once(const std::vector<std::uint64_t>& got, std::uint64_t sent, const std::string& who) {
  std::set<std::uint64_t> uniq(got.begin(), got.end());
  INFO(who << ": sent " << sent << ", received " << got.size() << ", distinct " << uniq.size());
  CHECK(uniq.size() == got.size());  // no duplicates
  CHECK(got.size() == sent);         // none lost
  if (!uniq.empty()) CHECK(*uniq.rbegin() == sent - 1);
}

}  // namespace

TEST_CASE("kill -9 mid-stream loses nothing, restart re-adopts, a changed program swaps in without a gap",
          "[daemon]") {
  auto t = testbed::Topology::create(2, true);
  REQUIRE_OK(t);
  sysctl_quiet(**t);
  PinDir pins;
  std::vector<std::unique_ptr<Receiver>> rx;
  for (int i = 0; i < 2; ++i) {
    auto s = testbed::UdpSocket::open((*t)->procs[i], testbed::Topology::process_ip(i),
                                      static_cast<std::uint16_t>(6000 + i), 32 << 20);
    REQUIRE_OK(s);
    rx.push_back(std::make_unique<Receiver>(std::move(*s)));
  }
  const std::vector<std::string> args{"--pin-dir", pins.path, "--keep-datapath", "--port", "e0"};
  auto first = std::make_unique<Daemon>((*t)->edge, args, "d1");
  REQUIRE(first->wait_serving());
  {
    auto c = first->control();
    for (int i = 0; i < 2; ++i) {
      v1::AddProcessRequest add;
      *add.mutable_process() = process_msg(i);
      v1::AddProcessResponse ar;
      REQUIRE_GRPC_OK(c->AddProcess(ctx().get(), add, &ar));
    }
    v1::SetCloneTargetsRequest targets;
    *targets.mutable_stream() = stream_msg();
    targets.add_processes("proc0");
    targets.add_processes("proc1");
    v1::SetCloneTargetsResponse tr;
    REQUIRE_GRPC_OK(c->SetCloneTargets(ctx().get(), targets, &tr));
  }

  // 0. The daemon's datapath replicates: every datagram to both processes.
  auto sender = std::make_unique<Sender>(**t, 4);
  std::this_thread::sleep_for(milliseconds(300));
  std::uint64_t sent = sender->finish();
  sender.reset();
  for (int i = 0; i < 2; ++i) {
    require_all_once(rx[i]->finish(), sent, "proc" + std::to_string(i) + " before the kill");
    rx[i] = std::make_unique<Receiver>(std::move(rx[i]->sock));
  }

  // 1. kill -9 mid-stream: the pinned datapath keeps replicating.
  sender = std::make_unique<Sender>(**t, 4);
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(first->stop(SIGKILL) == 128 + SIGKILL);
  std::this_thread::sleep_for(milliseconds(500));

  // 2. A restarted daemon re-adopts the pins without compiling.
  auto second = std::make_unique<Daemon>((*t)->edge, args, "d2");
  REQUIRE(second->wait_serving());
  std::this_thread::sleep_for(milliseconds(300));
  {
    INFO(second->log());
    CHECK_THAT(second->log(), Catch::Contains("adopted=true"));
    v1::GetStatusResponse status;
    REQUIRE_GRPC_OK(second->control()->GetStatus(ctx().get(), {}, &status));
    CHECK(status.adopted());
    CHECK(status.compile_seconds() == 0);
    v1::ListProcessesResponse procs;
    REQUIRE_GRPC_OK(second->control()->ListProcesses(ctx().get(), {}, &procs));
    CHECK(procs.processes_size() == 2);
  }
  CHECK(second->stop(SIGTERM) == 0);  // --keep-datapath: still forwarding

  // 3. A changed program (another source hash) replaces the old one in place.
  const std::string src = "/tmp/" + testbed::unique_name("src");
  fs::copy(QOCNET_SOURCE_DIR "/bpf_src", src, fs::copy_options::recursive);
  std::ofstream(src + "/edge_ingress.c", std::ios::app) << "\n/* changed by the restart test */\n";
  auto changed_args = args;
  changed_args.insert(changed_args.end(), {"--bpf-src", src});
  auto third = std::make_unique<Daemon>((*t)->edge, changed_args, "d3");
  REQUIRE(third->wait_serving());
  std::this_thread::sleep_for(milliseconds(300));
  sent = sender->finish();
  sender.reset();
  {
    INFO(third->log());
    v1::GetStatusResponse status;
    REQUIRE_GRPC_OK(third->control()->GetStatus(ctx().get(), {}, &status));
    CHECK(status.adopted());
    CHECK(status.compile_seconds() > 0);
  }
  for (int i = 0; i < 2; ++i) {
    require_all_once(rx[i]->finish(), sent, "proc" + std::to_string(i) + " across kill -9 and two restarts");
    rx[i] = std::make_unique<Receiver>(std::move(rx[i]->sock));
  }
  CHECK(sent > 1000);

  // 4. SIGTERM without --keep-datapath detaches: nothing reaches the processes.
  CHECK(third->stop(SIGTERM) == 0);
  auto fourth = std::make_unique<Daemon>((*t)->edge, std::vector<std::string>{"--pin-dir", pins.path}, "d4");
  REQUIRE(fourth->wait_serving());
  CHECK(fourth->stop(SIGTERM) == 0);
  sender = std::make_unique<Sender>(**t, 1);
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(sender->finish() > 0);
  CHECK(rx[0]->finish().empty());
  CHECK((!fs::exists(pins.path) || fs::is_empty(pins.path)));  // the pins went with it
  fs::remove_all(src);
}

TEST_CASE("a QoC table whose state cannot be saved is refused and the old table stays", "[daemon][state]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  PinDir pins;
  Daemon d((*t)->edge, {"--pin-dir", pins.path, "--port", "e0"});
  REQUIRE(d.wait_serving());
  auto c = d.control();
  v1::GetQocTableResponse old_table;
  REQUIRE_GRPC_OK(c->GetQocTable(ctx().get(), {}, &old_table));
  const std::string before = snapshot(d) + old_table.SerializeAsString();

  // A real failure to save: a non-empty directory where the Edge's state file
  // is renamed into place (qocnetd's lock dir is the library's default).
  const fs::path state = detail::state_file(pins.path, EdgeOptions{}.lock_dir);
  REQUIRE(fs::exists(state));
  const fs::path saved = state.string() + ".test-saved";
  fs::rename(state, saved);
  fs::create_directories(state / "occupied");

  v1::SetQocTableRequest tab;
  tab.set_yaml("metric: x\nlossless: 1\npolicies:\n  uniform: {loss: [0.1, 0.2], qoc: [0.9, 0.8]}\n");
  v1::SetQocTableResponse tr;
  const auto st = c->SetQocTable(ctx().get(), tab, &tr);
  fs::remove_all(state);
  fs::rename(saved, state);
  CHECK_FALSE(st.ok());
  INFO(st.error_message());
  CHECK(st.error_message().find("state") != std::string::npos);
  v1::GetQocTableResponse after_table;
  REQUIRE_GRPC_OK(c->GetQocTable(ctx().get(), {}, &after_table));
  CHECK(snapshot(d) + after_table.SerializeAsString() == before);

  // With the state file back the same change goes through.
  REQUIRE_GRPC_OK(c->SetQocTable(ctx().get(), tab, &tr));
  REQUIRE_GRPC_OK(c->GetQocTable(ctx().get(), {}, &after_table));
  CHECK(after_table.table().metric() == "x");
}
