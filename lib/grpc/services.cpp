// SPDX-License-Identifier: Apache-2.0
#include "services.hpp"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>

#include "convert.hpp"
#include "stream_writer.hpp"
#include "qocnet/version.hpp"
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
  // A local caller is who it is, not which connection it came on: its uid
  // and network namespace (a container), whichever socket it reconnects to.
  if (auto local = local_peer(peer)) {
    std::string who = std::string(local->socket == LocalSocket::process ? "local process" : "local operator") +
                      " uid " + std::to_string(local->uid);
    struct stat st {};
    if (local->netns && ::fstat(local->netns->get(), &st) == 0) who += " netns " + std::to_string(st.st_ino);
    else who += " pid " + std::to_string(local->pid);
    return who;
  }
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
Status verify_process(const ::grpc::CallbackServerContext* ctx, const control::ControlCore& core, const Caller& caller) {
  if (caller.name->empty()) return bad_field("name", "is empty", "give the process's registered name");
  QOCNET_ASSIGN(token, call_token(ctx));
  return core.check_token(*caller.name, token);
}

// Who may call and how often, before the request reaches the controller.
::grpc::Status admit(::grpc::CallbackServerContext* ctx, const AccessPolicy& access, const control::ControlCore& core,
                     const google::protobuf::Message& request, const Caller& caller) {
  auto charge = [&](const std::string& who) { return !access.limiter || access.limiter->allow(who); };
  ::grpc::Status refused = to_status(check_request(request));
  if (refused.ok() && caller.kind == Caller::operator_call) refused = operator_allowed(ctx, tenancy_of(access));
  if (refused.ok() && caller.kind == Caller::process) {
    const Status verified = verify_process(ctx, core, caller);
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

// Handlers: admit (synchronous: who, how often, well-formed), translate,
// post to the core; the core's completion fills the response and finishes.

::grpc::ServerUnaryReactor* finish(::grpc::CallbackServerContext* ctx, const ::grpc::Status& st) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(st);
  return reactor;
}

::grpc::ServerUnaryReactor* finish(::grpc::CallbackServerContext* ctx, const Status& st) {
  return finish(ctx, to_status(st));
}

// A completion that finishes the call with the core's status.
control::DoneStatus reply(::grpc::ServerUnaryReactor* reactor) {
  return [reactor](Status st) { reactor->Finish(to_status(st)); };
}

// A completion that fills the response from the core's result, then finishes.
template <class T, class Fill>
control::Done<T> reply(::grpc::ServerUnaryReactor* reactor, Fill fill) {
  return [reactor, fill = std::move(fill)](Result<T> r) {
    if (!r) return reactor->Finish(to_status(r.error()));
    fill(r.value());
    reactor->Finish(::grpc::Status::OK);
  };
}

::grpc::Status admit_operator(::grpc::CallbackServerContext* ctx, const AccessPolicy& access,
                              const control::ControlCore& core, const google::protobuf::Message& request) {
  return admit(ctx, access, core, request, Caller{Caller::operator_call});
}

// A process's own call: its name in the request, its token in the call's metadata.
::grpc::Status admit_process(::grpc::CallbackServerContext* ctx, const AccessPolicy& access,
                             const control::ControlCore& core, const google::protobuf::Message& request,
                             const std::string& name) {
  return admit(ctx, access, core, request, Caller{Caller::process, &name});
}

Error empty_field(const std::string& field, const std::string& fix) {
  return bad_field(field, "is empty", fix);
}

Result<std::optional<StreamKey>> optional_stream(const v1::StreamId& s, bool present) {
  if (!present) return std::optional<StreamKey>{};
  QOCNET_ASSIGN(key, key_from_proto(s, "stream"));
  return std::optional<StreamKey>{key};
}

// A watch stream's end toward the core: a Subscriber that hands each
// message to the gRPC writer (its queue; never blocks) until the call is
// done, then says it is gone.
template <class Proto, class Domain>
class WatchSink final : public control::Subscriber<Domain> {
 public:
  explicit WatchSink(QueueWriter<Proto>* writer) : writer_(writer) {}
  bool deliver(const Domain& message) override {
    std::lock_guard lock(mu_);
    if (!writer_) return false;
    Proto m;
    to_proto(message, &m);
    return writer_->push(std::move(m));
  }
  void close(const Status& status) override {
    std::lock_guard lock(mu_);
    if (writer_) writer_->close(to_status(status));
  }
  // The call is done (OnDone): the writer is about to go.
  void detach() {
    std::lock_guard lock(mu_);
    writer_ = nullptr;
  }

 private:
  std::mutex mu_;
  QueueWriter<Proto>* writer_;
};

template <class Proto>
QueueWriter<Proto>* closed_stream(const ::grpc::Status& st) {
  auto* w = new QueueWriter<Proto>();
  w->close(st);
  return w;
}

}  // namespace

// ControlService ---------------------------------------------------------------

::grpc::ServerUnaryReactor* ControlServiceImpl::AttachPort(::grpc::CallbackServerContext* ctx,
                                                          const v1::AttachPortRequest* req,
                                                          v1::AttachPortResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->port().empty()) return finish(ctx, empty_field("port", "name the interface to attach to"));
  auto* reactor = ctx->DefaultReactor();
  core_.attach_port(req->port(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::DetachPort(::grpc::CallbackServerContext* ctx,
                                                          const v1::DetachPortRequest* req,
                                                          v1::DetachPortResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->port().empty()) return finish(ctx, empty_field("port", "name the interface to detach from"));
  auto* reactor = ctx->DefaultReactor();
  core_.detach_port(req->port(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::SetPortPair(::grpc::CallbackServerContext* ctx,
                                                           const v1::SetPortPairRequest* req,
                                                           v1::SetPortPairResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto pair = from_proto(req->pair(), "pair");
  if (!pair) return finish(ctx, std::move(pair).error());
  auto* reactor = ctx->DefaultReactor();
  core_.set_port_pair(std::move(pair).value(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::RemovePortPair(::grpc::CallbackServerContext* ctx,
                                                              const v1::RemovePortPairRequest* req,
                                                              v1::RemovePortPairResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->ingress().empty()) return finish(ctx, empty_field("ingress", "name the pair's ingress interface"));
  auto* reactor = ctx->DefaultReactor();
  core_.remove_port_pair(req->ingress(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::ListPortPairs(::grpc::CallbackServerContext* ctx,
                                                             const v1::ListPortPairsRequest* req,
                                                             v1::ListPortPairsResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.port_pairs(reply<std::vector<PortPair>>(reactor, [resp](const std::vector<PortPair>& pairs) {
    for (const auto& p : pairs) to_proto(p, resp->add_pairs());
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetPortCounters(::grpc::CallbackServerContext* ctx,
                                                               const v1::GetPortCountersRequest* req,
                                                               v1::GetPortCountersResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.port_counters({req->ports().begin(), req->ports().end()},
                      reply<std::vector<PortCounters>>(reactor, [resp](const std::vector<PortCounters>& all) {
                        for (const auto& c : all) to_proto(c, resp->add_counters());
                      }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::AddProcess(::grpc::CallbackServerContext* ctx,
                                                          const v1::AddProcessRequest* req,
                                                          v1::AddProcessResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto spec = from_proto(req->process(), "process");
  if (!spec) return finish(ctx, std::move(spec).error());
  auto* reactor = ctx->DefaultReactor();
  core_.add_process(std::move(spec).value(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::RemoveProcess(::grpc::CallbackServerContext* ctx,
                                                             const v1::RemoveProcessRequest* req,
                                                             v1::RemoveProcessResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->name().empty()) return finish(ctx, empty_field("name", "name the process to remove"));
  auto* reactor = ctx->DefaultReactor();
  core_.remove_process(req->name(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::ListProcesses(::grpc::CallbackServerContext* ctx,
                                                             const v1::ListProcessesRequest* req,
                                                             v1::ListProcessesResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.processes(reply<std::vector<ProcessSpec>>(reactor, [resp](const std::vector<ProcessSpec>& all) {
    for (const auto& p : all) to_proto(p, resp->add_processes());
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::SetCloneTargets(::grpc::CallbackServerContext* ctx,
                                                               const v1::SetCloneTargetsRequest* req,
                                                               v1::SetCloneTargetsResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto stream = key_from_proto(req->stream(), "stream");
  if (!stream) return finish(ctx, std::move(stream).error());
  std::vector<std::string> names(req->processes().begin(), req->processes().end());
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i].empty()) return finish(ctx, empty_field("processes[" + std::to_string(i) + "]", "name a process"));
  auto* reactor = ctx->DefaultReactor();
  core_.set_clone_targets(*stream, std::move(names), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::SetPolicy(::grpc::CallbackServerContext* ctx,
                                                         const v1::SetPolicyRequest* req,
                                                         v1::SetPolicyResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->process().empty()) return finish(ctx, empty_field("process", "name the process"));
  auto stream = key_from_proto(req->stream(), "stream");
  if (!stream) return finish(ctx, std::move(stream).error());
  auto policy = from_proto(req->policy(), "policy");
  if (!policy) return finish(ctx, std::move(policy).error());
  auto* reactor = ctx->DefaultReactor();
  core_.set_policy(req->process(), *stream, *policy, reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetTargetStats(::grpc::CallbackServerContext* ctx,
                                                              const v1::GetTargetStatsRequest* req,
                                                              v1::GetTargetStatsResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto stream = key_from_proto(req->stream(), "stream");
  if (!stream) return finish(ctx, std::move(stream).error());
  auto* reactor = ctx->DefaultReactor();
  core_.target_stats(*stream, reply<std::vector<TargetStats>>(reactor, [resp](const std::vector<TargetStats>& all) {
    for (const auto& t : all) to_proto(t, t.departed ? resp->add_departed() : resp->add_targets());
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::SetRequirement(::grpc::CallbackServerContext* ctx,
                                                              const v1::SetRequirementRequest* req,
                                                              v1::SetRequirementResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->process().empty()) return finish(ctx, empty_field("process", "name the process"));
  auto stream = key_from_proto(req->stream(), "stream");
  if (!stream) return finish(ctx, std::move(stream).error());
  auto* reactor = ctx->DefaultReactor();
  core_.set_requirement(req->process(), *stream, req->required(),
                        reply<control::StreamPolicy>(reactor, [resp](const control::StreamPolicy& p) {
                          to_proto(p, resp->mutable_policy());
                        }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetEffectivePolicy(::grpc::CallbackServerContext* ctx,
                                                                  const v1::GetEffectivePolicyRequest* req,
                                                                  v1::GetEffectivePolicyResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto stream = key_from_proto(req->stream(), "stream");
  if (!stream) return finish(ctx, std::move(stream).error());
  auto* reactor = ctx->DefaultReactor();
  core_.effective_policy(*stream, reply<Policy>(reactor, [resp](const Policy& p) {
    to_proto(p, resp->mutable_policy());
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetStreamBandwidth(::grpc::CallbackServerContext* ctx,
                                                                  const v1::GetStreamBandwidthRequest* req,
                                                                  v1::GetStreamBandwidthResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto stream = key_from_proto(req->stream(), "stream");
  if (!stream) return finish(ctx, std::move(stream).error());
  auto* reactor = ctx->DefaultReactor();
  core_.stream_bandwidth(*stream, reply<control::StreamBandwidth>(reactor, [resp](const control::StreamBandwidth& b) {
    to_proto(b.bandwidth, resp->mutable_bandwidth());
    resp->set_processes(b.processes);
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetQocTable(::grpc::CallbackServerContext* ctx,
                                                           const v1::GetQocTableRequest* req,
                                                           v1::GetQocTableResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.qoc_table(reply<QocTable>(reactor, [resp](const QocTable& t) { to_proto(t, resp->mutable_table()); }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::SetQocTable(::grpc::CallbackServerContext* ctx,
                                                           const v1::SetQocTableRequest* req,
                                                           v1::SetQocTableResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  const bool has_table = req->has_table();
  const bool has_yaml = !req->yaml().empty();
  if (has_table == has_yaml)
    return finish(ctx, bad_field("table/yaml", has_table ? "are both set" : "are both empty",
                                 "send either the table or its YAML text"));
  auto table = has_yaml ? QocTable::parse_yaml(req->yaml(), "yaml") : from_proto(req->table(), "table");
  if (!table) return finish(ctx, std::move(table).error());
  auto* reactor = ctx->DefaultReactor();
  core_.set_qoc_table(std::move(table).value(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::ListStreams(::grpc::CallbackServerContext* ctx,
                                                           const v1::ListStreamsRequest* req,
                                                           v1::ListStreamsResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.streams(reply<std::vector<StreamStats>>(reactor, [resp](const std::vector<StreamStats>& all) {
    for (const auto& s : all) to_proto(s, resp->add_streams());
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetDpiCounters(::grpc::CallbackServerContext* ctx,
                                                              const v1::GetDpiCountersRequest* req,
                                                              v1::GetDpiCountersResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.dpi_counters(reply<DpiCounters>(reactor, [resp](const DpiCounters& c) { to_proto(c, resp->mutable_counters()); }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::ResetStreams(::grpc::CallbackServerContext* ctx,
                                                            const v1::ResetStreamsRequest* req,
                                                            v1::ResetStreamsResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.reset_streams(reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::AddSensor(::grpc::CallbackServerContext* ctx,
                                                         const v1::AddSensorRequest* req,
                                                         v1::AddSensorResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  const auto& s = req->sensor();
  if (s.name().empty()) return finish(ctx, empty_field("sensor.name", "name the sensor"));
  if (s.address().empty())
    return finish(ctx, empty_field("sensor.address", "give its SensorService address, e.g. unix:/run/qocnet/sensor.sock"));
  if (s.streams().empty()) return finish(ctx, empty_field("sensor.streams", "list the streams the sensor sends"));
  control::SensorConfig cfg{s.name(), s.address(), {}};
  for (int i = 0; i < s.streams_size(); ++i) {
    auto id = from_proto(s.streams(i), "sensor.streams[" + std::to_string(i) + "]");
    if (!id) return finish(ctx, std::move(id).error());
    cfg.streams.push_back(*id);
  }
  auto* reactor = ctx->DefaultReactor();
  core_.add_sensor(std::move(cfg), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::RemoveSensor(::grpc::CallbackServerContext* ctx,
                                                            const v1::RemoveSensorRequest* req,
                                                            v1::RemoveSensorResponse* /*resp*/) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  if (req->name().empty()) return finish(ctx, empty_field("name", "name the sensor"));
  auto* reactor = ctx->DefaultReactor();
  core_.remove_sensor(req->name(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::ListSensors(::grpc::CallbackServerContext* ctx,
                                                           const v1::ListSensorsRequest* req,
                                                           v1::ListSensorsResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.sensors(reply<std::vector<control::SensorView>>(reactor, [resp](const std::vector<control::SensorView>& all) {
    for (const auto& s : all) to_proto(s, resp->add_sensors());
  }));
  return reactor;
}

::grpc::ServerUnaryReactor* ControlServiceImpl::GetStatus(::grpc::CallbackServerContext* ctx,
                                                         const v1::GetStatusRequest* req,
                                                         v1::GetStatusResponse* resp) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.status(reply<control::CoreStatus>(reactor, [resp](const control::CoreStatus& s) {
    const auto& v = qocnet::version();
    resp->set_version(v.version);
    resp->set_git_describe(v.describe);
    resp->set_bcc_version(v.bcc);
    to_proto(s, resp);
  }));
  return reactor;
}

::grpc::ServerWriteReactor<v1::StatsUpdate>* ControlServiceImpl::WatchStats(::grpc::CallbackServerContext* ctx,
                                                                           const v1::WatchStatsRequest* req) {
  if (auto st = admit_operator(ctx, access_, core_, *req); !st.ok()) return closed_stream<v1::StatsUpdate>(st);
  const std::uint32_t ms = req->interval_ms() == 0 ? 1000 : req->interval_ms();
  if (ms < 100 || ms > 60000)
    return closed_stream<v1::StatsUpdate>(to_status(bad_field("interval_ms", "is " + std::to_string(ms) + ", not in 100..60000",
                                                              "ask for an interval between 100 ms and 60 s (0: 1 s)")));
  if (auto st = core_.ready(); !st) return closed_stream<v1::StatsUpdate>(to_status(st));
  auto* writer = new QueueWriter<v1::StatsUpdate>();
  auto sink = std::make_shared<WatchSink<v1::StatsUpdate, control::StatsSnapshot>>(writer);
  control::ControlCore* core = &core_;
  writer->on_done([core, sink] {
    sink->detach();
    core->unwatch_stats(sink.get());
  });
  core_.watch_stats(sink, std::chrono::milliseconds(ms), req->count());
  return writer;
}

// QocService -------------------------------------------------------------------

::grpc::ServerUnaryReactor* QocServiceImpl::RegisterProcess(::grpc::CallbackServerContext* ctx,
                                                           const v1::RegisterProcessRequest* req,
                                                           v1::RegisterProcessResponse* resp) {
  if (auto st = admit(ctx, access_, core_, *req, Caller{Caller::anyone}); !st.ok()) return finish(ctx, st);
  if (auto st = check_process_name(req->name(), "name"); !st) return finish(ctx, st);
  if (req->udp_port() > 65535)
    return finish(ctx, bad_field("udp_port", "is " + std::to_string(req->udp_port()) + ", not in 0..65535",
                                 "give the UDP port the process receives on, or 0 for the sensor's destination port"));
  if (!req->interface().empty())
    if (auto st = check_interface_name(req->interface(), "interface"); !st) return finish(ctx, st);
  Registration reg{req->name(), static_cast<std::uint16_t>(req->udp_port()), req->interface(), {}};
  if (req->streams().empty()) return finish(ctx, empty_field("streams", "list the streams the process consumes"));
  std::vector<StreamKey> streams;
  for (int i = 0; i < req->streams_size(); ++i) {
    auto id = from_proto(req->streams(i), "streams[" + std::to_string(i) + "]");
    if (!id) return finish(ctx, std::move(id).error());
    streams.push_back(stream_key(*id).value());  // from_proto checked the address
    reg.streams.push_back(std::move(id).value());
  }
  // Where its copies go comes from the caller's own veth (tenancy.hpp), and
  // whether it may receive these streams from the tenant rules.
  auto spec = registration_spec(ctx, tenancy_of(access_), reg);
  if (!spec) return finish(ctx, std::move(spec).error());
  auto* reactor = ctx->DefaultReactor();
  core_.register_process(*spec, std::move(streams), req->required(),
                         reply<control::Registration>(reactor, [resp, spec = *spec](const control::Registration& r) {
                           resp->set_token(r.token);
                           for (const auto& p : r.policies) to_proto(p, resp->add_policies());
                           to_proto(spec, resp->mutable_process());
                         }));
  return reactor;
}

::grpc::ServerUnaryReactor* QocServiceImpl::UnregisterProcess(::grpc::CallbackServerContext* ctx,
                                                             const v1::UnregisterProcessRequest* req,
                                                             v1::UnregisterProcessResponse* /*resp*/) {
  if (auto st = admit_process(ctx, access_, core_, *req, req->name()); !st.ok()) return finish(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  core_.unregister_process(req->name(), reply(reactor));
  return reactor;
}

::grpc::ServerUnaryReactor* QocServiceImpl::ReportRequirement(::grpc::CallbackServerContext* ctx,
                                                             const v1::ReportRequirementRequest* req,
                                                             v1::ReportRequirementResponse* resp) {
  if (auto st = admit_process(ctx, access_, core_, *req, req->name()); !st.ok()) return finish(ctx, st);
  auto stream = optional_stream(req->stream(), req->has_stream());
  if (!stream) return finish(ctx, std::move(stream).error());
  auto* reactor = ctx->DefaultReactor();
  core_.report_requirement(req->name(), *stream, req->required(),
                           reply<std::vector<control::StreamPolicy>>(
                               reactor, [resp](const std::vector<control::StreamPolicy>& all) {
                                 for (const auto& p : all) to_proto(p, resp->add_policies());
                               }));
  return reactor;
}

::grpc::ServerUnaryReactor* QocServiceImpl::ReportMeasuredQoc(::grpc::CallbackServerContext* ctx,
                                                             const v1::ReportMeasuredQocRequest* req,
                                                             v1::ReportMeasuredQocResponse* resp) {
  if (auto st = admit_process(ctx, access_, core_, *req, req->name()); !st.ok()) return finish(ctx, st);
  auto stream = optional_stream(req->stream(), req->has_stream());
  if (!stream) return finish(ctx, std::move(stream).error());
  auto* reactor = ctx->DefaultReactor();
  core_.report_measured(req->name(), *stream, req->measured(),
                        reply<control::Measurement>(reactor, [resp](const control::Measurement& m) {
                          to_proto(m.policy, resp->mutable_policy());
                          resp->set_action(to_proto(m.action));
                        }));
  return reactor;
}

::grpc::ServerWriteReactor<v1::PolicyUpdate>* QocServiceImpl::WatchPolicy(::grpc::CallbackServerContext* ctx,
                                                                         const v1::WatchPolicyRequest* req) {
  if (auto st = admit_process(ctx, access_, core_, *req, req->name()); !st.ok())
    return closed_stream<v1::PolicyUpdate>(st);
  auto* writer = new QueueWriter<v1::PolicyUpdate>();
  auto sink = std::make_shared<WatchSink<v1::PolicyUpdate, control::PolicyChange>>(writer);
  control::ControlCore* core = &core_;
  writer->on_done([core, sink] {
    sink->detach();
    core->unwatch_policy(sink.get());
  });
  core_.watch_policy(req->name(), sink, [sink](Status st) {
    if (!st) sink->close(st);
  });
  return writer;
}

}  // namespace qocnet::grpc_api
