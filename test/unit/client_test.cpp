// SPDX-License-Identifier: Apache-2.0
// The gRPC clients' shared pieces (clients/cpp, target qocnet_client):
// --address forms, channels and TLS files, stream and policy strings to
// messages, exit codes, the QoC table as YAML, tables.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "qocnet/qoc.hpp"
#include "qocnet_client/channel.hpp"
#include "qocnet_client/print.hpp"
#include "qocnet_client/proto_text.hpp"

using namespace qocnet;
using namespace qocnet::client;

TEST_CASE("addresses: unix sockets in every accepted form", "[unit][client]") {
  struct Case { const char* text; const char* target; };
  for (auto c : {Case{"unix:/run/qocnet/qocnet.sock", "unix:/run/qocnet/qocnet.sock"},
                 Case{"unix:///run/qocnet/qocnet.sock", "unix:/run/qocnet/qocnet.sock"},
                 Case{"unix:relative.sock", "unix:relative.sock"},
                 Case{"/tmp/q.sock", "unix:/tmp/q.sock"}, Case{"./q.sock", "unix:./q.sock"}}) {
    INFO(c.text);
    auto a = parse_address(c.text);
    REQUIRE(a.ok());
    CHECK(a->kind == Address::Kind::unix_socket);
    CHECK(a->target == c.target);
    CHECK(a->text == c.text);
  }
  CHECK(parse_address(kDefaultAddress)->target == "unix:/run/qocnet/qocnet.sock");
}

TEST_CASE("addresses: TCP as tcp:HOST:PORT, tcp://, HOST:PORT and [IPv6]:PORT", "[unit][client]") {
  struct Case { const char* text; const char* target; };
  for (auto c : {Case{"tcp:10.0.0.5:7000", "10.0.0.5:7000"}, Case{"tcp://edge.local:7000", "edge.local:7000"},
                 Case{"localhost:50051", "localhost:50051"}, Case{"[fd00::1]:7000", "[fd00::1]:7000"},
                 Case{"tcp:[::1]:1", "[::1]:1"}, Case{"10.0.0.5:65535", "10.0.0.5:65535"}}) {
    INFO(c.text);
    auto a = parse_address(c.text);
    REQUIRE(a.ok());
    CHECK(a->kind == Address::Kind::tcp);
    CHECK(a->target == c.target);
  }
}

TEST_CASE("addresses: malformed ones name what is wrong", "[unit][client]") {
  struct Case { const char* text; const char* says; };
  for (auto c : {Case{"", "empty"}, Case{"unix:", "no socket path"}, Case{"edge.local", "no ':PORT'"},
                 Case{"tcp:edge:0", "not in 1..65535"}, Case{"edge:70000", "not in 1..65535"},
                 Case{"edge:http", "port 'http' is not a number"}, Case{":7000", "no host"},
                 Case{"fd00::1:7000", "needs brackets: [fd00::1]:7000"},
                 Case{"[fd00::1]7000", "no ':PORT' after [fd00::1]"}, Case{"[fd00::1:7000", "no ']'"},
                 Case{"http://edge:80", "unknown scheme 'http'"}}) {
    INFO(c.text);
    auto a = parse_address(c.text);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == Errc::invalid_argument);
    CHECK_THAT(a.error().message, Catch::Contains(c.says));
    CHECK_THAT(a.error().fix, Catch::Contains("tcp:HOST:PORT"));
  }
}

TEST_CASE("channels: TLS only for TCP, certificate and key together, files readable", "[unit][client]") {
  auto unix_socket = *parse_address("unix:/tmp/none.sock");
  auto tcp = *parse_address("tcp:127.0.0.1:7000");
  CHECK(make_channel(unix_socket, {}).ok());
  CHECK(make_channel(tcp, {}).ok());

  auto on_unix = make_channel(unix_socket, TlsFiles{"ca.pem", "", "", ""});
  REQUIRE_FALSE(on_unix.ok());
  CHECK(on_unix.error().code == Errc::invalid_argument);
  CHECK_THAT(on_unix.error().fix, Catch::Contains("TLS is for TCP"));

  auto no_key = make_channel(tcp, TlsFiles{"", "cert.pem", "", ""});
  REQUIRE_FALSE(no_key.ok());
  CHECK_THAT(no_key.error().message, Catch::Contains("--tls-cert without --tls-key"));

  auto missing = make_channel(tcp, TlsFiles{"/nonexistent/ca.pem", "", "", ""});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Errc::not_found);
  CHECK_THAT(missing.error().message, Catch::Contains("/nonexistent/ca.pem"));

  // A readable CA makes a TLS channel (nothing is dialled yet).
  const auto ca = std::filesystem::temp_directory_path() / "qocnet_client_test_ca.pem";
  std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  CHECK(make_channel(tcp, TlsFiles{ca.string(), "", "", "edge"}).ok());
  std::filesystem::remove(ca);
}

TEST_CASE("exit codes: 2 when the request was wrong, 1 otherwise", "[unit][client]") {
  CHECK(exit_code(::grpc::StatusCode::OK) == 0);
  CHECK(exit_code(::grpc::StatusCode::INVALID_ARGUMENT) == 2);
  CHECK(exit_code(::grpc::StatusCode::NOT_FOUND) == 2);
  CHECK(exit_code(::grpc::StatusCode::ALREADY_EXISTS) == 2);
  CHECK(exit_code(::grpc::StatusCode::FAILED_PRECONDITION) == 1);
  CHECK(exit_code(::grpc::StatusCode::UNAVAILABLE) == 1);
  CHECK(exit_code(::grpc::StatusCode::PERMISSION_DENIED) == 1);
  CHECK(exit_code(Errc::invalid_argument) == 2);
  CHECK(exit_code(Errc::internal) == 1);
  CHECK(std::string(status_code_name(::grpc::StatusCode::FAILED_PRECONDITION)) == "FAILED_PRECONDITION");
}

TEST_CASE("a failure not reaching qocnetd names the address and qocnetd", "[unit][client]") {
  auto a = *parse_address("unix:/tmp/q.sock");
  const ::grpc::Status down(::grpc::StatusCode::UNAVAILABLE, "failed to connect to all addresses");
  CHECK(is_connection_failure(down, nullptr));
  CHECK_THAT(describe(down, a, nullptr),
             Catch::StartsWith("cannot reach qocnetd at unix:/tmp/q.sock (UNAVAILABLE: failed") &&
                 Catch::Contains("qocnetd must be running"));
  const ::grpc::Status refused(::grpc::StatusCode::NOT_FOUND, "process 'x' does not exist");
  CHECK_FALSE(is_connection_failure(refused, nullptr));
  CHECK(describe(refused, a, nullptr) == "NOT_FOUND: process 'x' does not exist");
}

TEST_CASE("streams: the library's spelling to messages and back", "[unit][client]") {
  auto v4 = parse_stream("10.0.0.1:40000->:5000");
  REQUIRE(v4.ok());
  CHECK(v4->source() == "10.0.0.1");
  CHECK(v4->source_port() == 40000);
  CHECK(v4->destination_port() == 5000);
  CHECK(to_string(*v4) == "10.0.0.1:40000->:5000");

  auto v6 = parse_stream("[fd00::1]:40000->:5000");
  REQUIRE(v6.ok());
  CHECK(v6->source() == "fd00::1");
  CHECK(to_string(*v6) == "[fd00::1]:40000->:5000");

  auto plain = parse_stream("10.0.0.2:1234:5000");
  REQUIRE(plain.ok());
  CHECK(plain->destination_port() == 5000);

  auto bad = parse_stream("10.0.0.1:40000->:0");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::invalid_argument);
  CHECK_THAT(bad.error().message, Catch::Contains("destination port 0"));

  // What an unquoted "->" leaves after the shell took '>' as a redirection.
  auto shell = parse_stream("10.0.0.1:40000-");
  REQUIRE_FALSE(shell.ok());
  CHECK_THAT(shell.error().fix, Catch::Contains("quote the stream"));
}

TEST_CASE("policies: the library's spelling to messages and back", "[unit][client]") {
  struct Case { const char* text; v1::PolicyKind kind; double drop; };
  for (auto c : {Case{"keep", v1::POLICY_KIND_KEEP, 0.0}, Case{"uniform(0.05)", v1::POLICY_KIND_UNIFORM, 0.05},
                 Case{"differential(0.1)", v1::POLICY_KIND_DIFFERENTIAL, 0.1},
                 Case{"frame_aware(0.3)", v1::POLICY_KIND_FRAME_AWARE, 0.3}}) {
    INFO(c.text);
    auto p = client::parse_policy(c.text);
    REQUIRE(p.ok());
    CHECK(p->kind() == c.kind);
    CHECK(p->drop() == Approx(c.drop));
    CHECK(to_string(*p) == c.text);
  }
  for (const char* bad : {"drop(0.1)", "uniform", "uniform(1.5)", "differential(-0.1)", ""}) {
    INFO(bad);
    auto p = client::parse_policy(bad);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == Errc::invalid_argument);
  }
  CHECK(to_string(v1::Policy{}) == "unspecified");
  CHECK(std::string(kind_name(v1::POLICY_KIND_FRAME_AWARE)) == "frame_aware");
}

TEST_CASE("policies: frame_aware's drop order to messages and back", "[unit][client]") {
  struct Case { const char* text; v1::DropOrder order; const char* printed; };
  for (auto c : {Case{"frame_aware(0.2)", v1::DROP_ORDER_DISP, "frame_aware(0.2)"},
                 Case{"frame_aware(0.2,tail)", v1::DROP_ORDER_TAIL, "frame_aware(0.2,tail)"},
                 Case{"frame_aware(0.2, thin)", v1::DROP_ORDER_THIN, "frame_aware(0.2,thin)"},
                 Case{"frame_aware(0.2,disp)", v1::DROP_ORDER_DISP, "frame_aware(0.2)"}}) {
    INFO(c.text);
    auto p = client::parse_policy(c.text);
    REQUIRE(p.ok());
    CHECK(p->kind() == v1::POLICY_KIND_FRAME_AWARE);
    CHECK(p->order() == c.order);
    CHECK(to_string(*p) == c.printed);
  }
  auto bad = client::parse_policy("uniform(0.1,tail)");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("frame_aware's"));
}

TEST_CASE("the QoC table as YAML reads back as the same table", "[unit][client]") {
  const QocTable paper = QocTable::paper_default();
  v1::QocTable msg;
  msg.set_metric("object \"detection\" rate");
  msg.set_lossless(paper.lossless());
  for (const auto& [kind, curve] : paper.curves()) {
    auto* c = msg.add_curves();
    c->set_kind(to_proto(kind));
    for (double l : curve.loss) c->add_loss(l);
    for (double q : curve.qoc) c->add_qoc(q);
  }
  auto back = QocTable::parse_yaml(to_yaml(msg), "to_yaml");
  REQUIRE(back.ok());
  CHECK(back->metric() == "object \"detection\" rate");
  CHECK(back->lossless() == Approx(paper.lossless()));
  REQUIRE(back->curves().size() == paper.curves().size());
  for (const auto& [kind, curve] : paper.curves()) {
    const auto& other = back->curves().at(kind);
    CHECK(other.loss == curve.loss);
    CHECK(other.qoc == curve.qoc);
  }
}

TEST_CASE("tables align columns and JSON keeps the .proto names and zero values", "[unit][client]") {
  Table t({"name", "packets"});
  t.add({"e0", "5"});
  t.add({"veth-long", "12345"});
  CHECK(t.str() ==
        "name       packets\n"
        "e0               5\n"
        "veth-long    12345\n");

  v1::PortCounters c;
  c.set_name("e0");
  c.set_rx_packets(3);
  const std::string json = to_json(c);
  CHECK_THAT(json, Catch::Contains("\"name\":\"e0\"") && Catch::Contains("\"rx_packets\":\"3\"") &&
                       Catch::Contains("\"tx_bytes\":\"0\""));
  CHECK(json.find('\n') == std::string::npos);

  CHECK(percent(0.1234) == "12.3%");
  CHECK(num(0.05) == "0.05");
}
