// SPDX-License-Identifier: Apache-2.0
// Reaching qocnetd: the --address forms a client accepts, the channel for
// one (Unix socket, plain TCP, or TCP with (mutual) TLS), and what a failed
// call means for the user: the status code's name, the exit code, and a
// message that says which address was tried when qocnetd was not reached.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <string>

#include "qocnet/error.hpp"

namespace qocnet::client {

// qocnetd's default socket.
inline constexpr const char* kDefaultAddress = "unix:/run/qocnet/qocnet.sock";

struct Address {
  enum class Kind { unix_socket, tcp };
  Kind kind = Kind::unix_socket;
  std::string target;  // what gRPC dials: "unix:/run/qocnet/qocnet.sock", "10.0.0.5:7000"
  std::string text;    // as the user wrote it
};

// Accepts
//   unix:/run/qocnet/qocnet.sock, unix:///run/..., /run/... or ./x.sock  Unix socket
//   tcp:HOST:PORT, tcp://HOST:PORT, HOST:PORT, [IPV6]:PORT             TCP
// The error names the part that is wrong and shows the accepted forms.
Result<Address> parse_address(const std::string& text);

// Certificates for TCP: `ca` verifies the daemon (empty: the system's
// roots); `cert` + `key` (both or neither) authenticate this client (mutual
// TLS). `server_name` overrides the name checked in the daemon's certificate.
struct TlsFiles {
  std::string ca, cert, key, server_name;
  bool empty() const { return ca.empty() && cert.empty() && key.empty(); }
};

// The channel to `address`: insecure for a Unix socket (its file permissions
// guard it) and for TCP without TLS files, TLS for TCP with them. Fails
// (invalid_argument) on TLS files for a Unix socket or a certificate without
// its key, and (not_found) on a file that cannot be read; nothing is dialled
// yet.
Result<std::shared_ptr<::grpc::Channel>> make_channel(const Address& address, const TlsFiles& tls);
// The same with the caller's channel arguments (e.g. reconnect back-off).
Result<std::shared_ptr<::grpc::Channel>> make_channel(const Address& address, const TlsFiles& tls,
                                                      ::grpc::ChannelArguments args);

// Sets the call's deadline `timeout` from now.
void set_timeout(::grpc::ClientContext& context, std::chrono::milliseconds timeout);

// "INVALID_ARGUMENT", "NOT_FOUND", ...
const char* status_code_name(::grpc::StatusCode code) noexcept;

// grpc.health.v1.Health/Check of the server's overall status, read without
// the health proto: 1 SERVING, 2 NOT_SERVING, 0 another answer, -1 no answer
// within `timeout`.
int health_status(const std::shared_ptr<::grpc::Channel>& channel, std::chrono::milliseconds timeout);

// 2 for INVALID_ARGUMENT / NOT_FOUND / ALREADY_EXISTS (the request was
// wrong), 0 for OK, 1 otherwise. The same split for the library's codes.
int exit_code(::grpc::StatusCode code) noexcept;
int exit_code(Errc code) noexcept;

// true when the call failed because qocnetd was not reached: UNAVAILABLE or
// DEADLINE_EXCEEDED while the channel is not connected (an UNAVAILABLE that
// qocnetd sent itself comes over a connected channel).
bool is_connection_failure(const ::grpc::Status& status, ::grpc::Channel* channel);

// The line to show for a failed call:
//   "NOT_FOUND: process 'x' does not exist; fix: ..."
// or, when qocnetd was not reached:
//   "cannot reach qocnetd at unix:/run/qocnet/qocnet.sock (UNAVAILABLE: ...):
//    qocnetd must be running and serving that address (see --address)"
std::string describe(const ::grpc::Status& status, const Address& address, ::grpc::Channel* channel);

}  // namespace qocnet::client
