#include "convert.hpp"

namespace qocnet::grpc_api {

::grpc::StatusCode status_code(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return ::grpc::StatusCode::INVALID_ARGUMENT;
    case Errc::not_found: return ::grpc::StatusCode::NOT_FOUND;
    case Errc::already_exists: return ::grpc::StatusCode::ALREADY_EXISTS;
    case Errc::failed_precondition: return ::grpc::StatusCode::FAILED_PRECONDITION;
    case Errc::permission_denied: return ::grpc::StatusCode::PERMISSION_DENIED;
    case Errc::resource_exhausted: return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case Errc::unavailable: return ::grpc::StatusCode::UNAVAILABLE;
    case Errc::internal: return ::grpc::StatusCode::INTERNAL;
  }
  return ::grpc::StatusCode::UNKNOWN;
}

::grpc::Status to_status(const Error& error) {
  std::string msg = error.message;
  if (!error.fix.empty()) msg += "; fix: " + error.fix;
  return {status_code(error.code), msg, error.detail};
}

::grpc::Status to_status(const Status& status) {
  return status.ok() ? ::grpc::Status::OK : to_status(status.error());
}

void to_proto(const PortPair& pair, v1::PortPair* out) {
  out->set_ingress(pair.ingress);
  out->set_egress(pair.egress);
  out->set_ingress_ifindex(pair.ingress_ifindex);
  out->set_egress_ifindex(pair.egress_ifindex);
}

void to_proto(const PortCounters& c, v1::PortCounters* out) {
  out->set_name(c.name);
  out->set_ifindex(c.ifindex);
  out->set_rx_packets(c.rx_packets);
  out->set_rx_bytes(c.rx_bytes);
  out->set_fwd_packets(c.fwd_packets);
  out->set_fwd_bytes(c.fwd_bytes);
  out->set_pass_packets(c.pass_packets);
  out->set_pass_bytes(c.pass_bytes);
  out->set_tx_packets(c.tx_packets);
  out->set_tx_bytes(c.tx_bytes);
}

PortCounters from_proto(const v1::PortCounters& in) {
  PortCounters c;
  c.name = in.name();
  c.ifindex = in.ifindex();
  c.rx_packets = in.rx_packets();
  c.rx_bytes = in.rx_bytes();
  c.fwd_packets = in.fwd_packets();
  c.fwd_bytes = in.fwd_bytes();
  c.pass_packets = in.pass_packets();
  c.pass_bytes = in.pass_bytes();
  c.tx_packets = in.tx_packets();
  c.tx_bytes = in.tx_bytes();
  return c;
}

Result<PortPair> from_proto(const v1::PortPair& in, const char* field) {
  for (auto [name, value] : {std::pair{"ingress", &in.ingress()}, std::pair{"egress", &in.egress()}})
    if (value->empty())
      return make_error(Errc::invalid_argument,
                        std::string(field) + "." + name + " is empty",
                        std::string("set ") + field + "." + name + " to an interface name");
  PortPair p;
  p.ingress = in.ingress();
  p.egress = in.egress();
  return p;
}

}  // namespace qocnet::grpc_api
