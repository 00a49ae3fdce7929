// SPDX-License-Identifier: Apache-2.0
// What qocnetd's configuration gives its control core: the core's own
// options (lib/control/core.hpp) and how the gRPC sensor links reach the
// sensor agents (TLS toward agents on TCP).
#pragma once

#include "control/core.hpp"
#include "sensor_pusher.hpp"

namespace qocnet::grpc_api {

using control::LoopConfig;
using control::SensorConfig;
using control::StreamConfig;

struct ControllerOptions : control::CoreOptions {
  SensorTls sensor_tls;
};

}  // namespace qocnet::grpc_api
