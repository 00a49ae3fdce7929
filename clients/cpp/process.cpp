// SPDX-License-Identifier: Apache-2.0
#include "qocnet_client/process.hpp"

#include <grpcpp/grpcpp.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "qocnet/v1/qoc.grpc.pb.h"
#include "qocnet_client/proto_text.hpp"

namespace qocnet::client {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using std::chrono::milliseconds;

const char* to_string(SessionEvent::Kind kind) noexcept {
  switch (kind) {
    case SessionEvent::Kind::registered: return "registered";
    case SessionEvent::Kind::reregistered: return "registered again";
    case SessionEvent::Kind::resumed: return "resumed";
    case SessionEvent::Kind::disconnected: return "disconnected";
    case SessionEvent::Kind::report_failed: return "report failed";
  }
  return "?";
}

namespace {

Error bad_option(const std::string& what, const std::string& fix) {
  return make_error(Errc::invalid_argument, what, fix);
}

Errc errc_of(::grpc::StatusCode code) noexcept {
  switch (code) {
    case ::grpc::StatusCode::INVALID_ARGUMENT:
    case ::grpc::StatusCode::OUT_OF_RANGE: return Errc::invalid_argument;
    case ::grpc::StatusCode::NOT_FOUND: return Errc::not_found;
    case ::grpc::StatusCode::ALREADY_EXISTS: return Errc::already_exists;
    case ::grpc::StatusCode::PERMISSION_DENIED:
    case ::grpc::StatusCode::UNAUTHENTICATED: return Errc::permission_denied;
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED: return Errc::resource_exhausted;
    case ::grpc::StatusCode::FAILED_PRECONDITION: return Errc::failed_precondition;
    case ::grpc::StatusCode::UNAVAILABLE:
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return Errc::unavailable;
    default: return Errc::internal;
  }
}

PolicyEvent to_event(const v1::PolicyUpdate& u) {
  PolicyEvent e;
  const auto& p = u.policy();
  e.stream = to_string(p.stream());
  e.policy = p.policy();
  e.policy_text = to_string(p.policy());
  e.required = p.required();
  e.target = p.target();
  if (p.has_measured()) e.measured = p.measured();
  e.reason = u.reason();
  e.generation = u.generation();
  return e;
}

}  // namespace

Result<std::uint16_t> receive_port(const ProcessOptions& o) {
  if (o.udp_port != 0) return o.udp_port;
  std::optional<std::uint32_t> port;
  for (const auto& s : o.streams) {
    QOCNET_ASSIGN(id, parse_stream(s));
    if (port && *port != id.destination_port())
      return bad_option("process '" + o.name + "': its streams have different destination ports (" +
                            std::to_string(*port) + " and " + std::to_string(id.destination_port()) +
                            ") and no udp_port is given",
                        "give the UDP port to receive every stream's copies on (udp_port, --port)");
    port = id.destination_port();
  }
  if (!port) return bad_option("process '" + o.name + "': no stream", "give at least one stream (--stream)");
  return static_cast<std::uint16_t>(*port);
}

Status check_options(const ProcessOptions& o) {
  if (o.name.empty()) return bad_option("the process's name is empty", "give a name (--name), e.g. detector");
  if (o.name.size() > 31)
    return bad_option("process name '" + o.name + "' is " + std::to_string(o.name.size()) + " characters long",
                      "use at most 31 characters");
  for (char c : o.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return bad_option("process name '" + o.name + "' contains '" + std::string(1, c) + "'",
                        "use only letters, digits, '_', '.' and '-'");
  if (o.streams.empty())
    return bad_option("process '" + o.name + "': no stream",
                      "give at least one stream it consumes (--stream 10.0.0.1:40000->:5000)");
  for (const auto& s : o.streams) {
    auto id = parse_stream(s);
    if (!id) return std::move(id).error().context("process '" + o.name + "'");
  }
  if (!std::isfinite(o.required) || o.required < 0)
    return bad_option("process '" + o.name + "': required QoC " + std::to_string(o.required) + " is below 0",
                      "give the QoC the process needs (0: none, keep everything)");
  QOCNET_TRY(receive_port(o));
  if (o.report_interval < milliseconds(10))
    return bad_option("process '" + o.name + "': report interval " + std::to_string(o.report_interval.count()) +
                          " ms is under 10 ms",
                      "report once every 100 ms or more; qocnetd rate-limits each process's calls");
  if (o.call_timeout <= milliseconds(0) || o.retry_min <= milliseconds(0) || o.retry_max < o.retry_min)
    return bad_option("process '" + o.name + "': call timeout and retry back-off must be positive, "
                                              "retry_max at least retry_min",
                      "e.g. call_timeout 5 s, retry_min 200 ms, retry_max 5 s");
  if (o.receive_buffer < 0)
    return bad_option("process '" + o.name + "': receive buffer " + std::to_string(o.receive_buffer) + " is negative",
                      "give SO_RCVBUF in bytes (0: the system's default)");
  boost::system::error_code ec;
  asio::ip::make_address(o.bind_address, ec);
  if (ec)
    return bad_option("process '" + o.name + "': bind address '" + o.bind_address + "' is not an IP address",
                      "give the local address to receive on, e.g. 0.0.0.0");
  QOCNET_TRY(parse_address(o.address));
  return {};
}

Result<v1::RegisterProcessRequest> register_request(const ProcessOptions& o) {
  QOCNET_TRY(check_options(o));
  v1::RegisterProcessRequest r;
  r.set_name(o.name);
  for (const auto& s : o.streams) *r.add_streams() = parse_stream(s).value();
  r.set_required(o.required);
  r.set_udp_port(o.udp_port);
  r.set_interface(o.interface);
  return r;
}

struct Process::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, ProcessOptions options)
      : io(context), o(std::move(options)), socket(context), timer(context) {}

  asio::io_context& io;
  ProcessOptions o;
  Address address;
  std::shared_ptr<::grpc::Channel> channel;
  std::unique_ptr<v1::QocService::Stub> stub;
  std::vector<v1::StreamId> streams;
  std::vector<std::string> stream_texts;

  // io_context side.
  udp::socket socket;
  asio::steady_timer timer;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(65536);
  udp::endpoint sender;
  DatagramFn datagram_fn;
  MeasureFn measure_fn;
  PolicyFn policy_fn;
  SessionFn session_fn;
  ReportFn report_fn;

  // Shared with the session thread and gRPC's callbacks.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::string token;
  bool registered = false;
  bool started = false;
  bool stopping = false;
  double required = 0;
  v1::ProcessSpec spec;
  ::grpc::ClientContext* watch_ctx = nullptr;
  std::set<::grpc::ClientContext*> calls;  // reports in flight
  std::thread session;
  std::atomic<std::uint64_t> registrations{0}, datagram_count{0};

  // --- gRPC ----------------------------------------------------------------
  ::grpc::Status register_call(v1::RegisterProcessResponse* resp) {
    v1::RegisterProcessRequest req = register_request(o).value();
    {
      std::lock_guard lock(mu);
      req.set_required(required);
    }
    ::grpc::ClientContext ctx;
    set_timeout(ctx, o.call_timeout);
    return stub->RegisterProcess(&ctx, req, resp);
  }

  void took(const v1::RegisterProcessResponse& resp) {
    std::lock_guard lock(mu);
    token = resp.token();
    spec = resp.process();
    registered = true;
    ++registrations;
  }

  std::string what(const ::grpc::Status& st) const { return describe(st, address, channel.get()); }

  // --- callbacks, always on the io_context ----------------------------------
  void session_event(SessionEvent e) {
    asio::post(io, [self = shared_from_this(), e = std::move(e)] {
      if (self->session_fn) return self->session_fn(e);
      std::fprintf(stderr, "qocnet process %s: %s: %s\n", self->o.name.c_str(), to_string(e.kind), e.message.c_str());
    });
  }

  void receive() {
    socket.async_receive_from(asio::buffer(buf), sender, [self = shared_from_this()](boost::system::error_code ec,
                                                                                     std::size_t n) {
      if (ec == asio::error::operation_aborted || self->is_stopping()) return;
      if (!ec) {
        ++self->datagram_count;
        if (self->datagram_fn) self->datagram_fn(std::span<const std::uint8_t>(self->buf.data(), n), self->sender);
      }
      self->receive();
    });
  }

  void arm_timer() {
    timer.expires_at(timer.expiry() + o.report_interval);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->is_stopping()) return;
      if (self->measure_fn)
        for (std::size_t i = 0; i < self->streams.size(); ++i)
          if (auto m = self->measure_fn(self->stream_texts[i])) self->report(*m, &self->streams[i]);
      self->arm_timer();
    });
  }

  bool is_stopping() const {
    std::lock_guard lock(mu);
    return stopping;
  }

  struct Call {
    ::grpc::ClientContext ctx;
    v1::ReportMeasuredQocRequest req;
    v1::ReportMeasuredQocResponse resp;
  };

  void report(double measured, const v1::StreamId* stream) {
    auto call = std::make_shared<Call>();
    {
      std::lock_guard lock(mu);
      if (!registered || stopping) return;
      call->ctx.AddMetadata("authorization", "Bearer " + token);
      calls.insert(&call->ctx);
    }
    set_timeout(call->ctx, o.call_timeout);
    call->req.set_name(o.name);
    call->req.set_measured(measured);
    if (stream) *call->req.mutable_stream() = *stream;
    stub->async()->ReportMeasuredQoc(&call->ctx, &call->req, &call->resp,
                                     [self = shared_from_this(), call](::grpc::Status st) {
                                       {
                                         std::lock_guard lock(self->mu);
                                         self->calls.erase(&call->ctx);
                                       }
                                       self->cv.notify_all();
                                       asio::post(self->io, [self, call, st] { self->reported(*call, st); });
                                     });
  }

  void reported(const Call& call, const ::grpc::Status& st) {
    if (is_stopping()) return;
    if (!st.ok()) {
      session_event({SessionEvent::Kind::report_failed,
                     "measured QoC " + std::to_string(call.req.measured()) + " not reported: " + what(st)});
      return;
    }
    if (!report_fn) return;
    ReportEvent e;
    e.stream = to_string(call.resp.policy().stream());
    e.measured = call.req.measured();
    e.action = call.resp.action();
    e.policy_text = to_string(call.resp.policy().policy());
    report_fn(e);
  }

  void requirement(double r) {
    auto ctx = std::make_shared<::grpc::ClientContext>();
    auto req = std::make_shared<v1::ReportRequirementRequest>();
    auto resp = std::make_shared<v1::ReportRequirementResponse>();
    {
      std::lock_guard lock(mu);
      required = r;
      if (!registered || stopping) return;  // the next registration carries it
      ctx->AddMetadata("authorization", "Bearer " + token);
      calls.insert(ctx.get());
    }
    set_timeout(*ctx, o.call_timeout);
    req->set_name(o.name);
    req->set_required(r);
    stub->async()->ReportRequirement(ctx.get(), req.get(), resp.get(),
                                     [self = shared_from_this(), ctx, req, resp](::grpc::Status st) {
                                       {
                                         std::lock_guard lock(self->mu);
                                         self->calls.erase(ctx.get());
                                       }
                                       self->cv.notify_all();
                                       if (!st.ok() && !self->is_stopping())
                                         self->session_event({SessionEvent::Kind::report_failed,
                                                              "requirement " + std::to_string(req->required()) +
                                                                  " not reported: " + self->what(st)});
                                     });
  }

  // --- the session thread: the policy stream, re-registration ---------------
  // Waits `d` or until stopped; false when stopped.
  bool wait(milliseconds d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [&] { return stopping; });
  }

  void session_loop() {
    milliseconds backoff = o.retry_min;
    bool need_register = false, lost = false;
    auto next_backoff = [&] { backoff = std::min(backoff * 2, o.retry_max); };
    for (;;) {
      if (is_stopping()) return;
      if (need_register) {
        v1::RegisterProcessResponse resp;
        const ::grpc::Status st = register_call(&resp);
        if (is_stopping()) return;
        if (!st.ok()) {
          session_event({SessionEvent::Kind::disconnected, "registering again failed: " + what(st), backoff});
          if (!wait(backoff)) return;
          next_backoff();
          continue;
        }
        took(resp);
        need_register = false;
        lost = false;
        session_event({SessionEvent::Kind::reregistered,
                       "registered again with qocnetd at " + address.target + " (registration " +
                           std::to_string(registrations.load()) + ")"});
      }
      ::grpc::ClientContext ctx;
      {
        std::lock_guard lock(mu);
        if (stopping) return;
        ctx.AddMetadata("authorization", "Bearer " + token);
        watch_ctx = &ctx;
      }
      v1::WatchPolicyRequest req;
      req.set_name(o.name);
      auto reader = stub->WatchPolicy(&ctx, req);
      v1::PolicyUpdate u;
      while (reader->Read(&u)) {
        backoff = o.retry_min;
        if (lost) {
          lost = false;
          session_event({SessionEvent::Kind::resumed, "qocnetd at " + address.target + " kept the registration"});
        }
        asio::post(io, [self = shared_from_this(), e = to_event(u)] {
          if (!self->is_stopping() && self->policy_fn) self->policy_fn(e);
        });
      }
      const ::grpc::Status st = reader->Finish();
      {
        std::lock_guard lock(mu);
        watch_ctx = nullptr;
        if (stopping) return;
      }
      lost = true;
      if (st.error_code() == ::grpc::StatusCode::PERMISSION_DENIED ||
          st.error_code() == ::grpc::StatusCode::NOT_FOUND) {
        // qocnetd no longer knows the process (restarted without its state).
        {
          std::lock_guard lock(mu);
          registered = false;
        }
        need_register = true;
        session_event({SessionEvent::Kind::disconnected,
                       "qocnetd lost the registration (" + what(st) + "); registering again", milliseconds(0)});
        continue;
      }
      session_event({SessionEvent::Kind::disconnected, "policy stream ended: " + what(st), backoff});
      if (!wait(backoff)) return;
      next_backoff();
    }
  }

  // --- lifecycle -------------------------------------------------------------
  Status start() {
    {
      std::lock_guard lock(mu);
      if (started) return make_error(Errc::failed_precondition, "process '" + o.name + "' was started already",
                                     "call start() once; make a new Process after stop()");
      started = true;
    }
    if (address.kind == Address::Kind::unix_socket) {
      const std::string path = address.target.substr(5);
      std::error_code ec;
      if (!std::filesystem::exists(path, ec))
        return make_error(Errc::unavailable,
                          "process '" + o.name + "': qocnetd's socket " + path + " does not exist",
                          "qocnetd must be running and serving its process socket there (qocnetd "
                          "--process-listen unix:" + path + "); or give the address it serves (--address)");
    }
    v1::RegisterProcessResponse resp;
    const ::grpc::Status st = register_call(&resp);
    if (!st.ok())
      return make_error(errc_of(st.error_code()), "process '" + o.name + "': RegisterProcess: " + what(st));
    took(resp);
    session_event({SessionEvent::Kind::registered, "registered with qocnetd at " + address.target + ": copies to " +
                                                       resp.process().ip() + ":" +
                                                       std::to_string(resp.process().udp_port())});
    asio::dispatch(io, [self = shared_from_this()] {
      self->receive();
      self->timer.expires_after(std::chrono::steady_clock::duration::zero());
      self->arm_timer();
    });
    session = std::thread([self = shared_from_this()] { self->session_loop(); });
    return {};
  }

  void stop() {
    bool unregister = false;
    std::string held_token;
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      stopping = true;
      if (watch_ctx) watch_ctx->TryCancel();
      for (auto* c : calls) c->TryCancel();
      unregister = registered && o.unregister_on_stop;
      held_token = token;
    }
    cv.notify_all();
    if (session.joinable()) {
      if (session.get_id() == std::this_thread::get_id()) session.detach();
      else session.join();
    }
    {
      std::unique_lock lock(mu);
      cv.wait_for(lock, o.call_timeout, [&] { return calls.empty(); });
    }
    if (unregister) {
      ::grpc::ClientContext ctx;
      set_timeout(ctx, std::min(o.call_timeout, milliseconds(2000)));
      ctx.AddMetadata("authorization", "Bearer " + held_token);
      v1::UnregisterProcessRequest req;
      req.set_name(o.name);
      v1::UnregisterProcessResponse resp;
      (void)stub->UnregisterProcess(&ctx, req, &resp);  // best effort: qocnetd may be gone
      std::lock_guard lock(mu);
      registered = false;
    }
    asio::dispatch(io, [self = shared_from_this()] {
      boost::system::error_code ec;
      self->timer.cancel();
      self->socket.close(ec);
    });
  }
};

Result<std::unique_ptr<Process>> Process::create(asio::io_context& io, ProcessOptions options) {
  QOCNET_TRY(check_options(options));
  auto impl = std::make_shared<Impl>(io, std::move(options));
  auto& o = impl->o;
  impl->required = o.required;
  impl->address = parse_address(o.address).value();
  ::grpc::ChannelArguments args;
  // Reconnect soon after qocnetd restarts, not after gRPC's default of up to 2 minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(o.retry_min.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(o.retry_min.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(o.retry_max.count()));
  QOCNET_ASSIGN(channel, make_channel(impl->address, o.tls, args));
  impl->channel = channel;
  impl->stub = v1::QocService::NewStub(channel);
  for (const auto& s : o.streams) {
    impl->streams.push_back(parse_stream(s).value());
    impl->stream_texts.push_back(to_string(impl->streams.back()));
  }
  QOCNET_ASSIGN(port, receive_port(o));
  const udp::endpoint local(asio::ip::make_address(o.bind_address), port);
  boost::system::error_code ec;
  impl->socket.open(local.protocol(), ec);
  if (!ec && o.receive_buffer > 0) impl->socket.set_option(asio::socket_base::receive_buffer_size(o.receive_buffer), ec);
  if (!ec) impl->socket.bind(local, ec);
  if (ec)
    return make_error(ec == asio::error::address_in_use ? Errc::already_exists : Errc::unavailable,
                      "process '" + o.name + "': cannot receive on UDP " + o.bind_address + ":" +
                          std::to_string(port) + ": " + ec.message(),
                      ec == asio::error::address_in_use
                          ? "another socket has that port: stop it or receive on another port (udp_port, --port)"
                          : "give a local address of this host (bind_address) and a free port",
                      ec.value());
  return std::unique_ptr<Process>(new Process(std::move(impl)));
}

Process::Process(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Process::~Process() { stop(); }

void Process::on_datagram(DatagramFn fn) { impl_->datagram_fn = std::move(fn); }
void Process::on_measure(MeasureFn fn) { impl_->measure_fn = std::move(fn); }
void Process::on_policy(PolicyFn fn) { impl_->policy_fn = std::move(fn); }
void Process::on_session(SessionFn fn) { impl_->session_fn = std::move(fn); }
void Process::on_report(ReportFn fn) { impl_->report_fn = std::move(fn); }

Status Process::start() { return impl_->start(); }
void Process::stop() { impl_->stop(); }

void Process::set_required(double required) {
  asio::post(impl_->io, [self = impl_, required] { self->requirement(required); });
}

void Process::report_measured(double measured, const std::string& stream) {
  std::optional<v1::StreamId> id;
  if (!stream.empty()) {
    auto parsed = parse_stream(stream);
    if (!parsed) {
      impl_->session_event({SessionEvent::Kind::report_failed, parsed.error().to_string()});
      return;
    }
    id = *parsed;
  }
  asio::post(impl_->io, [self = impl_, measured, id] { self->report(measured, id ? &*id : nullptr); });
}

const ProcessOptions& Process::options() const { return impl_->o; }
v1::ProcessSpec Process::spec() const {
  std::lock_guard lock(impl_->mu);
  return impl_->spec;
}
asio::ip::udp::endpoint Process::local_endpoint() const {
  boost::system::error_code ec;
  return impl_->socket.local_endpoint(ec);
}
std::uint64_t Process::registrations() const { return impl_->registrations.load(); }
std::uint64_t Process::datagrams() const { return impl_->datagram_count.load(); }

}  // namespace qocnet::client
