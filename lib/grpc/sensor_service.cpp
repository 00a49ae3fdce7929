// SPDX-License-Identifier: Apache-2.0
#include "sensor_service.hpp"

#include "control/daemon_state.hpp"
#include "server.hpp"

namespace qocnet::grpc_api {

namespace {

::grpc::ServerUnaryReactor* finish(::grpc::CallbackServerContext* ctx, const ::grpc::Status& st) {
  auto* r = ctx->DefaultReactor();
  r->Finish(st);
  return r;
}

}  // namespace

::grpc::Status edge_allowed(const ::grpc::CallbackServerContext* ctx, const EdgeAuth& auth) {
  if (auth.insecure_accept_any) return ::grpc::Status::OK;
  if (auto a = ctx->auth_context(); a && a->IsPeerAuthenticated()) return ::grpc::Status::OK;  // mTLS
  const std::string peer = ctx->peer();
  if (auto cred = local_peer(peer)) {
    if (auth.uids.count(cred->uid)) return ::grpc::Status::OK;
    return {::grpc::StatusCode::PERMISSION_DENIED,
            "SensorService takes policies only from the edge; uid " + std::to_string(cred->uid) +
                " on the local socket is not allowed; fix: run qocnetd as an allowed uid, or start "
                "qocnet-sensor with --edge-uid " + std::to_string(cred->uid)};
  }
  return {::grpc::StatusCode::UNAUTHENTICATED,
          "SensorService takes policies only from the edge: " + peer.substr(0, 128) +
              " presented no client certificate the agent's CA (--tls-ca) verified; fix: give qocnetd "
              "--sensor-tls-cert/--sensor-tls-key signed by that CA, or use the local socket"};
}

::grpc::ServerUnaryReactor* SensorServiceImpl::SetStreamPolicy(::grpc::CallbackServerContext* ctx,
                                                               const v1::SetStreamPolicyRequest* req,
                                                               v1::SetStreamPolicyResponse* resp) {
  if (auto st = edge_allowed(ctx, auth_); !st.ok()) return finish(ctx, st);
  return finish(ctx, to_status([&]() -> Status {
    QOCNET_TRY(check_request(*req));
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    QOCNET_ASSIGN(policy, from_proto(req->policy(), "policy"));
    for (auto [field, v] : {std::pair{"epoch", req->epoch()}, std::pair{"generation", req->generation()}})
      if (v > control::kMaxOrder)
        return bad_field(field,
                         "is " + std::to_string(v) + ", more than the limit of " + std::to_string(control::kMaxOrder),
                         "send the edge's epoch and generation (both below 2^63)");
    QOCNET_ASSIGN(key, stream_key(stream));
    const Order order{req->epoch(), req->generation()};
    const bool ordered = order != Order{0, 0};
    std::lock_guard lock(mu_);
    if (ordered)
      if (auto it = applied_.find(key); it != applied_.end() && order < it->second)
        return make_error(Errc::failed_precondition,
                          "order (epoch " + std::to_string(order.first) + ", generation " +
                              std::to_string(order.second) + ") is older than the last applied to " +
                              to_string(stream) + " (epoch " + std::to_string(it->second.first) +
                              ", generation " + std::to_string(it->second.second) + ")",
                          "a newer policy is in force; a restarted edge sends a newer epoch");
    QOCNET_TRY(sensor_.set_policy(stream, policy));
    if (ordered) {
      applied_[key] = order;
      last_ = std::max(last_, order);
    } else {
      applied_.try_emplace(key, Order{0, 0});  // listed by GetSensorStatus; orders nothing
    }
    to_proto(policy, resp->mutable_applied());
    return {};
  }()));
}

::grpc::ServerUnaryReactor* SensorServiceImpl::SetDefaultPolicy(::grpc::CallbackServerContext* ctx,
                                                                const v1::SetDefaultPolicyRequest* req,
                                                                v1::SetDefaultPolicyResponse* resp) {
  (void)resp;
  if (auto st = edge_allowed(ctx, auth_); !st.ok()) return finish(ctx, st);
  return finish(ctx, to_status([&]() -> Status {
    QOCNET_TRY(check_request(*req));
    QOCNET_ASSIGN(policy, from_proto(req->policy(), "policy"));
    std::lock_guard lock(mu_);
    return sensor_.set_default_policy(policy);
  }()));
}

::grpc::ServerUnaryReactor* SensorServiceImpl::GetSensorStatus(::grpc::CallbackServerContext* ctx,
                                                               const v1::GetSensorStatusRequest* req,
                                                               v1::GetSensorStatusResponse* resp) {
  (void)req;
  if (auto st = edge_allowed(ctx, auth_); !st.ok()) return finish(ctx, st);
  return finish(ctx, to_status([&]() -> Status {
    std::lock_guard lock(mu_);
    resp->set_uplink(sensor_.uplink());
    resp->set_program_id(sensor_.program_id());
    to_proto(sensor_.default_policy(), resp->mutable_default_policy());
    resp->set_epoch(last_.first);
    resp->set_generation(last_.second);
    QOCNET_ASSIGN(streams, sensor_.streams());
    std::set<StreamKey> listed;
    for (const auto& s : streams) {
      if (auto k = stream_key(s.stream)) listed.insert(*k);
      auto* m = resp->add_streams();
      to_proto(s.stream, m->mutable_stream());
      to_proto(s.policy, m->mutable_policy());
      to_proto(s.sent, s.sent_bytes, m->mutable_sent());
      to_proto(s.dropped, s.dropped_bytes, m->mutable_dropped());
      m->set_frames(s.dpi.frames);
      m->set_codec(s.dpi.codec == Codec::h264   ? v1::CODEC_H264
                   : s.dpi.codec == Codec::hevc ? v1::CODEC_HEVC
                                                : v1::CODEC_UNSPECIFIED);
      m->set_misaligned(s.dpi.misaligned);
      m->set_held_until_rap(s.held_until_rap);
      m->set_held_until_rap_bytes(s.held_until_rap_bytes);
    }
    // Streams the edge set a policy for that have sent nothing yet.
    for (const auto& [key, order] : applied_) {
      if (listed.count(key)) continue;
      const StreamId id = stream_id_of(key);
      auto policy = sensor_.policy(id);
      if (!policy) continue;
      auto* m = resp->add_streams();
      to_proto(id, m->mutable_stream());
      to_proto(*policy, m->mutable_policy());
    }
    QOCNET_ASSIGN(dpi, sensor_.dpi_counters());
    to_proto(dpi, resp->mutable_dpi());
    return {};
  }()));
}

}  // namespace qocnet::grpc_api
