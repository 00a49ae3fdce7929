// SPDX-License-Identifier: Apache-2.0
// qocnet::client::Process without a daemon: its options checked field by
// field (each error names the field and the fix), the request it registers
// with, the receiving port, a busy port, and the error when qocnetd's
// socket is missing.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <unistd.h>

#include <cmath>

#include <filesystem>

#include "qocnet_client/process.hpp"

using namespace qocnet;
using namespace qocnet::client;

namespace {

ProcessOptions good() {
  ProcessOptions o;
  o.name = "detector";
  o.streams = {"10.0.0.1:40000->:5000"};
  o.required = 0.9;
  o.udp_port = 6000;
  return o;
}

std::string error_of(const ProcessOptions& o) {
  auto st = check_options(o);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::invalid_argument);
  CHECK_FALSE(st.error().fix.empty());
  return st.error().to_string();
}

}  // namespace

TEST_CASE("Process options: each bad field is named with its fix", "[unit][client][process]") {
  CHECK(check_options(good()).ok());
  auto o = good();
  o.name = "";
  CHECK_THAT(error_of(o), Catch::Contains("name is empty"));
  o.name = std::string(32, 'a');
  CHECK_THAT(error_of(o), Catch::Contains("32 characters") && Catch::Contains("at most 31"));
  o.name = "bad name";
  CHECK_THAT(error_of(o), Catch::Contains("contains ' '"));
  o = good();
  o.streams.clear();
  CHECK_THAT(error_of(o), Catch::Contains("no stream") && Catch::Contains("--stream"));
  o.streams = {"10.0.0.1:40000"};
  CHECK_THAT(check_options(o).error().to_string(), Catch::Contains("process 'detector'") &&
                                                        Catch::Contains("10.0.0.1:40000"));
  o = good();
  o.required = -0.1;
  CHECK_THAT(error_of(o), Catch::Contains("required QoC"));
  o.required = std::nan("");
  CHECK_FALSE(check_options(o).ok());
  o = good();
  o.report_interval = std::chrono::milliseconds(5);
  CHECK_THAT(error_of(o), Catch::Contains("report interval 5 ms"));
  o = good();
  o.retry_max = std::chrono::milliseconds(10);
  CHECK_THAT(error_of(o), Catch::Contains("retry_max"));
  o = good();
  o.bind_address = "nowhere";
  CHECK_THAT(error_of(o), Catch::Contains("bind address 'nowhere'"));
  o = good();
  o.address = "ftp://x";
  CHECK_THAT(error_of(o), Catch::Contains("unknown scheme"));
}

TEST_CASE("Process: the receiving port is udp_port or the streams' shared destination port",
          "[unit][client][process]") {
  auto o = good();
  CHECK(receive_port(o).value() == 6000);
  o.udp_port = 0;
  CHECK(receive_port(o).value() == 5000);
  o.streams.push_back("10.0.0.2:40000->:5000");
  CHECK(receive_port(o).value() == 5000);
  o.streams.push_back("10.0.0.3:40000->:5002");
  auto r = receive_port(o);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().to_string(), Catch::Contains("5000 and 5002") && Catch::Contains("udp_port"));
  o.udp_port = 7000;
  CHECK(receive_port(o).value() == 7000);
}

TEST_CASE("Process: the registration carries name, streams, requirement, port and interface",
          "[unit][client][process]") {
  auto o = good();
  o.interface = "eth1";
  o.streams.push_back("[fd00::1]:40001->:5000");
  auto r = register_request(o);
  REQUIRE(r.ok());
  CHECK(r->name() == "detector");
  REQUIRE(r->streams_size() == 2);
  CHECK(r->streams(0).source() == "10.0.0.1");
  CHECK(r->streams(0).source_port() == 40000);
  CHECK(r->streams(0).destination_port() == 5000);
  CHECK(r->streams(1).source() == "fd00::1");
  CHECK(r->required() == Approx(0.9));
  CHECK(r->udp_port() == 6000);
  CHECK(r->interface() == "eth1");
  o.name = "";
  CHECK_FALSE(register_request(o).ok());
}

TEST_CASE("Process: a missing qocnetd socket and a busy port are named with their fix", "[unit][client][process]") {
  boost::asio::io_context io;
  auto o = good();
  o.bind_address = "127.0.0.1";
  o.udp_port = 0;
  o.streams = {"10.0.0.1:40000->:0"};
  CHECK_FALSE(Process::create(io, o).ok());  // port 0 is not a stream's port
  // A free port of this host, then the socket missing.
  boost::asio::ip::udp::socket probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  o = good();
  o.bind_address = "127.0.0.1";
  o.udp_port = port;
  o.address = "unix:/nonexistent/qocnet-test/qocnet.sock";
  {
    // The port is busy: create() says which address and what to do.
    auto busy = Process::create(io, o);
    REQUIRE_FALSE(busy.ok());
    CHECK(busy.error().code == Errc::already_exists);
    CHECK_THAT(busy.error().to_string(),
               Catch::Contains("127.0.0.1:" + std::to_string(port)) && Catch::Contains("another port"));
  }
  probe.close();
  auto p = Process::create(io, o);
  REQUIRE(p.ok());
  CHECK(p.value()->local_endpoint().port() == port);
  auto st = p.value()->start();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::unavailable);
  CHECK_THAT(st.error().to_string(), Catch::Contains("/nonexistent/qocnet-test/qocnet.sock does not exist") &&
                                         Catch::Contains("qocnetd must be running"));
  CHECK(p.value()->registrations() == 0);
  // Started once: a second start is refused.
  CHECK_THAT(p.value()->start().error().to_string(), Catch::Contains("started already"));
  p.value()->stop();
  p.value()->stop();  // idempotent
}

TEST_CASE("Process: a socket nobody serves is reported as qocnetd not reachable", "[unit][client][process]") {
  // A Unix socket file that exists but has no listener.
  const std::string dir = "/tmp/qocnet-process-test-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/dead.sock";
  {
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::acceptor a(io, boost::asio::local::stream_protocol::endpoint(path));
  }  // closed: the file stays, nobody listens
  REQUIRE(std::filesystem::exists(path));
  boost::asio::io_context io;
  auto o = good();
  o.bind_address = "127.0.0.1";
  o.udp_port = 0;
  o.streams = {"10.0.0.1:40000->:5000"};
  o.address = "unix:" + path;
  o.call_timeout = std::chrono::milliseconds(1000);
  boost::asio::ip::udp::socket probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  o.udp_port = probe.local_endpoint().port();
  probe.close();
  auto p = Process::create(io, o);
  REQUIRE(p.ok());
  auto st = p.value()->start();
  std::filesystem::remove_all(dir);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::unavailable);
  CHECK_THAT(st.error().to_string(), Catch::Contains("cannot reach qocnetd at unix:" + path) &&
                                         Catch::Contains("qocnetd must be running"));
}
