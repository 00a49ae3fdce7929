// The gRPC wrapper's translations: qocnet errors to gRPC statuses, and the
// library's domain types to and from their protobuf messages. Every
// from_proto checks its message and names the offending field.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/v1/control.pb.h"
#include "qocnet/v1/types.pb.h"

namespace qocnet::grpc_api {

// The gRPC status code of an error code (one to one, by meaning).
::grpc::StatusCode status_code(Errc code);
// A status whose message is the error's message, then "; fix: <fix>".
::grpc::Status to_status(const Error& error);
::grpc::Status to_status(const Status& status);
// An invalid_argument error about `field`.
Error bad_field(const std::string& field, const std::string& problem, const std::string& fix);

void to_proto(const PortPair& pair, v1::PortPair* out);
void to_proto(const PortCounters& counters, v1::PortCounters* out);
PortCounters from_proto(const v1::PortCounters& in);
// A request's PortPair, checked: both names set. The error names the field.
Result<PortPair> from_proto(const v1::PortPair& in, const char* field = "pair");

void to_proto(const StreamId& s, v1::StreamId* out);
Result<StreamId> from_proto(const v1::StreamId& in, const std::string& field);
void to_proto(const Policy& p, v1::Policy* out);
Result<Policy> from_proto(const v1::Policy& in, const std::string& field);
void to_proto(const ProcessSpec& p, v1::ProcessSpec* out);
Result<ProcessSpec> from_proto(const v1::ProcessSpec& in, const std::string& field);
void to_proto(const TargetStats& t, v1::TargetStats* out);
// The stream a StreamStats is about (its `source` is "address:port").
StreamId stream_of(const StreamStats& s);
void to_proto(const StreamStats& s, v1::StreamStats* out);
void to_proto(const DpiCounters& c, v1::DpiCounters* out);
void to_proto(const Bandwidth& b, v1::Bandwidth* out);
void to_proto(const QocTable& t, v1::QocTable* out);
Result<QocTable> from_proto(const v1::QocTable& in, const std::string& field);
void to_proto(const ProgramInfo& p, v1::ProgramInfo* out);
// Four per-class counters into a ClassCounts.
void to_proto(const std::uint64_t (&datagrams)[4], const std::uint64_t (&bytes)[4],
              v1::ClassCounts* out);

}  // namespace qocnet::grpc_api
