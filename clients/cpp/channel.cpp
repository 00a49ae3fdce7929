// SPDX-License-Identifier: Apache-2.0
#include "qocnet_client/channel.hpp"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

namespace qocnet::client {

namespace {

const char* kForms =
    "write unix:/PATH (or /PATH) for a Unix socket, tcp:HOST:PORT or HOST:PORT for TCP "
    "(IPv6 as [ADDR]:PORT)";

Error bad_address(const std::string& text, const std::string& why) {
  return make_error(Errc::invalid_argument, "address '" + text + "': " + why, kForms);
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

Result<Address> parse_host_port(const std::string& text, const std::string& hostport) {
  std::string host, port;
  if (starts_with(hostport, "[")) {
    const auto close = hostport.find(']');
    if (close == std::string::npos) return bad_address(text, "no ']' after the IPv6 address");
    host = hostport.substr(1, close - 1);
    if (close + 1 >= hostport.size() || hostport[close + 1] != ':')
      return bad_address(text, "no ':PORT' after [" + host + "]");
    port = hostport.substr(close + 2);
    if (host.empty()) return bad_address(text, "the IPv6 address in [] is empty");
  } else {
    const auto colon = hostport.rfind(':');
    if (colon == std::string::npos) return bad_address(text, "no ':PORT'");
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      return bad_address(text, "an IPv6 address needs brackets: [" + host + "]:" + port);
    if (host.empty()) return bad_address(text, "no host before ':" + port + "'");
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return bad_address(text, "port '" + port + "' is not a number");
  const unsigned long n = std::stoul(port);
  if (n == 0 || n > 65535) return bad_address(text, "port " + port + " is not in 1..65535");
  const bool v6 = starts_with(hostport, "[");
  return Address{Address::Kind::tcp, (v6 ? "[" + host + "]" : host) + ":" + port, text};
}

Result<std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(Errc::not_found, std::string(what) + " '" + path + "' cannot be read",
                      "give the path of a PEM file this user can read");
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().empty())
    return make_error(Errc::invalid_argument, std::string(what) + " '" + path + "' is empty",
                      "give the path of a PEM file");
  return s.str();
}

}  // namespace

Result<Address> parse_address(const std::string& text) {
  if (text.empty()) return bad_address(text, "empty");
  if (starts_with(text, "unix:")) {
    std::string path = text.substr(5);
    if (starts_with(path, "//")) path = path.substr(2);  // unix:///run/... (URI form)
    if (path.empty()) return bad_address(text, "no socket path after 'unix:'");
    return Address{Address::Kind::unix_socket, "unix:" + path, text};
  }
  if (starts_with(text, "/") || starts_with(text, "./") || starts_with(text, "../"))
    return Address{Address::Kind::unix_socket, "unix:" + text, text};
  if (starts_with(text, "tcp://")) return parse_host_port(text, text.substr(6));
  if (starts_with(text, "tcp:")) return parse_host_port(text, text.substr(4));
  if (const auto scheme = text.find("://"); scheme != std::string::npos)
    return bad_address(text, "unknown scheme '" + text.substr(0, scheme) + "'");
  return parse_host_port(text, text);
}

Result<std::shared_ptr<::grpc::Channel>> make_channel(const Address& address, const TlsFiles& tls) {
  return make_channel(address, tls, ::grpc::ChannelArguments());
}

Result<std::shared_ptr<::grpc::Channel>> make_channel(const Address& address, const TlsFiles& tls,
                                                      ::grpc::ChannelArguments args) {
  if (address.kind == Address::Kind::unix_socket) {
    if (!tls.empty() || !tls.server_name.empty())
      return make_error(Errc::invalid_argument,
                        "TLS files were given for the Unix socket " + address.text,
                        "TLS is for TCP addresses (tcp:HOST:PORT); a Unix socket is guarded by "
                        "its file permissions");
    return ::grpc::CreateCustomChannel(address.target, ::grpc::InsecureChannelCredentials(), args);
  }
  if (tls.empty()) {
    if (!tls.server_name.empty())
      return make_error(Errc::invalid_argument, "--tls-server-name without TLS files",
                        "give --tls-ca (and --tls-cert/--tls-key for mutual TLS)");
    return ::grpc::CreateCustomChannel(address.target, ::grpc::InsecureChannelCredentials(), args);
  }
  if (tls.cert.empty() != tls.key.empty())
    return make_error(Errc::invalid_argument,
                      tls.cert.empty() ? "--tls-key without --tls-cert" : "--tls-cert without --tls-key",
                      "give both the client certificate and its private key, or neither");
  ::grpc::SslCredentialsOptions ssl;
  if (!tls.ca.empty()) {
    QOCNET_ASSIGN(ca, read_file(tls.ca, "TLS CA file"));
    ssl.pem_root_certs = std::move(ca);
  }
  if (!tls.cert.empty()) {
    QOCNET_ASSIGN(cert, read_file(tls.cert, "TLS certificate"));
    QOCNET_ASSIGN(key, read_file(tls.key, "TLS key"));
    ssl.pem_cert_chain = std::move(cert);
    ssl.pem_private_key = std::move(key);
  }
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return ::grpc::CreateCustomChannel(address.target, ::grpc::SslCredentials(ssl), args);
}

void set_timeout(::grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

const char* status_code_name(::grpc::StatusCode code) noexcept {
  switch (code) {
    case ::grpc::StatusCode::OK: return "OK";
    case ::grpc::StatusCode::CANCELLED: return "CANCELLED";
    case ::grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case ::grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case ::grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case ::grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case ::grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case ::grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case ::grpc::StatusCode::ABORTED: return "ABORTED";
    case ::grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case ::grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case ::grpc::StatusCode::INTERNAL: return "INTERNAL";
    case ::grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case ::grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case ::grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

int exit_code(::grpc::StatusCode code) noexcept {
  switch (code) {
    case ::grpc::StatusCode::OK: return 0;
    case ::grpc::StatusCode::INVALID_ARGUMENT:
    case ::grpc::StatusCode::NOT_FOUND:
    case ::grpc::StatusCode::ALREADY_EXISTS: return 2;
    default: return 1;
  }
}

int exit_code(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument:
    case Errc::not_found:
    case Errc::already_exists: return 2;
    default: return 1;
  }
}

bool is_connection_failure(const ::grpc::Status& status, ::grpc::Channel* channel) {
  // qocnetd answers UNAVAILABLE itself when a kernel facility is missing; then
  // the channel is connected.
  const auto code = status.error_code();
  if (code != ::grpc::StatusCode::UNAVAILABLE && code != ::grpc::StatusCode::DEADLINE_EXCEEDED)
    return false;
  if (channel == nullptr) return code == ::grpc::StatusCode::UNAVAILABLE;
  return channel->GetState(false) != GRPC_CHANNEL_READY;
}

std::string describe(const ::grpc::Status& status, const Address& address, ::grpc::Channel* channel) {
  std::string line = std::string(status_code_name(status.error_code())) + ": " + status.error_message();
  if (!is_connection_failure(status, channel)) return line;
  return "cannot reach qocnetd at " + address.target + " (" + line +
         "): qocnetd must be running and serving that address (choose another with --address)";
}

int health_status(const std::shared_ptr<::grpc::Channel>& channel, std::chrono::milliseconds timeout) {
  ::grpc::GenericStub stub(channel);
  ::grpc::ClientContext ctx;
  set_timeout(ctx, timeout);
  ::grpc::Slice empty("");  // HealthCheckRequest{service: ""} encodes to no bytes
  ::grpc::ByteBuffer req(&empty, 1), resp;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  ::grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", ::grpc::StubOptions(), &req, &resp,
                 [&](::grpc::Status s) {
                   std::lock_guard lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!status.ok()) return -1;
  std::vector<::grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string bytes;
  for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  // HealthCheckResponse{status}: field 1, varint.
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

}  // namespace qocnet::client
