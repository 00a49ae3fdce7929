// SPDX-License-Identifier: Apache-2.0
// qocnet::control::Executor -- the control core's single writer: one
// boost::asio::io_context run by one thread. Everything that reads or
// changes the Edge, the registry or the sensors' state is posted here and
// runs one at a time, in order; timers (stats sampling, retrying a failed
// state write) are Asio timers on the same context. With one thread running
// the context, the context is its own strand: no handler needs another one.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <thread>
#include <utility>

namespace qocnet::control {

class Executor {
 public:
  Executor();
  ~Executor();  // stop()
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `f` on the executor's thread after everything posted before it.
  // Never blocks the caller. After stop() nothing runs any more.
  template <class F>
  void post(F&& f) {
    boost::asio::post(io_, std::forward<F>(f));
  }
  boost::asio::io_context& context() { return io_; }
  // True on the executor's own thread.
  bool here() const { return std::this_thread::get_id() == thread_.get_id(); }
  // Ends the thread: handlers not yet run are dropped (their callbacks are
  // destroyed uncalled). Returns once the thread has ended; idempotent.
  void stop();

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace qocnet::control
