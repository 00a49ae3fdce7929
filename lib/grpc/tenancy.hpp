// SPDX-License-Identifier: Apache-2.0
// Who a caller of qocnetd is and what it may do (docs/SECURITY.md).
//
// Roles follow from how the call arrived, never from what it says:
//   operator  the main local socket (mode 0600, its owner), or TCP with a
//             verified client certificate listed in `operators`;
//   process   the process socket (bind-mounted into containers), or TCP
//             with any other verified client certificate;
//   anyone    TCP without a client certificate (loopback only).
// Operator calls (ControlService) need the operator role. QocService calls
// after registration need the process's token (call metadata). Registration
// needs a local caller whose network namespace qocnetd can see: the copies'
// destination is that namespace's own veth toward the edge, and the streams
// are those a tenant rule grants to that caller.
#pragma once

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"

namespace qocnet::control {
struct PeerIdentity;
}

namespace qocnet::grpc_api {

enum class Role { anyone, process, operator_role };
const char* to_string(Role role);

// A stream, or a family of them: "10.0.0.1:*->:5000", "[fd00::1]:40000->:*", "*".
struct StreamPattern {
  std::string source;              // empty: any source (compared as an address, not as text)
  std::uint16_t source_port = 0;   // 0: any
  std::uint16_t destination_port = 0;
  std::string text;                // as written
};
Result<StreamPattern> parse_stream_pattern(const std::string& text);
bool matches(const StreamPattern& pattern, const StreamId& stream);

// One entry of qocnetd's `tenants` list: who it is (every key given must
// hold, at least one is given), which process names it may register, and
// which streams those processes may receive.
struct TenantRule {
  std::string name;                        // for logs and errors
  std::optional<std::string> netns;        // the caller's namespace is /run/netns/NAME
  std::optional<std::string> cgroup;       // the caller's cgroup v2 path is this or below it
  std::optional<std::uint32_t> uid;        // the caller's uid
  std::vector<std::string> processes;      // name patterns (shell globs); empty: any name
  std::vector<StreamPattern> streams;      // at least one
};

struct TenancyConfig {
  std::vector<TenantRule> tenants;             // empty: nobody may register (default deny)
  std::vector<std::string> operators;          // client certificate identities (CN or SAN) that are operators
};

// The caller's role (see above).
Role caller_role(const ::grpc::CallbackServerContext* ctx, const TenancyConfig& config);

// The process token the call carries ("authorization: Bearer <token>").
// invalid_argument if the metadata is missing or malformed (naming the fix).
Result<std::string> call_token(const ::grpc::CallbackServerContext* ctx);

// The first rule that admits `peer`, or null.
const TenantRule* match_tenant(const TenancyConfig& config, const control::PeerIdentity& peer);

// What RegisterProcess asks for, before qocnetd decides where the copies go.
struct Registration {
  std::string name;
  std::uint16_t udp_port = 0;
  std::string interface;  // the caller's own interface, when it has several
  std::vector<StreamId> streams;
};

// Where the calling process's copies go, found from the call's peer: its
// namespace (held since it connected), the tenant rule that admits it, the
// process name and every stream checked against that rule, then its own
// veth toward the edge. permission_denied when no rule admits the caller or
// a name or stream is outside its rule; failed_precondition when the caller
// is not on a local socket or has no veth toward the edge.
Result<ProcessSpec> registration_spec(const ::grpc::CallbackServerContext* ctx, const TenancyConfig& config,
                                      const Registration& request);

}  // namespace qocnet::grpc_api
