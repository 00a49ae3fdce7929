// SPDX-License-Identifier: Apache-2.0
#include "server.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <sstream>

namespace fs = std::filesystem;

namespace qocnet::grpc_api {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Makes way for a socket at `path`: nothing there, or a stale socket (one
// nobody listens on: connect says ECONNREFUSED), which is removed. Anything
// else -- a regular file, a directory, a symbolic link, a live socket, a
// socket that cannot be probed -- is left alone and refused.
Status make_way(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return make_error(Errc::failed_precondition, "cannot inspect " + path.string() + ": " + std::strerror(errno),
                      "choose another --listen path", errno);
  }
  auto refuse = [&](const std::string& what) {
    return make_error(Errc::already_exists, path.string() + " " + what + "; qocnet replaces only a stale socket",
                      "remove it yourself if it is not needed, or give another --listen path");
  };
  if (S_ISLNK(st.st_mode)) return refuse("is a symbolic link");
  if (S_ISDIR(st.st_mode)) return refuse("is a directory");
  if (!S_ISSOCK(st.st_mode)) return refuse("is not a socket (a regular file or another kind of file)");
  if (path.string().size() >= sizeof(sockaddr_un::sun_path))
    return make_error(Errc::invalid_argument, "socket path " + path.string() + " is too long",
                      "use a path of at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::internal, "socket(AF_UNIX): " + std::string(std::strerror(errno)), "", errno);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  const int err = errno;
  ::close(fd);
  if (rc == 0)
    return make_error(Errc::already_exists, "another server listens on " + path.string(),
                      "stop it, or give this one another --listen path");
  if (err != ECONNREFUSED) return refuse(std::string("is a socket that cannot be probed (") + std::strerror(err) + ")");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return make_error(Errc::failed_precondition, "cannot remove the stale socket " + path.string(),
                      "check the directory's permissions", errno);
  return {};
}

Status prepare_socket(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return make_error(Errc::failed_precondition, "cannot create " + path.parent_path().string() + ": " + ec.message(),
                      "run as root or choose another --listen path");
  return make_way(path);
}

// The sockets this process bound, by path: only those are removed at exit.
std::mutex bound_mu;
std::map<std::string, std::pair<dev_t, ino_t>> bound;

// Local connections accepted by qocnet (peer_credentials) and handed to gRPC:
// their credentials by fd. gRPC closes a connection's fd only once no call
// on it is left, so a call's fd is never another connection's meanwhile.
std::mutex peers_mu;
std::map<int, PeerCredentials> peers;

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older kernels say ENOPROTOOPT and pidfd_open is used
#endif

// The peer's network namespace and cgroup, read and then shown to be the
// connecting process's: a pidfd taken for the connection (SO_PEERPIDFD, else
// pidfd_open right after accept) still refers to a live process after the
// reads, so the pid was not handed to another process in between.
void capture_peer(int conn, PeerCredentials& peer) {
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0 || pidfd < 0)
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0));
  if (pidfd < 0) {
    peer.netns_errno = errno;
    return;
  }
  const std::string proc = "/proc/" + std::to_string(peer.pid);
  const int ns = ::open((proc + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
  const int open_errno = errno;
  std::string cgroup;
  {
    std::ifstream in(proc + "/cgroup");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("0::", 0) == 0) cgroup = line.substr(3, 4096);
  }
  // Signal 0 only asks whether the process is there: EPERM (a caller of
  // another uid, and qocnetd without CAP_KILL, as its systemd unit runs it)
  // says it is; ESRCH that it exited.
  const bool alive = ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0 || errno == EPERM;
  ::close(pidfd);
  if (ns < 0) {
    peer.netns_errno = open_errno;
    return;
  }
  auto held = std::make_shared<const NamespaceFd>(ns);
  if (!alive) {
    peer.netns_errno = ESRCH;
    return;
  }
  peer.netns = std::move(held);
  peer.cgroup = std::move(cgroup);
}

class LocalAcceptor {
 public:
  LocalAcceptor(int fd, ::grpc::Server* server, LocalSocket role) : fd_(fd), server_(server), role_(role) {
    thread_ = std::thread([this] { loop(); });
  }
  ~LocalAcceptor() { stop(); }
  void stop() {
    if (stopping_.exchange(true)) return;
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }

 private:
  void loop() {
    while (!stopping_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) {
        if (stopping_) return;
        if (errno != EINTR && errno != ECONNABORTED) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ::close(c);
        continue;
      }
      PeerCredentials peer{cred.pid, cred.uid, cred.gid, role_, nullptr, {}};
      capture_peer(c, peer);
      {
        std::lock_guard lock(peers_mu);
        peers[c] = std::move(peer);
      }
      ::grpc::AddInsecureChannelFromFd(server_, c);
    }
  }
  int fd_;
  ::grpc::Server* server_;
  LocalSocket role_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

std::mutex acceptors_mu;
std::map<std::string, std::unique_ptr<LocalAcceptor>> acceptors;

// A listening Unix socket at `path` (its mode is set by the caller).
Result<int> listen_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::internal, "socket(AF_UNIX): " + std::string(std::strerror(errno)), "", errno);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 128) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(Errc::unavailable, "cannot listen on " + path + ": " + std::strerror(err),
                      "check the directory and its permissions", err);
  }
  return fd;
}

}  // namespace

namespace {

// A local socket of the server: bound under a temporary name, then moved
// into place once the health service says NOT_SERVING.
struct LocalPlace {
  std::string address;  // "unix:/PATH"
  fs::path path;
  std::string starting;
  mode_t mode;
  LocalSocket role;
  int fd = -1;  // peer_credentials: the listening socket
};

Result<fs::path> unix_path(const std::string& address, const char* option) {
  if (address.rfind("unix:", 0) != 0 || address.size() <= 5)
    return make_error(Errc::invalid_argument, std::string(option) + " '" + address + "' is not a unix: address",
                      "give the local socket as unix:/PATH");
  return fs::path(address.substr(5));
}

void close_places(std::vector<LocalPlace>& places) {
  for (auto& p : places)
    if (p.fd >= 0) {
      ::close(p.fd);
      ::unlink(p.starting.c_str());
      p.fd = -1;
    }
}

}  // namespace

Result<std::unique_ptr<::grpc::Server>> start_server(const ListenOptions& o,
                                                     const std::vector<::grpc::Service*>& services) {
  std::vector<LocalPlace> places;
  {
    QOCNET_ASSIGN(path, unix_path(o.listen, "listen"));
    places.push_back(LocalPlace{o.listen, path, path.string() + ".starting", o.listen_mode, LocalSocket::main});
  }
  if (!o.process_listen.empty()) {
    if (!o.peer_credentials)
      return make_error(Errc::invalid_argument, "a process socket needs peer credentials",
                        "serve it with ListenOptions::peer_credentials");
    QOCNET_ASSIGN(path, unix_path(o.process_listen, "process-listen"));
    if (path == places.front().path)
      return make_error(Errc::invalid_argument, "the process socket and the main socket are both " + path.string(),
                        "give the process socket its own path (e.g. unix:/run/qocnet/process/qocnet.sock)");
    places.push_back(LocalPlace{o.process_listen, path, path.string() + ".starting", o.process_mode,
                                LocalSocket::process});
  }
  for (const auto& p : places) {
    QOCNET_TRY(prepare_socket(p.path));
    QOCNET_TRY(make_way(p.starting));
  }

  ::grpc::EnableDefaultHealthCheckService(true);
  ::grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ::grpc::ServerBuilder builder;
  if (!o.peer_credentials)
    builder.AddListeningPort("unix:" + places.front().starting, ::grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!o.tcp.empty()) {
    ::grpc::SslServerCredentialsOptions ssl(o.tls_ca.empty()       ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : o.verify_in_service ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                                                  : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = o.tls_ca.empty() ? "" : read_file(o.tls_ca);
    ssl.pem_key_cert_pairs.push_back({read_file(o.tls_key), read_file(o.tls_cert)});
    builder.AddListeningPort(o.tcp, ::grpc::SslServerCredentials(ssl), &tcp_port);
  }
  // No request needs more (the largest, a QoC table's YAML, is limited to 64 KiB).
  builder.SetMaxReceiveMessageSize(1 << 20);
  for (auto* s : services) builder.RegisterService(s);
  auto server = builder.BuildAndStart();
  if (!server || (!o.tcp.empty() && tcp_port == 0))
    return make_error(Errc::unavailable,
                      "cannot listen on " + o.listen + (o.tcp.empty() ? "" : " and " + o.tcp),
                      "check that the address is free and valid, and the TLS files are PEM");
  server->GetHealthCheckService()->SetServingStatus(false);
  if (o.peer_credentials)
    for (auto& p : places) {
      auto fd = listen_unix(p.starting);
      if (!fd) {
        close_places(places);
        server->Shutdown();
        return std::move(fd).error();
      }
      p.fd = *fd;
    }
  for (std::size_t k = 0; k < places.size(); ++k) {
    auto& p = places[k];
    ::chmod(p.starting.c_str(), p.mode);
    // RENAME_NOREPLACE: whatever appeared at the path meanwhile stays.
    if (::renameat2(AT_FDCWD, p.starting.c_str(), AT_FDCWD, p.path.c_str(), RENAME_NOREPLACE) != 0) {
      const int err = errno;
      for (std::size_t m = 0; m < k; ++m) ::unlink(places[m].path.c_str());
      ::unlink(p.starting.c_str());
      close_places(places);
      server->Shutdown();
      return make_error(Errc::already_exists, "cannot move the socket into place at " + p.path.string() + ": " +
                                                  std::strerror(err),
                        "something appeared at that path while qocnet started; remove it or choose another", err);
    }
  }
  for (auto& p : places) {
    struct stat st {};
    if (::lstat(p.path.c_str(), &st) == 0) {
      std::lock_guard lock(bound_mu);
      bound[p.path.string()] = {st.st_dev, st.st_ino};
    }
    if (p.fd >= 0) {
      std::lock_guard lock(acceptors_mu);
      acceptors[p.address] = std::make_unique<LocalAcceptor>(p.fd, server.get(), p.role);
      p.fd = -1;
    }
  }
  return server;
}

std::optional<PeerCredentials> local_peer(const std::string& peer) {
  // gRPC names a connection it was handed by its fd: "fd:12".
  if (peer.rfind("fd:", 0) != 0 || peer.size() > 16) return std::nullopt;
  int fd = 0;
  for (std::size_t i = 3; i < peer.size(); ++i) {
    if (peer[i] < '0' || peer[i] > '9') return std::nullopt;
    fd = fd * 10 + (peer[i] - '0');
  }
  std::lock_guard lock(peers_mu);
  auto it = peers.find(fd);
  if (it == peers.end()) return std::nullopt;
  return it->second;
}

namespace {

void stop_accepting_at(const std::string& address) {
  std::unique_ptr<LocalAcceptor> a;
  {
    std::lock_guard lock(acceptors_mu);
    auto it = acceptors.find(address);
    if (it == acceptors.end()) return;
    a = std::move(it->second);
    acceptors.erase(it);
  }
  a->stop();
}

void remove_socket_at(const std::string& address) {
  stop_accepting_at(address);
  if (address.rfind("unix:", 0) != 0) return;
  const std::string path = address.substr(5);
  std::lock_guard lock(bound_mu);
  auto it = bound.find(path);
  if (it == bound.end()) return;
  // Only the socket this process bound; a file put there since stays.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == it->second.first &&
      st.st_ino == it->second.second)
    ::unlink(path.c_str());
  bound.erase(it);
}

}  // namespace

void stop_accepting(const ListenOptions& o) {
  stop_accepting_at(o.listen);
  if (!o.process_listen.empty()) stop_accepting_at(o.process_listen);
}

void remove_socket(const ListenOptions& o) {
  remove_socket_at(o.listen);
  if (!o.process_listen.empty()) remove_socket_at(o.process_listen);
}

NamespaceFd::~NamespaceFd() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace qocnet::grpc_api
