#include "sensor_service.hpp"

#include "convert.hpp"

namespace qocnet::grpc_api {

namespace {

::grpc::ServerUnaryReactor* finish(::grpc::CallbackServerContext* ctx, const Status& st) {
  auto* r = ctx->DefaultReactor();
  r->Finish(to_status(st));
  return r;
}

}  // namespace

::grpc::ServerUnaryReactor* SensorServiceImpl::SetStreamPolicy(::grpc::CallbackServerContext* ctx,
                                                               const v1::SetStreamPolicyRequest* req,
                                                               v1::SetStreamPolicyResponse* resp) {
  return finish(ctx, [&]() -> Status {
    QOCNET_ASSIGN(stream, from_proto(req->stream(), "stream"));
    QOCNET_ASSIGN(policy, from_proto(req->policy(), "policy"));
    std::lock_guard lock(mu_);
    if (req->generation() != 0 && req->generation() < generation_)
      return make_error(Errc::failed_precondition,
                        "generation " + std::to_string(req->generation()) + " is older than the last applied (" +
                            std::to_string(generation_) + ")",
                        "send the edge's current generation; a newer policy is already in force");
    QOCNET_TRY(sensor_.set_policy(stream, policy));
    if (req->generation() != 0) generation_ = req->generation();
    to_proto(policy, resp->mutable_applied());
    return {};
  }());
}

::grpc::ServerUnaryReactor* SensorServiceImpl::SetDefaultPolicy(::grpc::CallbackServerContext* ctx,
                                                                const v1::SetDefaultPolicyRequest* req,
                                                                v1::SetDefaultPolicyResponse* resp) {
  (void)resp;
  return finish(ctx, [&]() -> Status {
    QOCNET_ASSIGN(policy, from_proto(req->policy(), "policy"));
    std::lock_guard lock(mu_);
    return sensor_.set_default_policy(policy);
  }());
}

::grpc::ServerUnaryReactor* SensorServiceImpl::GetSensorStatus(::grpc::CallbackServerContext* ctx,
                                                               const v1::GetSensorStatusRequest* req,
                                                               v1::GetSensorStatusResponse* resp) {
  (void)req;
  return finish(ctx, [&]() -> Status {
    std::lock_guard lock(mu_);
    resp->set_uplink(sensor_.uplink());
    resp->set_program_id(sensor_.program_id());
    to_proto(sensor_.default_policy(), resp->mutable_default_policy());
    resp->set_generation(generation_);
    QOCNET_ASSIGN(streams, sensor_.streams());
    for (const auto& s : streams) {
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
    }
    QOCNET_ASSIGN(dpi, sensor_.dpi_counters());
    to_proto(dpi, resp->mutable_dpi());
    return {};
  }());
}

}  // namespace qocnet::grpc_api
