// SPDX-License-Identifier: Apache-2.0
#include "health_http.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <thread>

namespace qocnet::qocnetd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<bool()>& serving)
      : stream_(std::move(socket)), serving_(serving) {}

  void run() {
    parser_.header_limit(8 * 1024);
    parser_.body_limit(0);
    stream_.expires_after(std::chrono::seconds(2));
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->answer(ec); });
  }

 private:
  void answer(beast::error_code ec) {
    if (ec) return;  // timed out, closed or malformed: nothing to say
    const auto& req = parser_.get();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->keep_alive(false);
    res->set(http::field::content_type, "text/plain");
    res->set(http::field::cache_control, "no-store");
    const auto target = req.target();
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->body() = "only GET and HEAD\n";
    } else if (target == "/healthz") {
      const bool ok = serving_();
      res->result(ok ? http::status::ok : http::status::service_unavailable);
      res->body() = ok ? "serving\n" : "not serving\n";
    } else if (target == "/livez") {
      res->result(http::status::ok);
      res->body() = "alive\n";
    } else {
      res->result(http::status::not_found);
      res->body() = "qocnetd answers /healthz and /livez\n";
    }
    if (req.method() == http::verb::head) res->body().clear();
    res->prepare_payload();
    stream_.expires_after(std::chrono::seconds(2));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  const std::function<bool()>& serving_;
};

}  // namespace

struct HealthEndpoint::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::function<bool()> serving;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), serving)->run();
      accept();
    });
  }
};

HealthEndpoint::HealthEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HealthEndpoint::~HealthEndpoint() {
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<HealthEndpoint>> HealthEndpoint::start(const std::string& host_port,
                                                              std::function<bool()> serving) {
  const auto colon = host_port.rfind(':');
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_argument, "health address '" + host_port.substr(0, 64) + "' " + why,
                      "write it as HOST:PORT, e.g. 127.0.0.1:8081 or [::1]:8081");
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) return bad("is not HOST:PORT");
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = host_port.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5 ||
      std::stoul(port_text) > 65535)
    return bad("has no valid port");
  auto impl = std::make_unique<Impl>();
  impl->serving = std::move(serving);
  beast::error_code ec;
  tcp::resolver resolver(impl->io);
  auto endpoints = resolver.resolve(host, port_text, tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) return bad("does not resolve (" + ec.message() + ")");
  const tcp::endpoint at = *endpoints.begin();
  impl->acceptor.open(at.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(at, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(Errc::unavailable, "cannot listen on " + host_port + " for health probes: " + ec.message(),
                      "choose a free address for --health", ec.value());
  impl->accept();
  auto* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HealthEndpoint>(new HealthEndpoint(std::move(impl)));
}

}  // namespace qocnet::qocnetd
