#include "services.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <thread>

#include "convert.hpp"
#include "server.hpp"

namespace qocnet::grpc_api {

bool RateLimiter::allow(const std::string& client, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (++calls_ % 1024 == 0) forget_idle(now);
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) forget_idle(now);
    if (buckets_.size() >= max_clients_) {
      auto lru = std::min_element(buckets_.begin(), buckets_.end(),
                                  [](const auto& a, const auto& b) { return a.second.at < b.second.at; });
      buckets_.erase(lru);
    }
    it = buckets_.emplace(client, Bucket{burst_, now}).first;
  } else {
    Bucket& b = it->second;
    const double idle = std::chrono::duration<double>(now - b.at).count();
    if (idle > 0) {
      b.tokens = std::min(burst_, b.tokens + rate_ * idle);
      b.at = now;
    }
  }
  Bucket& b = it->second;
  b.at = std::max(b.at, now);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void RateLimiter::forget_idle(Clock::time_point now) {
  // Idle for burst / rate seconds: full again, the same as a fresh bucket.
  const double full_after = burst_ / rate_;
  std::erase_if(buckets_, [&](const auto& e) {
    return std::chrono::duration<double>(now - e.second.at).count() >= full_after;
  });
}

std::size_t RateLimiter::clients() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

std::string peer_identity(const ::grpc::CallbackServerContext* ctx) {
  if (auto auth = ctx->auth_context(); auth && auth->IsPeerAuthenticated()) {
    std::string id;
    for (const auto& v : auth->GetPeerIdentity()) id += std::string(v.data(), v.size()).substr(0, 128) + ",";
    if (!id.empty()) return "certificate " + id.substr(0, id.size() - 1);
  }
  std::string peer = ctx->peer();
  if (peer.rfind("unix:", 0) == 0) return "local";
  if (peer.rfind("ipv4:", 0) == 0 || peer.rfind("ipv6:", 0) == 0)
    if (auto colon = peer.rfind(':'); colon > 5) peer = peer.substr(0, colon);  // the port varies
  return "peer " + peer.substr(0, 128);
}

::grpc::Status operator_allowed(const ::grpc::CallbackServerContext* ctx, const TenancyConfig& tenancy) {
  if (caller_role(ctx, tenancy) == Role::operator_role) return ::grpc::Status::OK;
  if (auto local = local_peer(ctx->peer()); local && local->socket == LocalSocket::process)
    return {::grpc::StatusCode::PERMISSION_DENIED,
            "operator calls are not served on the process socket; fix: call over qocnetd's operator socket "
            "(--listen, default unix:/run/qocnet/qocnet.sock, root only)"};
  return {::grpc::StatusCode::PERMISSION_DENIED,
          "operator calls (ControlService) from " + ctx->peer().substr(0, 128) +
              " need the operator socket or a client certificate listed in qocnetd's operators; fix: call over "
              "unix:/run/qocnet/qocnet.sock, or present a certificate that --tls-ca verifies and `operators` lists"};
}

namespace {

const TenancyConfig kNoTenancy;

const TenancyConfig& tenancy_of(const AccessPolicy& access) { return access.tenancy ? *access.tenancy : kNoTenancy; }

// Over the limit: RESOURCE_EXHAUSTED naming who was charged.
::grpc::Status over_limit(const AccessPolicy& access, const std::string& who) {
  return {::grpc::StatusCode::RESOURCE_EXHAUSTED,
          "rate limit: more than " + std::to_string(access.limiter->rate()) + " calls per second from " + who +
              "; fix: call less often (policy changes arrive on WatchPolicy)"};
}

// Who is calling. Every call is charged to exactly one rate-limit bucket:
// the verified process for a process call whose token checked out, the
// caller's peer identity (peer_identity) for everything else -- so a forged
// call never uses up the budget of the process it names.
struct Caller {
  enum Kind { operator_call, anyone, process } kind = anyone;
  const std::string* name = nullptr;   // process calls
};

// A process call's name and token (call metadata), checked; the bucket to
// charge on success.
Status verify_process(const ::grpc::CallbackServerContext* ctx, const Controller& ctl, const Caller& caller) {
  if (caller.name->empty()) return bad_field("name", "is empty", "give the process's registered name");
  QOCNET_ASSIGN(token, call_token(ctx));
  return ctl.check_token(*caller.name, token);
}

// Who may call and how often, before the request reaches the controller.
::grpc::Status admit(::grpc::CallbackServerContext* ctx, const AccessPolicy& access, const Controller& ctl,
                     const google::protobuf::Message& request, const Caller& caller) {
  auto charge = [&](const std::string& who) { return !access.limiter || access.limiter->allow(who); };
  ::grpc::Status refused = to_status(check_request(request));
  if (refused.ok() && caller.kind == Caller::operator_call) refused = operator_allowed(ctx, tenancy_of(access));
  if (refused.ok() && caller.kind == Caller::process) {
    const Status verified = verify_process(ctx, ctl, caller);
    if (verified) {
      const std::string who = "process " + *caller.name;
      return charge(who) ? ::grpc::Status::OK : over_limit(access, who);
    }
    refused = to_status(verified);
  }
  // Not a verified process (or refused): the peer pays, whatever name the call gives.
  const std::string who = peer_identity(ctx);
  if (!charge(who)) return over_limit(access, who);
  return refused;
}

// The one shape of every unary handler: who may call, how often, then the body.
template <class F>
::grpc::ServerUnaryReactor* run(::grpc::CallbackServerContext* ctx, const AccessPolicy& access,
                                const Controller& ctl, const google::protobuf::Message& request,
                                const Caller& caller, F&& body) {
  auto* reactor = ctx->DefaultReactor();
  ::grpc::Status st = admit(ctx, access, ctl, request, caller);
  if (st.ok()) st = to_status(body());
  reactor->Finish(st);
  return reactor;
}

#define QOCNET_CONTROL(Name)                                                                      \
  ::grpc::ServerUnaryReactor* ControlServiceImpl::Name(::grpc::CallbackServerContext* ctx,        \
                                                       const v1::Name##Request* req,              \
                                                       v1::Name##Response* resp)
#define QOCNET_BODY(...) \
  return run(ctx, access_, ctl_, *req, Caller{Caller::operator_call}, [&]() -> Status __VA_ARGS__)

Error empty_field(const std::string& field, const std::string& fix) {
  return bad_field(field, "is empty", fix);
}

}  // namespace

QOCNET_CONTROL(AttachPort) {
  (void)resp;
  QOCNET_BODY({
    if (req->port().empty()) return empty_field("port", "name the interface to attach to");
    return ctl_.with_edge([&](Edge& e) { return e.attach_port(req->port()); });
  });
}

QOCNET_CONTROL(DetachPort) {
  (void)resp;
  QOCNET_BODY({
    if (req->port().empty()) return empty_field("port", "name the interface to detach from");
    return ctl_.with_edge([&](Edge& e) { return e.detach_port(req->port()); });
  });
}

QOCNET_CONTROL(SetPortPair) {
  (void)resp;
  QOCNET_BODY({
    QOCNET_ASSIGN(pair, from_proto(req->pair(), "pair"));
    return ctl_.with_edge([&](Edge& e) { return e.set_port_pair(pair.ingress, pair.egress); });
  });
}

QOCNET_CONTROL(RemovePortPair) {
  (void)resp;
  QOCNET_BODY({
    if (req->ingress().empty()) return empty_field("ingress", "name the pair's ingress interface");
    return ctl_.with_edge([&](Edge& e) { return e.remove_port_pair(req->ingress()); });
  });
}

QOCNET_CONTROL(ListPortPairs) {
  (void)req;
  QOCNET_BODY({
    return ctl_.with_edge([&](const Edge& e) -> Status {
      QOCNET_ASSIGN(pairs, e.port_pairs());
      for (const auto& p : pairs) to_proto(p, resp->add_pairs());
      return {};
    });
  });
}

QOCNET_CONTROL(GetPortCounters) {
  QOCNET_BODY({
    return ctl_.with_edge([&](const Edge& e) -> Status {
      std::vector<PortCounters> all;
      if (req->ports().empty()) {
        QOCNET_ASSIGN(v, e.all_port_counters());
        all = std::move(v);
      } else {
        for (int i = 0; i < req->ports_size(); ++i) {
          auto c = e.port_counters(req->ports(i));
          if (!c) return std::move(c).error().context("ports[" + std::to_string(i) + "]");
          all.push_back(*c);
        }
      }
      for (const auto& c : all) to_proto(c, resp->add_counters());
      return {};
    });
  });
}

QOCNET_CONTROL(AddProcess) {
  (void)resp;
  QOCNET_BODY({
    QOCNET_ASSIGN(spec, from_proto(req->process(), "process"));
    return ctl_.with_edge([&](Edge& e) { return e.add_process(spec); });
  });
}

QOCNET_CONTROL(RemoveProcess) {
  (void)resp;
  QOCNET_BODY({
    if (req->name().empty()) return empty_field("name", "name the process to remove");
    return ctl_.remove_process(req->name());
  });
}

QOCNET_CONTROL(ListProcesses) {
  (void)req;
  QOCNET_BODY({
    return ctl_.with_edge([&](const Edge& e) -> Status {
      for (const auto& p : e.processes()) to_proto(p, resp->add_processes());
      return {};
    });
  });
}

QOCNET_CONTROL(SetCloneTargets) {
  (void)resp;
  QOCNET_BODY({
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    std::vector<std::string> names(req->processes().begin(), req->processes().end());
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i].empty()) return empty_field("processes[" + std::to_string(i) + "]", "name a process");
    return ctl_.set_clone_targets(stream, names);
  });
}

QOCNET_CONTROL(SetPolicy) {
  (void)resp;
  QOCNET_BODY({
    if (req->process().empty()) return empty_field("process", "name the process");
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    QOCNET_ASSIGN(policy, from_proto(req->policy(), "policy"));
    return ctl_.set_policy(req->process(), stream, policy);
  });
}

QOCNET_CONTROL(GetTargetStats) {
  QOCNET_BODY({
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    return ctl_.with_edge([&](const Edge& e) -> Status {
      QOCNET_ASSIGN(stats, e.target_stats(stream));
      for (const auto& t : stats) to_proto(t, resp->add_targets());
      return {};
    });
  });
}

QOCNET_CONTROL(SetRequirement) {
  QOCNET_BODY({
    if (req->process().empty()) return empty_field("process", "name the process");
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    QOCNET_ASSIGN(sp, ctl_.set_requirement(req->process(), stream, req->required(), "operator"));
    *resp->mutable_policy() = std::move(sp);
    return {};
  });
}

QOCNET_CONTROL(GetEffectivePolicy) {
  QOCNET_BODY({
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    QOCNET_ASSIGN(stats, ctl_.stats());
    // The effective policy over what the processes want (not the edge's share).
    for (const auto& s : stats.streams()) {
      auto id = from_proto(s.stream().stream(), "stream");
      if (id && same_stream(*id, stream) && s.targets_size() > 0) {
        *resp->mutable_policy() = s.effective();
        return {};
      }
    }
    return ctl_.with_edge([&](const Edge& e) -> Status {
      QOCNET_ASSIGN(p, e.effective_policy(stream));  // names why there is none
      to_proto(p, resp->mutable_policy());
      return {};
    });
  });
}

QOCNET_CONTROL(GetStreamBandwidth) {
  QOCNET_BODY({
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    QOCNET_ASSIGN(stats, ctl_.stats());
    for (const auto& s : stats.streams()) {
      auto id = from_proto(s.stream().stream(), "stream");
      if (id && same_stream(*id, stream) && s.targets_size() > 0) {
        *resp->mutable_bandwidth() = s.bandwidth();
        resp->set_processes(static_cast<std::uint32_t>(s.targets_size()));
        return {};
      }
    }
    return ctl_.with_edge([&](const Edge& e) -> Status {
      QOCNET_ASSIGN(b, e.stream_bandwidth(stream));  // names why there is none
      to_proto(b, resp->mutable_bandwidth());
      if (auto targets = e.target_stats(stream); targets)
        resp->set_processes(static_cast<std::uint32_t>(targets->size()));
      return {};
    });
  });
}

QOCNET_CONTROL(GetQocTable) {
  (void)req;
  QOCNET_BODY({
    QOCNET_TRY(ctl_.ready());
    to_proto(ctl_.qoc_table(), resp->mutable_table());
    return {};
  });
}

QOCNET_CONTROL(SetQocTable) {
  (void)resp;
  QOCNET_BODY({
    const bool has_table = req->has_table();
    const bool has_yaml = !req->yaml().empty();
    if (has_table == has_yaml)
      return bad_field("table/yaml", has_table ? "are both set" : "are both empty",
                       "send either the table or its YAML text");
    if (has_yaml) {
      QOCNET_ASSIGN(t, QocTable::parse_yaml(req->yaml(), "yaml"));
      return ctl_.set_qoc_table(std::move(t));
    }
    QOCNET_ASSIGN(t, from_proto(req->table(), "table"));
    return ctl_.set_qoc_table(std::move(t));
  });
}

QOCNET_CONTROL(ListStreams) {
  (void)req;
  QOCNET_BODY({
    return ctl_.with_edge([&](const Edge& e) -> Status {
      QOCNET_ASSIGN(streams, e.streams());
      for (const auto& s : streams) to_proto(s, resp->add_streams());
      return {};
    });
  });
}

QOCNET_CONTROL(GetDpiCounters) {
  (void)req;
  QOCNET_BODY({
    return ctl_.with_edge([&](const Edge& e) -> Status {
      QOCNET_ASSIGN(c, e.dpi_counters());
      to_proto(c, resp->mutable_counters());
      return {};
    });
  });
}

QOCNET_CONTROL(ResetStreams) {
  (void)req;
  (void)resp;
  QOCNET_BODY({ return ctl_.with_edge([&](Edge& e) { return e.reset_streams(); }); });
}

QOCNET_CONTROL(AddSensor) {
  (void)resp;
  QOCNET_BODY({
    const auto& s = req->sensor();
    if (s.name().empty()) return empty_field("sensor.name", "name the sensor");
    if (s.address().empty())
      return empty_field("sensor.address", "give its SensorService address, e.g. unix:/run/qocnet/sensor.sock");
    if (s.streams().empty()) return empty_field("sensor.streams", "list the streams the sensor sends");
    SensorConfig cfg{s.name(), s.address(), {}};
    for (int i = 0; i < s.streams_size(); ++i) {
      QOCNET_ASSIGN(id, from_proto(s.streams(i), "sensor.streams[" + std::to_string(i) + "]"));
      cfg.streams.push_back(id);
    }
    return ctl_.add_sensor(cfg);
  });
}

QOCNET_CONTROL(RemoveSensor) {
  (void)resp;
  QOCNET_BODY({
    if (req->name().empty()) return empty_field("name", "name the sensor");
    return ctl_.remove_sensor(req->name());
  });
}

QOCNET_CONTROL(ListSensors) {
  (void)req;
  QOCNET_BODY({
    QOCNET_TRY(ctl_.ready());
    for (auto& s : ctl_.sensors()) *resp->add_sensors() = std::move(s);
    return {};
  });
}

QOCNET_CONTROL(GetStatus) {
  (void)req;
  QOCNET_BODY({
    QOCNET_ASSIGN(s, ctl_.status());
    *resp = std::move(s);
    return {};
  });
}

namespace {

// WatchStats: a thread per watcher builds a StatsUpdate every interval.
class StatsWatch : public QueueWriter<v1::StatsUpdate> {
 public:
  StatsWatch(Controller& ctl, std::chrono::milliseconds interval, std::uint32_t count)
      : ctl_(ctl), interval_(interval), count_(count) {
    on_done([this] {
      close(::grpc::Status::CANCELLED);
      if (thread_.joinable()) thread_.join();
    });
    thread_ = std::thread([this] { loop(); });
  }

 private:
  void loop() {
    for (std::uint64_t seq = 1;; ++seq) {
      auto u = ctl_.stats();
      if (!u) {
        close(to_status(u.error()));
        return;
      }
      u->set_sequence(seq);
      if (!push(std::move(u).value())) return;
      if (count_ != 0 && seq >= count_) {
        close(::grpc::Status::OK);
        return;
      }
      if (wait_closed_for(interval_)) return;
    }
  }
  Controller& ctl_;
  std::chrono::milliseconds interval_;
  std::uint32_t count_;
  std::thread thread_;
};

}  // namespace

::grpc::ServerWriteReactor<v1::StatsUpdate>* ControlServiceImpl::WatchStats(::grpc::CallbackServerContext* ctx,
                                                                           const v1::WatchStatsRequest* req) {
  auto fail = [](::grpc::Status st) {
    auto* w = new QueueWriter<v1::StatsUpdate>();
    w->close(std::move(st));
    return w;
  };
  if (auto st = admit(ctx, access_, ctl_, *req, Caller{Caller::operator_call}); !st.ok()) return fail(st);
  const std::uint32_t ms = req->interval_ms() == 0 ? 1000 : req->interval_ms();
  if (ms < 100 || ms > 60000)
    return fail(to_status(bad_field("interval_ms", "is " + std::to_string(ms) + ", not in 100..60000",
                                    "ask for an interval between 100 ms and 60 s (0: 1 s)")));
  if (auto st = ctl_.ready(); !st) return fail(to_status(st));
  return new StatsWatch(ctl_, std::chrono::milliseconds(ms), req->count());
}

// QocService ------------------------------------------------------------------

namespace {

// A process's own calls: charged to the process once its token checked out.
template <class F>
::grpc::ServerUnaryReactor* run_process(::grpc::CallbackServerContext* ctx, const AccessPolicy& access,
                                        const Controller& ctl, const google::protobuf::Message& request,
                                        const std::string& name, F&& body) {
  return run(ctx, access, ctl, request, Caller{Caller::process, &name}, std::forward<F>(body));
}

Result<std::optional<StreamId>> optional_stream(const v1::StreamId& s, bool present) {
  if (!present) return std::optional<StreamId>{};
  QOCNET_ASSIGN(id, from_proto(s, "stream"));
  return std::optional<StreamId>{id};
}

}  // namespace

::grpc::ServerUnaryReactor* QocServiceImpl::RegisterProcess(::grpc::CallbackServerContext* ctx,
                                                           const v1::RegisterProcessRequest* req,
                                                           v1::RegisterProcessResponse* resp) {
  return run(ctx, access_, ctl_, *req, Caller{Caller::anyone}, [&]() -> Status {
    QOCNET_TRY(check_process_name(req->name(), "name"));
    if (req->udp_port() > 65535)
      return bad_field("udp_port", "is " + std::to_string(req->udp_port()) + ", not in 0..65535",
                       "give the UDP port the process receives on, or 0 for the sensor's destination port");
    if (!req->interface().empty()) QOCNET_TRY(check_interface_name(req->interface(), "interface"));
    Registration reg{req->name(), static_cast<std::uint16_t>(req->udp_port()), req->interface(), {}};
    if (req->streams().empty()) return empty_field("streams", "list the streams the process consumes");
    for (int i = 0; i < req->streams_size(); ++i) {
      QOCNET_ASSIGN(id, from_proto(req->streams(i), "streams[" + std::to_string(i) + "]"));
      reg.streams.push_back(id);
    }
    QOCNET_ASSIGN(spec, registration_spec(ctx, tenancy_of(access_), reg));
    QOCNET_ASSIGN(r, ctl_.register_process(spec, reg.streams, req->required()));
    *resp = std::move(r);
    to_proto(spec, resp->mutable_process());
    return {};
  });
}

::grpc::ServerUnaryReactor* QocServiceImpl::UnregisterProcess(::grpc::CallbackServerContext* ctx,
                                                             const v1::UnregisterProcessRequest* req,
                                                             v1::UnregisterProcessResponse* resp) {
  (void)resp;
  return run_process(ctx, access_, ctl_, *req, req->name(),
                     [&]() -> Status { return ctl_.unregister_process(req->name()); });
}

::grpc::ServerUnaryReactor* QocServiceImpl::ReportRequirement(::grpc::CallbackServerContext* ctx,
                                                             const v1::ReportRequirementRequest* req,
                                                             v1::ReportRequirementResponse* resp) {
  return run_process(ctx, access_, ctl_, *req, req->name(), [&]() -> Status {
    QOCNET_ASSIGN(stream, optional_stream(req->stream(), req->has_stream()));
    QOCNET_ASSIGN(policies, ctl_.report_requirement(req->name(), stream, req->required()));
    for (auto& p : policies) *resp->add_policies() = std::move(p);
    return {};
  });
}

::grpc::ServerUnaryReactor* QocServiceImpl::ReportMeasuredQoc(::grpc::CallbackServerContext* ctx,
                                                             const v1::ReportMeasuredQocRequest* req,
                                                             v1::ReportMeasuredQocResponse* resp) {
  return run_process(ctx, access_, ctl_, *req, req->name(), [&]() -> Status {
    QOCNET_ASSIGN(stream, optional_stream(req->stream(), req->has_stream()));
    QOCNET_ASSIGN(r, ctl_.report_measured(req->name(), stream, req->measured()));
    *resp = std::move(r);
    return {};
  });
}

::grpc::ServerWriteReactor<v1::PolicyUpdate>* QocServiceImpl::WatchPolicy(::grpc::CallbackServerContext* ctx,
                                                                         const v1::WatchPolicyRequest* req) {
  auto* w = new Watch();
  w->process = req->name();
  if (auto admitted = admit(ctx, access_, ctl_, *req, Caller{Caller::process, &req->name()});
      !admitted.ok()) {
    w->close(std::move(admitted));
    return w;
  }
  Controller* ctl = &ctl_;
  w->on_done([ctl, w] { ctl->remove_watch(w); });
  if (Status st = ctl_.add_watch(req->name(), w); !st.ok()) w->close(to_status(st));
  return w;
}

}  // namespace qocnet::grpc_api
