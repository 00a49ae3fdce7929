// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include "convert.hpp"

using namespace qocnet;
using grpc::StatusCode;

TEST_CASE("each error code maps to the gRPC status of the same meaning", "[unit][grpc]") {
  using grpc_api::status_code;
  CHECK(status_code(Errc::invalid_argument) == StatusCode::INVALID_ARGUMENT);
  CHECK(status_code(Errc::not_found) == StatusCode::NOT_FOUND);
  CHECK(status_code(Errc::already_exists) == StatusCode::ALREADY_EXISTS);
  CHECK(status_code(Errc::failed_precondition) == StatusCode::FAILED_PRECONDITION);
  CHECK(status_code(Errc::permission_denied) == StatusCode::PERMISSION_DENIED);
  CHECK(status_code(Errc::resource_exhausted) == StatusCode::RESOURCE_EXHAUSTED);
  CHECK(status_code(Errc::unavailable) == StatusCode::UNAVAILABLE);
  CHECK(status_code(Errc::internal) == StatusCode::INTERNAL);
}

TEST_CASE("a status carries the message, the fix and the detail", "[unit][grpc]") {
  Error e = make_error(Errc::not_found, "interface 'x0' does not exist", "check `ip link show`");
  e.detail = "more";
  auto s = grpc_api::to_status(e);
  CHECK(s.error_code() == StatusCode::NOT_FOUND);
  CHECK(s.error_message() == "interface 'x0' does not exist; fix: check `ip link show`");
  CHECK(s.error_details() == "more");
  CHECK(grpc_api::to_status(Status{}).ok());
}

TEST_CASE("port counters survive a round trip through protobuf", "[unit][grpc]") {
  PortCounters c{"e1", 7, 1, 2, 3, 4, 5, 6, 7, 8};
  v1::PortCounters m;
  grpc_api::to_proto(c, &m);
  v1::PortCounters parsed;
  REQUIRE(parsed.ParseFromString(m.SerializeAsString()));
  const PortCounters back = grpc_api::from_proto(parsed);
  CHECK(back.name == "e1");
  CHECK(back.ifindex == 7);
  CHECK(back.rx_packets == 1);
  CHECK(back.rx_bytes == 2);
  CHECK(back.fwd_packets == 3);
  CHECK(back.fwd_bytes == 4);
  CHECK(back.pass_packets == 5);
  CHECK(back.pass_bytes == 6);
  CHECK(back.tx_packets == 7);
  CHECK(back.tx_bytes == 8);
}

TEST_CASE("a port pair request with an empty name is refused naming the field", "[unit][grpc]") {
  v1::PortPair m;
  m.set_ingress("e0");
  auto r = grpc_api::from_proto(m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::invalid_argument);
  CHECK(r.error().message == "pair.egress is empty");
  CHECK(grpc_api::to_status(r.error()).error_code() == StatusCode::INVALID_ARGUMENT);
  m.set_egress("e1");
  auto ok = grpc_api::from_proto(m);
  REQUIRE(ok.ok());
  CHECK(ok->ingress == "e0");
  CHECK(ok->egress == "e1");
  PortPair p{"e0", "e1", 3, 4};
  v1::PortPair out;
  grpc_api::to_proto(p, &out);
  CHECK(out.ingress_ifindex() == 3);
  CHECK(out.egress_ifindex() == 4);
}

TEST_CASE("a request's stream is canonical: one address written two ways is one stream", "[unit][grpc]") {
  auto id = [](const char* source) {
    v1::StreamId m;
    m.set_source(source);
    m.set_source_port(40000);
    m.set_destination_port(5000);
    auto r = grpc_api::from_proto(m, "stream");
    INFO(source);
    REQUIRE(r.ok());
    return *r;
  };
  CHECK(id("2001:0db8:0:0::1").source == "2001:db8::1");
  CHECK(id("2001:DB8::0:1").source == "2001:db8::1");
  CHECK(id("::ffff:10.0.0.1").source == "10.0.0.1");
  // Keys compare by value: every spelling is one key, other ports another.
  auto a = grpc_api::stream_key(id("2001:db8::1"));
  auto b = grpc_api::stream_key(StreamId{"2001:0db8:0000::1", 40000, 5000});
  auto c = grpc_api::stream_key(StreamId{"::ffff:10.0.0.1", 40000, 5000});
  auto d = grpc_api::stream_key(StreamId{"10.0.0.1", 40000, 5000});
  auto e = grpc_api::stream_key(StreamId{"10.0.0.1", 40000, 5001});
  REQUIRE((a.ok() && b.ok() && c.ok() && d.ok() && e.ok()));
  CHECK(*a == *b);
  CHECK(*c == *d);
  CHECK_FALSE(*d == *e);
  CHECK(grpc_api::stream_id_of(*b).source == "2001:db8::1");
  auto bad = grpc_api::stream_key(StreamId{"2001:db8::g", 1, 2});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::invalid_argument);
}

TEST_CASE("a process's IP and MAC are canonical, its interface name checked", "[unit][grpc]") {
  v1::ProcessSpec m;
  m.set_name("p");
  m.set_port("e1");
  m.set_mac("02:AB:00:00:00:0F");
  m.set_ip("10.1.0.2");
  auto r = grpc_api::from_proto(m, "process");
  REQUIRE(r.ok());
  CHECK(r->mac == "02:ab:00:00:00:0f");
  CHECK(r->ip == "10.1.0.2");
  for (auto [field, value, says] :
       {std::tuple{"mac", "02:ab:00:00:00", "process.mac"}, std::tuple{"mac", "02:ab:00:00:00:0f:11", "process.mac"},
        std::tuple{"ip", "10.1.0.02x", "process.ip"}, std::tuple{"ip", "::1", "process.ip"},
        std::tuple{"port", "name-longer-than-15", "process.port"}, std::tuple{"port", "a/b", "process.port"}}) {
    v1::ProcessSpec bad = m;
    if (std::string(field) == "mac") bad.set_mac(value);
    else if (std::string(field) == "ip") bad.set_ip(value);
    else bad.set_port(value);
    auto b = grpc_api::from_proto(bad, "process");
    INFO(field << "=" << value);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().code == Errc::invalid_argument);
    CHECK_THAT(b.error().message, Catch::Contains(says));
  }
}

TEST_CASE("a stream's DPI counters reach protobuf, the HEVC PPS count included", "[unit][grpc]") {
  StreamStats s;
  s.source = "10.0.0.1:40000";
  s.source_port = 40000;
  s.destination_port = 5000;
  s.codec = Codec::hevc;
  s.frames = 9;
  s.ts_unparsed = 4;
  s.hevc_pps_unknown = 3;
  v1::StreamStats m;
  grpc_api::to_proto(s, &m);
  v1::StreamStats parsed;
  REQUIRE(parsed.ParseFromString(m.SerializeAsString()));
  CHECK(parsed.stream().source() == "10.0.0.1");
  CHECK(parsed.codec() == v1::CODEC_HEVC);
  CHECK(parsed.frames() == 9);
  CHECK(parsed.ts_unparsed() == 4);
  CHECK(parsed.hevc_pps_unknown() == 3);
}
