// SPDX-License-Identifier: Apache-2.0
// A server-streaming reactor fed by producers on other threads: push() queues
// a message and starts a write when none is in flight; OnWriteDone writes the
// next. close() finishes the call after the queue drains. gRPC calls OnDone
// last; the reactor then runs its on_done hook (to unregister from its
// producers) and deletes itself.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace qocnet::grpc_api {

template <class T>
class QueueWriter : public ::grpc::ServerWriteReactor<T> {
 public:
  // At most this many messages wait; a client slower than that is dropped
  // with RESOURCE_EXHAUSTED rather than growing the daemon's memory.
  static constexpr std::size_t kMaxQueued = 1024;

  // Queues a message; false once the call is finishing or done.
  bool push(T message) {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    if (queue_.size() >= kMaxQueued) {
      close_locked(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "the client reads too slowly: more than 1024 messages queued"));
      return false;
    }
    queue_.push_back(std::move(message));
    if (!writing_) write_next_locked();
    return true;
  }

  // Finishes the call once every queued message is written.
  void close(::grpc::Status status) {
    std::lock_guard lock(mu_);
    close_locked(std::move(status));
  }

  // Waits up to `d` for the call to end (cancelled or finished); true if it did.
  template <class Duration>
  bool wait_closed_for(Duration d) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return closing_; });
  }

  bool closing() const {
    std::lock_guard lock(mu_);
    return closing_;
  }

  // Runs once, from OnDone, before the reactor deletes itself.
  void on_done(std::function<void()> hook) { on_done_ = std::move(hook); }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {  // the client went away
      close_locked(::grpc::Status::CANCELLED);
      return;
    }
    queue_.pop_front();
    write_next_locked();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    // The message being written must outlive its write.
    while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
    close_locked(::grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (on_done_) on_done_();
    delete this;
  }

 private:
  void write_next_locked() {
    if (!queue_.empty()) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    } else if (closing_ && !finished_) {
      finished_ = true;
      this->Finish(final_);
    }
  }
  void close_locked(::grpc::Status status) {
    if (!closing_) {
      closing_ = true;
      final_ = std::move(status);
      cv_.notify_all();
    }
    if (!writing_) write_next_locked();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> queue_;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  ::grpc::Status final_;
  std::function<void()> on_done_;
};

}  // namespace qocnet::grpc_api
