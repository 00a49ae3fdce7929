// SPDX-License-Identifier: Apache-2.0
// qocnetd's plain-HTTP health endpoint, for probes that carry no client
// certificate (a kubelet, a load balancer, curl):
//   GET /healthz  200 "serving" once the datapath serves, 503 before it does
//                 and from the moment qocnetd starts to stop
//   GET /livez    200 while the process runs (liveness)
// anything else 404; methods other than GET and HEAD 405. One Boost.Asio
// thread serves it; a connection gets 2 s to send its request.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "qocnet/error.hpp"

namespace qocnet::qocnetd {

class HealthEndpoint {
 public:
  // Listens on HOST:PORT ("127.0.0.1:8081", "[::1]:8081"); `serving` is read
  // on every /healthz.
  static Result<std::unique_ptr<HealthEndpoint>> start(const std::string& host_port, std::function<bool()> serving);
  ~HealthEndpoint();
  HealthEndpoint(const HealthEndpoint&) = delete;
  HealthEndpoint& operator=(const HealthEndpoint&) = delete;

  struct Impl;

 private:
  explicit HealthEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qocnet::qocnetd
