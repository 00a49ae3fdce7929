// SPDX-License-Identifier: Apache-2.0
// qocnet::control::SensorLink -- how the control core tells a sensor agent
// the effective policy of each of its streams (docs/SERVICE.md, Feedback).
//
// The core hands a link the latest order per stream and goes on: a link is
// asynchronous and never on the executor's critical path. A link holds the
// latest order per stream (a newer one replaces one not yet sent), sends
// them with a deadline, retries failures with backoff, and carries the
// edge's epoch and the order's generation so a sensor applies orders of a
// restarted edge and never an older one. Its reports come back through
// SensorEvents, called from the link's own thread; the core posts them to
// its executor. gRPC's implementation is grpc_api::SensorPusher
// (lib/grpc/sensor_pusher.hpp); tests may give their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet::control {

struct SensorConfig {
  std::string name;
  std::string address;  // where its agent listens (gRPC target of its SensorService)
  std::vector<StreamId> streams;
};

// One order: the policy the sensor applies to one stream, and its place in
// the edge's sequence of changes.
struct SensorPush {
  StreamId stream;
  Policy policy;
  std::uint64_t generation = 0;
};

struct SensorEvents {
  // The edge's current epoch (read when an order is sent).
  std::function<std::uint64_t()> epoch;
  // The outcome of one order (ok: the agent applies it now).
  std::function<void(const SensorPush&, const Status&)> result;
  // The agent applied a later order than ours: the edge needs a newer epoch.
  std::function<void()> stale;
};

class SensorLink {
 public:
  virtual ~SensorLink() = default;
  // Queues `push`, replacing one for the same stream not yet sent.
  virtual void push(SensorPush push) = 0;
  // Sends what is queued once more (no retries), reports nothing, then ends.
  virtual void retire() = 0;
  // Ends now: an order under way is cancelled.
  virtual void stop() = 0;
  // Orders queued or in flight.
  virtual std::size_t pending() const = 0;
};

using SensorLinkFactory = std::function<std::unique_ptr<SensorLink>(const SensorConfig&, SensorEvents)>;

}  // namespace qocnet::control
