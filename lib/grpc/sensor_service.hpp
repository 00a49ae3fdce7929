// SensorService on top of a qocnet::Sensor (the sensor agent's datapath): the
// edge sets each stream's effective policy; the agent applies it on the
// uplink's egress program. Policy changes carry the edge's generation and an
// older one than the last applied is refused, so a delayed push cannot undo a
// newer one.
#pragma once

#include <mutex>

#include "qocnet/sensor.hpp"
#include "qocnet/v1/sensor.grpc.pb.h"

namespace qocnet::grpc_api {

class SensorServiceImpl final : public v1::SensorService::CallbackService {
 public:
  explicit SensorServiceImpl(Sensor& sensor) : sensor_(sensor) {}

  ::grpc::ServerUnaryReactor* SetStreamPolicy(::grpc::CallbackServerContext* ctx,
                                              const v1::SetStreamPolicyRequest* req,
                                              v1::SetStreamPolicyResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetDefaultPolicy(::grpc::CallbackServerContext* ctx,
                                               const v1::SetDefaultPolicyRequest* req,
                                               v1::SetDefaultPolicyResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetSensorStatus(::grpc::CallbackServerContext* ctx,
                                              const v1::GetSensorStatusRequest* req,
                                              v1::GetSensorStatusResponse* resp) override;
  std::uint64_t generation() const {
    std::lock_guard lock(mu_);
    return generation_;
  }

 private:
  Sensor& sensor_;
  mutable std::mutex mu_;
  std::uint64_t generation_ = 0;
};

}  // namespace qocnet::grpc_api
