// SPDX-License-Identifier: Apache-2.0
// What qocnetd and qocnet-sensor share as gRPC servers: a local socket (and
// optionally TCP with TLS / mutual TLS), the health service starting at
// NOT_SERVING and server reflection (signals: each program's asio::signal_set).
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet::grpc_api {

struct ListenOptions {
  std::string listen;                     // "unix:/PATH"
  // qocnetd: a second local socket, for computation processes (containers
  // get it bind-mounted). Its connections are marked LocalSocket::process;
  // the services decide what such a caller may do. Needs peer_credentials.
  std::string process_listen;             // "unix:/PATH", empty: none
  mode_t listen_mode = 0600;              // the main socket: its owner (root) only
  mode_t process_mode = 0666;             // the process socket: anyone who can reach the file
  std::string tcp;                        // "HOST:PORT", empty: none
  std::string tls_cert, tls_key, tls_ca;  // PEM files; tls_ca: require client certificates
  // tls_ca: request client certificates and verify those presented, but let
  // a call without one through to the service, which refuses it
  // (UNAUTHENTICATED) -- instead of failing the handshake.
  bool verify_in_service = false;
  // Accept the local socket's connections here and note each peer's
  // credentials (SO_PEERCRED) for local_peer(), instead of gRPC accepting.
  bool peer_credentials = false;
};

// Which local socket a connection came in on.
enum class LocalSocket { main, process };

// A network namespace held open (the peer's, taken when it connected).
class NamespaceFd {
 public:
  explicit NamespaceFd(int fd) : fd_(fd) {}
  ~NamespaceFd();
  NamespaceFd(const NamespaceFd&) = delete;
  NamespaceFd& operator=(const NamespaceFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The credentials of a call's peer on a local socket served with
// peer_credentials (the `peer` is the call's ctx->peer()); none for others.
struct PeerCredentials {
  pid_t pid;
  uid_t uid;
  gid_t gid;
  LocalSocket socket = LocalSocket::main;
  // The peer's network namespace, opened when it connected and checked to be
  // the connecting process's (a pidfd of it was still alive afterwards, so
  // the pid was not reused meanwhile). Null if that could not be shown.
  std::shared_ptr<const NamespaceFd> netns;
  std::string cgroup;  // its cgroup v2 path, read with netns (empty if unknown)
  // Why netns is null: errno of opening /proc/PID/ns/net (EACCES: qocnetd
  // lacks CAP_SYS_PTRACE over a caller of another uid), or ESRCH when the
  // caller was gone before the namespace was shown to be its own.
  int netns_errno = 0;
};
std::optional<PeerCredentials> local_peer(const std::string& peer);


// Starts a server with `services`, health (NOT_SERVING until set otherwise)
// and reflection. The local socket appears only once health says NOT_SERVING
// (it is bound under a temporary name and renamed into place), so a client
// that finds it never sees SERVING too early. Only a stale socket (one that
// refuses connections) is replaced at the path; a live socket, a regular
// file, a directory or a symbolic link is left alone: already_exists.
Result<std::unique_ptr<::grpc::Server>> start_server(const ListenOptions& options,
                                                     const std::vector<::grpc::Service*>& services);
// Stops accepting local connections (peer_credentials); call before Shutdown.
void stop_accepting(const ListenOptions& options);
// Removes the local socket file (after Shutdown), if it is still the one
// start_server bound.
void remove_socket(const ListenOptions& options);

}  // namespace qocnet::grpc_api
