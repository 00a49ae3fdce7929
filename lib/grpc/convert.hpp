// SPDX-License-Identifier: Apache-2.0
// The gRPC wrapper's translations: qocnet errors to gRPC statuses, and the
// library's domain types to and from their protobuf messages. Every
// from_proto checks its message and names the offending field.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <array>
#include <compare>
#include <cstdint>
#include <string>

#include "control/types.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/v1/control.pb.h"
#include "qocnet/v1/qoc.pb.h"
#include "qocnet/v1/types.pb.h"

namespace qocnet::grpc_api {

// The gRPC status code of an error code (one to one, by meaning).
::grpc::StatusCode status_code(Errc code);
// A status whose message is the error's message, then "; fix: <fix>".
::grpc::Status to_status(const Error& error);
::grpc::Status to_status(const Status& status);
// An invalid_argument error about `field`.
Error bad_field(const std::string& field, const std::string& problem, const std::string& fix);
// A process name as the datapath holds it: 1..31 of A-Z a-z 0-9 _ . -
Status check_process_name(const std::string& name, const std::string& field);
// An interface name as the kernel takes it (IFNAMSIZ, no '/', ':' or blanks).
Status check_interface_name(const std::string& name, const std::string& field);

// Limits of a request's text fields (docs/SECURITY.md, Limits).
inline constexpr std::size_t kMaxProcessName = 31;    // the datapath's name field
inline constexpr std::size_t kMaxInterfaceName = 15;  // IFNAMSIZ - 1
inline constexpr std::size_t kMaxAddressText = 45;    // INET6_ADDRSTRLEN - 1
// invalid_argument "FIELD is N bytes, more than the limit of LIMIT" if longer.
Status check_length(const std::string& field, const std::string& value, std::size_t limit);
// Every text field and list of a request, at any depth, against its limit
// (the field's name picks it, docs/SECURITY.md): names 64 bytes, interface
// names 15, addresses 45, a sensor's gRPC address 256, tokens 64, YAML
// 64 KiB; lists 1024 entries. The error names the field's path
// ("sensor.streams[2].source") and the limit. Runs before anything else.
Status check_request(const google::protobuf::Message& request);
inline constexpr std::size_t kMaxListEntries = 1024;
// A MAC address "02:ab:00:00:00:01" in lower case; the error names `field`.
Result<std::string> canonical_mac(const std::string& text, const std::string& field);
// An interface name the kernel could have (1..15 bytes, no '/', ':' or blanks).
Status check_interface_name(const std::string& name, const std::string& field);

void to_proto(const PortPair& pair, v1::PortPair* out);
void to_proto(const PortCounters& counters, v1::PortCounters* out);
PortCounters from_proto(const v1::PortCounters& in);
// A request's PortPair, checked: both names set. The error names the field.
Result<PortPair> from_proto(const v1::PortPair& in, const char* field = "pair");

// The stream key type is the library's (qocnet::StreamKey, qocnet/edge.hpp).
using qocnet::same_stream;
using qocnet::stream_id_of;
using qocnet::stream_key;
using qocnet::StreamKey;

void to_proto(const StreamId& s, v1::StreamId* out);
// Checked and canonical (see StreamKey): two spellings give one StreamId.
Result<StreamId> from_proto(const v1::StreamId& in, const std::string& field);
void to_proto(const Policy& p, v1::Policy* out);
Result<Policy> from_proto(const v1::Policy& in, const std::string& field);
void to_proto(const ProcessSpec& p, v1::ProcessSpec* out);
// Checked: a valid name, an interface name, a MAC (returned lower case) and
// an IPv4 address (returned as inet_ntop prints it) or none.
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

// The control core's results (lib/control/core.hpp) on the wire.
Result<StreamKey> key_from_proto(const v1::StreamId& in, const std::string& field);
void to_proto(const StreamKey& k, v1::StreamId* out);
void to_proto(const control::StreamPolicy& p, v1::StreamPolicy* out);
void to_proto(const control::PolicyChange& c, v1::PolicyUpdate* out);
v1::LoopAction to_proto(control::LoopAction a);
void to_proto(const control::SensorView& s, v1::Sensor* out);
void to_proto(const control::CoreStatus& s, v1::GetStatusResponse* out);
void to_proto(const control::StatsSnapshot& s, v1::StatsUpdate* out);

}  // namespace qocnet::grpc_api
