// The gRPC wrapper's translations: qocnet errors to gRPC statuses, and the
// library's domain types to and from their protobuf messages.
#pragma once

#include <grpcpp/support/status.h>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/v1/control.pb.h"

namespace qocnet::grpc_api {

// The gRPC status code of an error code (one to one, by meaning).
::grpc::StatusCode status_code(Errc code);

// A status whose message is the error's message, then "; fix: <fix>".
::grpc::Status to_status(const Error& error);
::grpc::Status to_status(const Status& status);

void to_proto(const PortPair& pair, v1::PortPair* out);
void to_proto(const PortCounters& counters, v1::PortCounters* out);
PortCounters from_proto(const v1::PortCounters& in);

// A request's PortPair, checked: both names set. The error names the field.
Result<PortPair> from_proto(const v1::PortPair& in, const char* field = "pair");

}  // namespace qocnet::grpc_api
