// SPDX-License-Identifier: Apache-2.0
// qocnet's gRPC services, a thin front end on the control core
// (lib/control/core.hpp): ControlService for operators and QocService for
// computation processes (callback API). Every handler checks who may call it
// and how often, validates and translates its request (convert.hpp, the one
// wire layer), posts it to the core and returns; the core's completion fills
// the response and finishes the reactor. No gRPC thread waits for the core.
// A rejected call changes nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "control/core.hpp"
#include "tenancy.hpp"
#include "qocnet/v1/control.grpc.pb.h"
#include "qocnet/v1/qoc.grpc.pb.h"

namespace qocnet::grpc_api {

// A token bucket per caller: `rate` calls per second on average, bursts of
// up to `burst`. Over it, calls get RESOURCE_EXHAUSTED. A bucket idle long
// enough to be full again is the same as none and is forgotten; at most
// `max_clients` buckets are held (then the least recently used goes), so
// callers with fresh names cannot grow the daemon.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double rate, double burst, std::size_t max_clients = 4096)
      : rate_(rate), burst_(burst), max_clients_(max_clients) {}
  // True if `client` may make a call now (and counts it).
  bool allow(const std::string& client) { return allow(client, Clock::now()); }
  bool allow(const std::string& client, Clock::time_point now);
  double rate() const { return rate_; }
  // Buckets held now (tests).
  std::size_t clients() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };
  void forget_idle(Clock::time_point now);
  double rate_, burst_;
  std::size_t max_clients_;
  mutable std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
  std::uint64_t calls_ = 0;
};

// Who a call is charged to when it is not (yet) a verified process: the
// client certificate's identity, else the peer's address without its port
// ("local" for the Unix socket).
std::string peer_identity(const ::grpc::CallbackServerContext* ctx);

// Who may do what (docs/SERVICE.md, Security).
struct AccessPolicy {
  RateLimiter* limiter = nullptr;         // null: no limit
  const TenancyConfig* tenancy = nullptr;  // null: no tenants, no certificate operators
};

// Operator calls need the operator role (tenancy.hpp): the main local socket,
// or TLS with a client certificate listed as an operator's; anything else,
// the process socket included, is PERMISSION_DENIED.
::grpc::Status operator_allowed(const ::grpc::CallbackServerContext* ctx, const TenancyConfig& tenancy);

class ControlServiceImpl final : public v1::ControlService::CallbackService {
 public:
  ControlServiceImpl(control::ControlCore& core, AccessPolicy access) : core_(core), access_(access) {}

  ::grpc::ServerUnaryReactor* AttachPort(::grpc::CallbackServerContext* ctx, const v1::AttachPortRequest* req,
                                         v1::AttachPortResponse* resp) override;
  ::grpc::ServerUnaryReactor* DetachPort(::grpc::CallbackServerContext* ctx, const v1::DetachPortRequest* req,
                                         v1::DetachPortResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetPortPair(::grpc::CallbackServerContext* ctx, const v1::SetPortPairRequest* req,
                                          v1::SetPortPairResponse* resp) override;
  ::grpc::ServerUnaryReactor* RemovePortPair(::grpc::CallbackServerContext* ctx,
                                             const v1::RemovePortPairRequest* req,
                                             v1::RemovePortPairResponse* resp) override;
  ::grpc::ServerUnaryReactor* ListPortPairs(::grpc::CallbackServerContext* ctx, const v1::ListPortPairsRequest* req,
                                            v1::ListPortPairsResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetPortCounters(::grpc::CallbackServerContext* ctx,
                                              const v1::GetPortCountersRequest* req,
                                              v1::GetPortCountersResponse* resp) override;
  ::grpc::ServerUnaryReactor* AddProcess(::grpc::CallbackServerContext* ctx, const v1::AddProcessRequest* req,
                                         v1::AddProcessResponse* resp) override;
  ::grpc::ServerUnaryReactor* RemoveProcess(::grpc::CallbackServerContext* ctx, const v1::RemoveProcessRequest* req,
                                            v1::RemoveProcessResponse* resp) override;
  ::grpc::ServerUnaryReactor* ListProcesses(::grpc::CallbackServerContext* ctx, const v1::ListProcessesRequest* req,
                                            v1::ListProcessesResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetCloneTargets(::grpc::CallbackServerContext* ctx,
                                              const v1::SetCloneTargetsRequest* req,
                                              v1::SetCloneTargetsResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetPolicy(::grpc::CallbackServerContext* ctx, const v1::SetPolicyRequest* req,
                                        v1::SetPolicyResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetTargetStats(::grpc::CallbackServerContext* ctx,
                                             const v1::GetTargetStatsRequest* req,
                                             v1::GetTargetStatsResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetRequirement(::grpc::CallbackServerContext* ctx,
                                             const v1::SetRequirementRequest* req,
                                             v1::SetRequirementResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetEffectivePolicy(::grpc::CallbackServerContext* ctx,
                                                 const v1::GetEffectivePolicyRequest* req,
                                                 v1::GetEffectivePolicyResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetStreamBandwidth(::grpc::CallbackServerContext* ctx,
                                                 const v1::GetStreamBandwidthRequest* req,
                                                 v1::GetStreamBandwidthResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetQocTable(::grpc::CallbackServerContext* ctx, const v1::GetQocTableRequest* req,
                                          v1::GetQocTableResponse* resp) override;
  ::grpc::ServerUnaryReactor* SetQocTable(::grpc::CallbackServerContext* ctx, const v1::SetQocTableRequest* req,
                                          v1::SetQocTableResponse* resp) override;
  ::grpc::ServerUnaryReactor* ListStreams(::grpc::CallbackServerContext* ctx, const v1::ListStreamsRequest* req,
                                          v1::ListStreamsResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetDpiCounters(::grpc::CallbackServerContext* ctx,
                                             const v1::GetDpiCountersRequest* req,
                                             v1::GetDpiCountersResponse* resp) override;
  ::grpc::ServerUnaryReactor* ResetStreams(::grpc::CallbackServerContext* ctx, const v1::ResetStreamsRequest* req,
                                           v1::ResetStreamsResponse* resp) override;
  ::grpc::ServerUnaryReactor* AddSensor(::grpc::CallbackServerContext* ctx, const v1::AddSensorRequest* req,
                                        v1::AddSensorResponse* resp) override;
  ::grpc::ServerUnaryReactor* RemoveSensor(::grpc::CallbackServerContext* ctx, const v1::RemoveSensorRequest* req,
                                           v1::RemoveSensorResponse* resp) override;
  ::grpc::ServerUnaryReactor* ListSensors(::grpc::CallbackServerContext* ctx, const v1::ListSensorsRequest* req,
                                          v1::ListSensorsResponse* resp) override;
  ::grpc::ServerUnaryReactor* GetStatus(::grpc::CallbackServerContext* ctx, const v1::GetStatusRequest* req,
                                        v1::GetStatusResponse* resp) override;
  ::grpc::ServerWriteReactor<v1::StatsUpdate>* WatchStats(::grpc::CallbackServerContext* ctx,
                                                          const v1::WatchStatsRequest* req) override;

 private:
  control::ControlCore& core_;
  AccessPolicy access_;
};

class QocServiceImpl final : public v1::QocService::CallbackService {
 public:
  QocServiceImpl(control::ControlCore& core, AccessPolicy access) : core_(core), access_(access) {}

  ::grpc::ServerUnaryReactor* RegisterProcess(::grpc::CallbackServerContext* ctx,
                                              const v1::RegisterProcessRequest* req,
                                              v1::RegisterProcessResponse* resp) override;
  ::grpc::ServerUnaryReactor* UnregisterProcess(::grpc::CallbackServerContext* ctx,
                                                const v1::UnregisterProcessRequest* req,
                                                v1::UnregisterProcessResponse* resp) override;
  ::grpc::ServerUnaryReactor* ReportRequirement(::grpc::CallbackServerContext* ctx,
                                                const v1::ReportRequirementRequest* req,
                                                v1::ReportRequirementResponse* resp) override;
  ::grpc::ServerUnaryReactor* ReportMeasuredQoc(::grpc::CallbackServerContext* ctx,
                                                const v1::ReportMeasuredQocRequest* req,
                                                v1::ReportMeasuredQocResponse* resp) override;
  ::grpc::ServerWriteReactor<v1::PolicyUpdate>* WatchPolicy(::grpc::CallbackServerContext* ctx,
                                                            const v1::WatchPolicyRequest* req) override;

 private:
  control::ControlCore& core_;
  AccessPolicy access_;
};

}  // namespace qocnet::grpc_api
