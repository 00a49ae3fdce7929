// SPDX-License-Identifier: Apache-2.0
#include "sensor_pusher.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace qocnet::grpc_api {

namespace {

std::string read_pem(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<::grpc::ChannelCredentials> credentials(const std::string& address, const SensorTls& tls) {
  if (address.rfind("unix:", 0) == 0 || tls.ca.empty()) return ::grpc::InsecureChannelCredentials();
  ::grpc::SslCredentialsOptions o;
  o.pem_root_certs = read_pem(tls.ca);
  if (!tls.cert.empty()) {
    o.pem_cert_chain = read_pem(tls.cert);
    o.pem_private_key = read_pem(tls.key);
  }
  return ::grpc::SslCredentials(o);
}

}  // namespace

control::SensorLinkFactory SensorPusher::factory(SensorTls tls, std::chrono::milliseconds timeout) {
  return [tls = std::move(tls), timeout](const control::SensorConfig& sensor, control::SensorEvents events) {
    return std::unique_ptr<control::SensorLink>(new SensorPusher(sensor, tls, timeout, std::move(events)));
  };
}

SensorPusher::SensorPusher(const control::SensorConfig& sensor, const SensorTls& tls, std::chrono::milliseconds timeout,
                           control::SensorEvents events)
    : name_(sensor.name), address_(sensor.address), timeout_(timeout), events_(std::move(events)) {
  ::grpc::ChannelArguments args;
  // Reconnect soon after a sensor comes back (gRPC's default waits up to 2 min).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  channel_ = ::grpc::CreateCustomChannel(address_, credentials(address_, tls), args);
  stub_ = v1::SensorService::NewStub(channel_);
  thread_ = std::thread([this] { loop(); });
}

SensorPusher::~SensorPusher() { stop(); }

void SensorPusher::push(SensorPush p) {
  std::lock_guard lock(mu_);
  if (stopping_ || retiring_) return;
  const auto key = stream_key(p.stream);
  if (!key) return;  // checked where it entered; cannot happen
  queue_[*key] = std::move(p);
  cv_.notify_all();
}

void SensorPusher::retire() {
  std::lock_guard lock(mu_);
  retiring_ = true;
  cv_.notify_all();
}

void SensorPusher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (call_) call_->TryCancel();
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::size_t SensorPusher::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size() + (in_flight_ ? 1 : 0);
}

::grpc::Status SensorPusher::send(const SensorPush& p) {
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {::grpc::StatusCode::CANCELLED, "qocnetd is stopping"};
    call_ = &ctx;
  }
  v1::SetStreamPolicyRequest req;
  to_proto(p.stream, req.mutable_stream());
  to_proto(p.policy, req.mutable_policy());
  req.set_generation(p.generation);
  req.set_epoch(events_.epoch ? events_.epoch() : 0);
  v1::SetStreamPolicyResponse resp;
  auto st = stub_->SetStreamPolicy(&ctx, req, &resp);
  std::lock_guard lock(mu_);
  call_ = nullptr;
  return st;
}

void SensorPusher::loop() {
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    SensorPush p;
    bool retiring = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || retiring_ || !queue_.empty(); });
      if (stopping_ || queue_.empty()) return;  // retired with nothing left
      retiring = retiring_;
      // The oldest change first: a stream's pushes keep their order.
      auto it = std::min_element(queue_.begin(), queue_.end(), [](const auto& a, const auto& b) {
        return a.second.generation < b.second.generation;
      });
      p = it->second;
      queue_.erase(it);
      in_flight_ = true;
    }
    ::grpc::Status st = send(p);
    const bool stale = st.error_code() == ::grpc::StatusCode::FAILED_PRECONDITION &&
                       st.error_message().find("older than the last applied") != std::string::npos;
    Status outcome;
    if (!st.ok())
      outcome = make_error(Errc::unavailable,
                           "SetStreamPolicy to sensor '" + name_ + "' at " + address_ + ": " + st.error_message(),
                           "check that qocnet-sensor runs, listens on " + address_ + " and takes this edge");
    if (!retiring && events_.result) events_.result(p, outcome);
    if (stale && !retiring && events_.stale) events_.stale();
    std::unique_lock lock(mu_);
    in_flight_ = false;
    if (stopping_) return;
    if (st.ok() || retiring) {
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    // Failed: back in the queue unless a newer policy for the stream came meanwhile.
    if (auto key = stream_key(p.stream); key && !queue_.count(*key)) queue_[*key] = p;
    if (stale) continue;  // at once, in the new epoch
    cv_.wait_for(lock, backoff, [&] { return stopping_ || retiring_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace qocnet::grpc_api
