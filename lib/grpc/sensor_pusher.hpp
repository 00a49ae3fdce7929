// SPDX-License-Identifier: Apache-2.0
// The gRPC SensorLink (lib/control/sensor_link.hpp): pushes a sensor's
// effective policies to its agent (SensorService.SetStreamPolicy), off the
// control core's executor. One worker thread per sensor holds the latest
// policy per stream (a newer one replaces one not yet sent), sends them one
// at a time with a deadline, and retries failures with backoff (100 ms
// doubling to 5 s). A sensor that hangs or is gone delays only its own
// pushes; every other call goes on (docs/SERVICE.md, Feedback). TLS toward
// agents on TCP; unix: addresses need none (the agent checks the uid).
//
// The outcome of each push goes to SensorEvents::result, called from the
// worker without any lock of the pusher held. A push refused as older than
// what the agent applied (a client gave it a later order than this edge's)
// calls SensorEvents::stale, which moves the edge to a newer epoch, and is
// sent again.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "control/sensor_link.hpp"
#include "convert.hpp"
#include "qocnet/v1/sensor.grpc.pb.h"

namespace qocnet::grpc_api {

// TLS toward sensor agents that listen on TCP (the agent's --tls-ca must
// have signed `cert`); unix: addresses need none (the agent checks the uid).
struct SensorTls {
  std::string ca;    // PEM file: the CA that signed the agents' server certificates
  std::string cert;  // PEM file: qocnetd's client certificate
  std::string key;   // PEM file: its private key
};

using control::SensorPush;

class SensorPusher final : public control::SensorLink {
 public:
  SensorPusher(const control::SensorConfig& sensor, const SensorTls& tls, std::chrono::milliseconds timeout,
               control::SensorEvents events);
  ~SensorPusher() override;
  SensorPusher(const SensorPusher&) = delete;
  SensorPusher& operator=(const SensorPusher&) = delete;

  void push(SensorPush push) override;
  void retire() override;
  // Ends now: an RPC under way is cancelled; waits for the worker.
  void stop() override;
  std::size_t pending() const override;

  // The SensorLinkFactory qocnetd gives its control core.
  static control::SensorLinkFactory factory(SensorTls tls, std::chrono::milliseconds timeout);

 private:
  void loop();
  ::grpc::Status send(const SensorPush& p);

  const std::string name_, address_;
  const std::chrono::milliseconds timeout_;
  control::SensorEvents events_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::SensorService::Stub> stub_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<StreamKey, SensorPush> queue_;
  bool in_flight_ = false;
  bool retiring_ = false;
  bool stopping_ = false;
  ::grpc::ClientContext* call_ = nullptr;  // the RPC under way, for stop()
  std::thread thread_;
};

}  // namespace qocnet::grpc_api
