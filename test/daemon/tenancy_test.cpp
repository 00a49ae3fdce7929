// SPDX-License-Identifier: Apache-2.0
// Tenancy: a computation process reaches only its own copies. It registers
// over the process socket with no address at all; qocnetd takes the
// destination from the caller's own veth (found from its namespace), admits
// only the streams a tenant rule grants it, and serves no operator call on
// that socket. Real namespaces, a real qocnetd, real traffic.
#include <catch2/catch.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include "../support/daemon.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::milliseconds;

namespace {

std::string stream_text() {
  return std::string(testbed::Topology::sensor_ip) + ":" + std::to_string(kSensorPort) + "->:" +
         std::to_string(kServicePort);
}

std::string process_list(const Daemon& d) {
  v1::ListProcessesResponse r;
  REQUIRE_GRPC_OK(d.control()->ListProcesses(ctx().get(), {}, &r));
  return r.DebugString();
}

}  // namespace

TEST_CASE("a process registers with no address and receives its copies at its own veth", "[daemon][tenancy]") {
  auto t = testbed::Topology::create(2, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  // Process 0's namespace may receive the stream; process 1's nothing.
  const auto cfg = config_args("tenants:\n  - {name: zero, netns: " + topo.procs[0].name() +
                               ", streams: [\"" + stream_text() + "\"]}\n");
  std::vector<std::string> args{"--no-pin", "--port", "e0"};
  args.insert(args.end(), cfg.begin(), cfg.end());
  Daemon d(topo.edge, args);
  REQUIRE(d.wait_serving());
  std::filesystem::remove(cfg[1]);

  auto rx0 = testbed::UdpSocket::open(topo.procs[0], testbed::Topology::process_ip(0), 6000);
  auto rx1 = testbed::UdpSocket::open(topo.procs[1], testbed::Topology::process_ip(1), 6001);
  REQUIRE_OK(rx0);
  REQUIRE_OK(rx1);
  const auto reg = register_from(topo.procs[0], d.process_address(), registration(0, stream_msg(), 0));
  REQUIRE_GRPC_OK(reg.status);
  // Where the copies go is what the kernel says of process 0's own veth.
  const auto& p = reg.response.process();
  CHECK(p.name() == "proc0");
  CHECK(p.port() == testbed::Topology::edge_port_to_process(0));
  CHECK(p.mac() == testbed::Topology::process_mac(0));
  CHECK(p.ip() == testbed::Topology::process_ip(0));
  CHECK(p.udp_port() == 6000);
  CHECK_THAT(process_list(d), Catch::Contains(testbed::Topology::process_mac(0)));

  auto tx = testbed::UdpSocket::open(topo.sensor, testbed::Topology::sensor_ip, kSensorPort);
  REQUIRE_OK(tx);
  for (std::uint64_t i = 0; i < 50; ++i)
    REQUIRE_OK(tx->send_to(testbed::Topology::service_ip, kServicePort, ts_datagram(i)));
  CHECK(drain_ts(rx0->fd(), milliseconds(300)).size() == 50);
  CHECK(drain_ts(rx1->fd(), milliseconds(100)).empty());

  // The token comes in the call's metadata; without it, nothing is taken.
  v1::ReportRequirementRequest rr;
  rr.set_name("proc0");
  rr.set_required(0.9);
  v1::ReportRequirementResponse resp;
  REQUIRE_GRPC_CODE(d.qoc()->ReportRequirement(ctx().get(), rr, &resp), INVALID_ARGUMENT, "authorization");
  REQUIRE_GRPC_OK(d.qoc()->ReportRequirement(ctx(reg.response.token()).get(), rr, &resp));
}

TEST_CASE("a process cannot have its copies sent to another's address", "[daemon][tenancy]") {
  auto t = testbed::Topology::create(2, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  Daemon d(topo.edge, {"--no-pin", "--port", "e0"});  // every root process, every stream
  REQUIRE(d.wait_serving());
  // Inside process 0's namespace: interfaces dressed as process 1 (its MAC,
  // and its address), on veth pairs whose both ends stay in the namespace.
  const auto& ns0 = topo.procs[0];
  REQUIRE_OK(ns0.ip({"link", "add", "fake", "type", "veth", "peer", "name", "fake1"}));
  REQUIRE_OK(ns0.ip({"link", "set", "fake", "address", testbed::Topology::process_mac(1), "up"}));
  REQUIRE_OK(ns0.ip({"addr", "add", testbed::Topology::process_ip(1) + "/32", "dev", "fake"}));
  REQUIRE_OK(ns0.ip({"link", "add", "x0", "type", "veth", "peer", "name", "x1"}));
  REQUIRE_OK(ns0.ip({"link", "set", "x0", "address", testbed::Topology::process_mac(1), "up"}));
  const std::string before = process_list(d);
  for (const char* name : {"fake", "fake1", "x0", "x1", "e2"}) {
    INFO("interface " << name);
    auto req = registration(0, stream_msg(), 0);
    req.set_interface(name);
    const auto reg = register_from(ns0, d.process_address(), req);
    INFO(status_text(reg.status));
    // Not a veth toward the edge; e2 is no interface of this namespace at all.
    CHECK(reg.status.error_code() == (std::string(name) == "e2" ? ::grpc::StatusCode::NOT_FOUND
                                                                 : ::grpc::StatusCode::FAILED_PRECONDITION));
    CHECK(process_list(d) == before);
  }
  // Asked for nothing in particular, it gets its own veth: the only one whose
  // other end is the edge's.
  const auto reg = register_from(ns0, d.process_address(), registration(0, stream_msg(), 0));
  REQUIRE_GRPC_OK(reg.status);
  CHECK(reg.response.process().port() == testbed::Topology::edge_port_to_process(0));
  CHECK(reg.response.process().mac() == testbed::Topology::process_mac(0));
  CHECK(reg.response.process().ip() == testbed::Topology::process_ip(0));
  // A caller in qocnetd's own namespace has no veth of its own.
  const auto own = register_from(topo.edge, d.process_address(), registration(1, stream_msg(), 0));
  CHECK(own.status.error_code() == ::grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("a process outside its tenant's streams, names or namespaces is refused", "[daemon][tenancy]") {
  auto t = testbed::Topology::create(3, true);
  REQUIRE_OK(t);
  const auto& topo = **t;
  const auto cfg = config_args("tenants:\n  - {name: zero, netns: " + topo.procs[0].name() +
                               ", processes: [\"proc0\", \"det-*\"], streams: [\"" +
                               std::string(testbed::Topology::sensor_ip) + ":*->:" + std::to_string(kServicePort) +
                               "\"]}\n  - {name: one, netns: " + topo.procs[1].name() + ", uid: 4242, streams: [\"*\"]}\n");
  std::vector<std::string> args{"--no-pin", "--port", "e0"};
  args.insert(args.end(), cfg.begin(), cfg.end());
  Daemon d(topo.edge, args);
  REQUIRE(d.wait_serving());
  std::filesystem::remove(cfg[1]);
  const std::string before = process_list(d);

  // Process 2's namespace is nobody's tenant.
  auto r = register_from(topo.procs[2], d.process_address(), registration(2, stream_msg(), 0));
  REQUIRE_GRPC_CODE(r.status, PERMISSION_DENIED, "no tenant");
  // Process 1's rule also wants uid 4242: root is not it.
  r = register_from(topo.procs[1], d.process_address(), registration(1, stream_msg(), 0));
  REQUIRE_GRPC_CODE(r.status, PERMISSION_DENIED, "no tenant");
  // Process 0 may not receive another destination port, nor another source.
  auto other = stream_msg();
  other.set_destination_port(kServicePort + 1);
  r = register_from(topo.procs[0], d.process_address(), registration(0, other, 0));
  REQUIRE_GRPC_CODE(r.status, PERMISSION_DENIED, "may not receive stream");
  other = stream_msg();
  other.set_source("10.77.9.9");
  r = register_from(topo.procs[0], d.process_address(), registration(0, other, 0));
  REQUIRE_GRPC_CODE(r.status, PERMISSION_DENIED, "may not receive stream");
  // ... nor take a name outside its patterns.
  auto named = registration(0, stream_msg(), 0);
  named.set_name("recorder");
  r = register_from(topo.procs[0], d.process_address(), named);
  REQUIRE_GRPC_CODE(r.status, PERMISSION_DENIED, "recorder");
  CHECK(process_list(d) == before);
  // Within all of it: admitted, under a name its patterns allow.
  named.set_name("det-1");
  r = register_from(topo.procs[0], d.process_address(), named);
  REQUIRE_GRPC_OK(r.status);
}

TEST_CASE("the process socket serves no operator call, and the operator socket is root's alone", "[daemon][tenancy]") {
  auto t = testbed::Topology::create(1, true);
  REQUIRE_OK(t);
  Daemon d((*t)->edge, {"--no-pin", "--port", "e0"});
  REQUIRE(d.wait_serving());
  auto c = d.control_on_process_socket();
  v1::ListProcessesResponse lr;
  REQUIRE_GRPC_CODE(c->ListProcesses(ctx().get(), {}, &lr), PERMISSION_DENIED, "process socket");
  v1::AddProcessRequest add;
  *add.mutable_process() = process_msg(0);
  v1::AddProcessResponse ar;
  REQUIRE_GRPC_CODE(c->AddProcess(ctx().get(), add, &ar), PERMISSION_DENIED, "process socket");
  v1::DetachPortRequest det;
  det.set_port("e0");
  v1::DetachPortResponse dr;
  REQUIRE_GRPC_CODE(c->DetachPort(ctx().get(), det, &dr), PERMISSION_DENIED, "process socket");
  CHECK(process_list(d).find("proc0") == std::string::npos);
  v1::GetStatusResponse st;
  REQUIRE_GRPC_OK(d.control()->GetStatus(ctx().get(), {}, &st));
  CHECK(st.ports_size() == 1);  // e0 still attached
  // File modes: the operator socket is its owner's; the process socket anyone's
  // who can reach the file (a bind mount puts it in a container).
  struct stat op {}, pr {};
  REQUIRE(::stat(d.socket().c_str(), &op) == 0);
  REQUIRE(::stat(d.process_address().substr(5).c_str(), &pr) == 0);
  CHECK((op.st_mode & 0777) == 0600);
  CHECK((pr.st_mode & 0777) == 0666);
  // Health answers on the process socket too (a readiness probe needs no certificate).
  CHECK(client::health_status(::grpc::CreateChannel(d.process_address(), ::grpc::InsecureChannelCredentials()),
                              std::chrono::seconds(2)) == 1);
}
