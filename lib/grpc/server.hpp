// What qocnetd and qocnet-sensor share as gRPC servers: a local socket (and
// optionally TCP with TLS / mutual TLS), the health service starting at
// NOT_SERVING, server reflection, and SIGTERM/SIGINT taken by sigwait.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet::grpc_api {

struct ListenOptions {
  std::string listen;                     // "unix:/PATH"
  std::string tcp;                        // "HOST:PORT", empty: none
  std::string tls_cert, tls_key, tls_ca;  // PEM files; tls_ca: require client certificates
};

// Blocks SIGTERM and SIGINT in the calling thread (call before starting any
// thread, so every thread inherits the mask); wait_signal then takes them.
sigset_t block_stop_signals();
int wait_signal(const sigset_t& set);

// Starts a server with `services`, health (NOT_SERVING until set otherwise)
// and reflection. The local socket appears only once health says NOT_SERVING
// (it is bound under a temporary name and renamed into place), so a client
// that finds it never sees SERVING too early. A socket file left by a dead
// server is replaced; a live one is already_exists.
Result<std::unique_ptr<::grpc::Server>> start_server(const ListenOptions& options,
                                                     const std::vector<::grpc::Service*>& services);
// Removes the local socket file (after Shutdown).
void remove_socket(const ListenOptions& options);

}  // namespace qocnet::grpc_api
