// Pushes a sensor's effective policies to its agent (SensorService), off
// every lock of the controller: one worker thread per sensor holds the latest
// policy per stream (a newer one replaces one not yet sent), sends them one
// at a time with a deadline, and retries failures with backoff (100 ms
// doubling to 5 s). A sensor that hangs or is gone delays only its own
// pushes; every other call goes on (docs/SERVICE.md, Feedback).
//
// The outcome of each push is reported through `on_result`, called from the
// worker without any lock of the pusher held (the controller takes its own
// lock there). A push refused as older than what the agent applied (a client
// gave it a later order than this edge's) calls `on_stale`, which moves the
// edge to a newer epoch, and is sent again.
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

struct SensorPush {
  StreamId stream;
  Policy policy;
  std::uint64_t generation = 0;
};

class SensorPusher {
 public:
  using OnResult = std::function<void(const SensorPush&, const Status&)>;
  SensorPusher(std::string name, std::string address, const SensorTls& tls, std::chrono::milliseconds timeout,
               std::function<std::uint64_t()> epoch, OnResult on_result, std::function<void()> on_stale);
  ~SensorPusher();
  SensorPusher(const SensorPusher&) = delete;
  SensorPusher& operator=(const SensorPusher&) = delete;

  // Queues `push` (replacing one for the same stream not yet sent).
  void push(SensorPush push);
  // Sends what is queued once more (no retries), reports nothing, then ends.
  void retire();
  // Ends now: an RPC under way is cancelled; waits for the worker.
  void stop();
  // Pushes queued or in flight (tests, bench).
  std::size_t pending() const;

 private:
  void loop();
  ::grpc::Status send(const SensorPush& p);

  const std::string name_, address_;
  const std::chrono::milliseconds timeout_;
  std::function<std::uint64_t()> epoch_;
  OnResult on_result_;
  std::function<void()> on_stale_;
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
