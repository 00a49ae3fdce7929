// SPDX-License-Identifier: Apache-2.0
#include "control/executor.hpp"

namespace qocnet::control {

Executor::Executor() : io_(1), work_(boost::asio::make_work_guard(io_)) {
  thread_ = std::thread([this] { io_.run(); });
}

Executor::~Executor() { stop(); }

void Executor::stop() {
  if (stopped_.exchange(true)) return;
  work_.reset();
  io_.stop();
  if (thread_.joinable() && !here()) thread_.join();
  else if (thread_.joinable()) thread_.detach();
}

}  // namespace qocnet::control
