#include "server.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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

Status prepare_socket(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return make_error(Errc::failed_precondition, "cannot create " + path.parent_path().string() + ": " + ec.message(),
                      "run as root or choose another --listen path");
  if (!fs::exists(path)) return {};
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  if (live)
    return make_error(Errc::already_exists, "another server listens on " + path.string(),
                      "stop it, or give this one another --listen path");
  fs::remove(path, ec);
  return {};
}

}  // namespace

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_signal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

Result<std::unique_ptr<::grpc::Server>> start_server(const ListenOptions& o,
                                                     const std::vector<::grpc::Service*>& services) {
  if (o.listen.rfind("unix:", 0) != 0 || o.listen.size() <= 5)
    return make_error(Errc::invalid_argument, "listen '" + o.listen + "' is not a unix: address",
                      "give the local socket as unix:/PATH");
  const fs::path path = o.listen.substr(5);
  QOCNET_TRY(prepare_socket(path));
  const std::string starting = path.string() + ".starting";
  std::error_code ec;
  fs::remove(starting, ec);

  ::grpc::EnableDefaultHealthCheckService(true);
  ::grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + starting, ::grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!o.tcp.empty()) {
    ::grpc::SslServerCredentialsOptions ssl(o.tls_ca.empty()
                                                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = o.tls_ca.empty() ? "" : read_file(o.tls_ca);
    ssl.pem_key_cert_pairs.push_back({read_file(o.tls_key), read_file(o.tls_cert)});
    builder.AddListeningPort(o.tcp, ::grpc::SslServerCredentials(ssl), &tcp_port);
  }
  for (auto* s : services) builder.RegisterService(s);
  auto server = builder.BuildAndStart();
  if (!server || (!o.tcp.empty() && tcp_port == 0))
    return make_error(Errc::unavailable,
                      "cannot listen on " + o.listen + (o.tcp.empty() ? "" : " and " + o.tcp),
                      "check that the address is free and valid, and the TLS files are PEM");
  server->GetHealthCheckService()->SetServingStatus(false);
  ::chmod(starting.c_str(), 0660);
  if (std::rename(starting.c_str(), path.c_str()) != 0)
    return make_error(Errc::internal, "cannot rename " + starting + " to " + path.string(), "", errno);
  return server;
}

void remove_socket(const ListenOptions& o) {
  std::error_code ec;
  if (o.listen.rfind("unix:", 0) == 0) fs::remove(o.listen.substr(5), ec);
}

}  // namespace qocnet::grpc_api
