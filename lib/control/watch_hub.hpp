// SPDX-License-Identifier: Apache-2.0
// qocnet::control watch hubs: fan-out of policy changes (WatchPolicy) and
// stats samples (WatchStats) to any number of subscribers, with no thread
// per subscriber. Both live on the executor: publish, subscribe and the
// stats timers run there only. A subscriber's deliver() must not block (the
// gRPC one queues the message on its reactor and returns); one that is gone
// or too slow says so (false) and is dropped.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "qocnet/error.hpp"

namespace qocnet::control {

template <class T>
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // Hands over one message; false: the subscriber is gone (drop it).
  virtual bool deliver(const T& message) = 0;
  // Ends the stream: ok, or with `error`.
  virtual void close(const Status& status) = 0;
};

template <class T>
using SubscriberPtr = std::shared_ptr<Subscriber<T>>;

// Subscribers by topic (a process name for WatchPolicy).
template <class T>
class FanOut {
 public:
  void subscribe(const std::string& topic, SubscriberPtr<T> s) { subs_.emplace(topic, std::move(s)); }
  void unsubscribe(const Subscriber<T>* s) {
    std::erase_if(subs_, [&](const auto& e) { return e.second.get() == s; });
  }
  // Delivers to the topic's subscribers; drops those that are gone.
  void publish(const std::string& topic, const T& message) {
    auto [first, last] = subs_.equal_range(topic);
    for (auto it = first; it != last;)
      it = it->second->deliver(message) ? std::next(it) : subs_.erase(it);
  }
  // Ends the topic's streams with `status` and forgets them.
  void close(const std::string& topic, const Status& status) {
    auto [first, last] = subs_.equal_range(topic);
    for (auto it = first; it != last; ++it) it->second->close(status);
    subs_.erase(first, last);
  }
  void close_all(const Status& status) {
    for (auto& [topic, s] : subs_) s->close(status);
    subs_.clear();
  }
  std::size_t size() const { return subs_.size(); }

 private:
  std::multimap<std::string, SubscriberPtr<T>> subs_;
};

// Periodic samples for subscribers with their own interval and count: one
// Asio timer per subscriber on the executor's context, no thread. The first
// sample goes out at once. Subscribers due at the same moment share one
// sample (taken at most once per `share_within`).
template <class T>
class SampleHub {
 public:
  using Sample = std::function<Result<T>()>;
  SampleHub(boost::asio::io_context& io, Sample sample) : io_(io), sample_(std::move(sample)) {}
  ~SampleHub() { close_all(Status{}); }
  SampleHub(const SampleHub&) = delete;
  SampleHub& operator=(const SampleHub&) = delete;

  // `count` 0: until the subscriber goes or close_all; else that many samples
  // then the stream ends ok. `sequence` numbers each subscriber's samples
  // from 1 (set through `number`).
  void subscribe(SubscriberPtr<T> s, std::chrono::milliseconds interval, std::uint32_t count,
                 std::function<void(T&, std::uint64_t)> number) {
    auto e = std::make_shared<Entry>(io_);
    e->sub = std::move(s);
    e->interval = interval;
    e->count = count;
    e->number = std::move(number);
    entries_.emplace(e->sub.get(), e);
    tick(e);
  }
  void unsubscribe(const Subscriber<T>* s) {
    auto it = entries_.find(s);
    if (it == entries_.end()) return;
    it->second->timer.cancel();
    entries_.erase(it);
  }
  void close_all(const Status& status) {
    for (auto& [p, e] : entries_) {
      e->timer.cancel();
      e->sub->close(status);
    }
    entries_.clear();
  }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    explicit Entry(boost::asio::io_context& io) : timer(io) {}
    SubscriberPtr<T> sub;
    std::chrono::milliseconds interval{1000};
    std::uint32_t count = 0;
    std::uint64_t sent = 0;
    std::function<void(T&, std::uint64_t)> number;
    boost::asio::steady_timer timer;
  };

  Result<T> shared_sample() {
    const auto now = std::chrono::steady_clock::now();
    if (!last_ || now - last_at_ > std::chrono::milliseconds(5)) {
      last_.emplace(sample_());
      last_at_ = now;
    }
    return *last_;
  }

  void tick(const std::shared_ptr<Entry>& e) {
    auto sample = shared_sample();
    if (!sample) {
      e->sub->close(std::move(sample).error());
      entries_.erase(e->sub.get());
      return;
    }
    T message = std::move(sample).value();
    if (e->number) e->number(message, ++e->sent);
    if (!e->sub->deliver(message)) {
      entries_.erase(e->sub.get());
      return;
    }
    if (e->count != 0 && e->sent >= e->count) {
      e->sub->close(Status{});
      entries_.erase(e->sub.get());
      return;
    }
    e->timer.expires_after(e->interval);
    std::weak_ptr<Entry> weak = e;
    e->timer.async_wait([this, weak](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: unsubscribed or closed
      if (auto entry = weak.lock(); entry && entries_.count(entry->sub.get())) tick(entry);
    });
  }

  boost::asio::io_context& io_;
  Sample sample_;
  std::map<const Subscriber<T>*, std::shared_ptr<Entry>> entries_;
  std::optional<Result<T>> last_;
  std::chrono::steady_clock::time_point last_at_;
};

}  // namespace qocnet::control
