// qocnet's gRPC services on top of a Controller: ControlService for operators
// and QocService for computation processes (callback API). Every handler
// checks who may call it and how often, validates and translates its request,
// and hands the change to the Controller; a rejected call changes nothing.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "controller.hpp"
#include "qocnet/v1/control.grpc.pb.h"
#include "qocnet/v1/qoc.grpc.pb.h"

namespace qocnet::grpc_api {

// A token bucket per client: `rate` calls per second on average, bursts of
// up to `burst`. Over it, calls get RESOURCE_EXHAUSTED.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  // True if `client` may make a call now (and counts it).
  bool allow(const std::string& client);
  double rate() const { return rate_; }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

// Who may do what (docs/SERVICE.md, Security).
struct AccessPolicy {
  RateLimiter* limiter = nullptr;  // null: no limit
};

// Operator calls come over the local Unix socket or over TLS with a verified
// client certificate; anything else is PERMISSION_DENIED.
::grpc::Status operator_allowed(const ::grpc::CallbackServerContext* ctx);

class ControlServiceImpl final : public v1::ControlService::CallbackService {
 public:
  ControlServiceImpl(Controller& controller, AccessPolicy access) : ctl_(controller), access_(access) {}

#define QOCNET_RPC(Name)                                                            \
  ::grpc::ServerUnaryReactor* Name(::grpc::CallbackServerContext* ctx,              \
                                   const v1::Name##Request* req, v1::Name##Response* resp) override
  QOCNET_RPC(AttachPort);
  QOCNET_RPC(DetachPort);
  QOCNET_RPC(SetPortPair);
  QOCNET_RPC(RemovePortPair);
  QOCNET_RPC(ListPortPairs);
  QOCNET_RPC(GetPortCounters);
  QOCNET_RPC(AddProcess);
  QOCNET_RPC(RemoveProcess);
  QOCNET_RPC(ListProcesses);
  QOCNET_RPC(SetCloneTargets);
  QOCNET_RPC(SetPolicy);
  QOCNET_RPC(GetTargetStats);
  QOCNET_RPC(SetRequirement);
  QOCNET_RPC(GetEffectivePolicy);
  QOCNET_RPC(GetStreamBandwidth);
  QOCNET_RPC(GetQocTable);
  QOCNET_RPC(SetQocTable);
  QOCNET_RPC(ListStreams);
  QOCNET_RPC(GetDpiCounters);
  QOCNET_RPC(ResetStreams);
  QOCNET_RPC(AddSensor);
  QOCNET_RPC(RemoveSensor);
  QOCNET_RPC(ListSensors);
  QOCNET_RPC(GetStatus);
  ::grpc::ServerWriteReactor<v1::StatsUpdate>* WatchStats(::grpc::CallbackServerContext* ctx,
                                                          const v1::WatchStatsRequest* req) override;

 private:
  Controller& ctl_;
  AccessPolicy access_;
};

class QocServiceImpl final : public v1::QocService::CallbackService {
 public:
  QocServiceImpl(Controller& controller, AccessPolicy access) : ctl_(controller), access_(access) {}
  QOCNET_RPC(RegisterProcess);
  QOCNET_RPC(UnregisterProcess);
  QOCNET_RPC(ReportRequirement);
  QOCNET_RPC(ReportMeasuredQoc);
#undef QOCNET_RPC
  ::grpc::ServerWriteReactor<v1::PolicyUpdate>* WatchPolicy(::grpc::CallbackServerContext* ctx,
                                                            const v1::WatchPolicyRequest* req) override;

 private:
  Controller& ctl_;
  AccessPolicy access_;
};

}  // namespace qocnet::grpc_api
