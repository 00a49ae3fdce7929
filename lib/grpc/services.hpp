// qocnet's gRPC services on top of a Controller: ControlService for operators
// and QocService for computation processes (callback API). Every handler
// checks who may call it and how often, validates and translates its request,
// and hands the change to the Controller; a rejected call changes nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "controller.hpp"
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
