// SPDX-License-Identifier: Apache-2.0
// SensorService on top of a qocnet::Sensor (the sensor agent's datapath): the
// edge sets each stream's effective policy; the agent applies it on the
// uplink's egress program.
//
// Who may call (docs/SECURITY.md): only the edge, by default nobody else.
// A caller is the edge if it came over the local socket from an allowed uid
// (SO_PEERCRED, checked when the connection was accepted) or over TCP with a
// client certificate the agent's CA verified (mutual TLS). Anyone else gets
// PERMISSION_DENIED (local) or UNAUTHENTICATED (TCP) and changes nothing,
// unless the agent runs with --insecure-accept-any-edge.
//
// Order: each push carries the edge's (epoch, generation); per stream, one
// older than the last applied is refused, so a delayed push cannot undo a
// newer one, and a restarted edge (a newer epoch) is obeyed.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "convert.hpp"
#include "qocnet/sensor.hpp"
#include "qocnet/v1/sensor.grpc.pb.h"

namespace qocnet::grpc_api {

struct EdgeAuth {
  bool insecure_accept_any = false;  // --insecure-accept-any-edge: no check at all
  std::set<uid_t> uids;              // local-socket peers that are the edge
};

// Whether a call to the sensor agent comes from the edge (see above).
::grpc::Status edge_allowed(const ::grpc::CallbackServerContext* ctx, const EdgeAuth& auth);

class SensorServiceImpl final : public v1::SensorService::CallbackService {
 public:
  SensorServiceImpl(Sensor& sensor, EdgeAuth auth) : sensor_(sensor), auth_(std::move(auth)) {}

  ::grpc::ServerUnaryReactor* SetStreamPolicy(::grpc::CallbackServerContext* ctx,
                                              const v1::SetStreamPolicyRequest* req,
                                              v1::SetStreamPolicyResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetDefaultPolicy(::grpc::CallbackServerContext* ctx,
                                               const v1::SetDefaultPolicyRequest* req,
                                               v1::SetDefaultPolicyResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetSensorStatus(::grpc::CallbackServerContext* ctx,
                                              const v1::GetSensorStatusRequest* req,
                                              v1::GetSensorStatusResponse* resp) override;
  // (epoch, generation) of the last policy applied.
  std::pair<std::uint64_t, std::uint64_t> order() const {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  using Order = std::pair<std::uint64_t, std::uint64_t>;  // (epoch, generation)
  Sensor& sensor_;
  EdgeAuth auth_;
  mutable std::mutex mu_;
  std::map<StreamKey, Order> applied_;  // per stream
  Order last_{0, 0};
};

}  // namespace qocnet::grpc_api
