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
