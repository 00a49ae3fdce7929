// SPDX-License-Identifier: Apache-2.0
// qocnet::client::Process: the contract of a C++ computation process with
// qocnetd's QocService, as qocnet.Process (clients/python/qocnet/process.py) keeps it for
// Python. A Process
//   - registers (its name, the streams it consumes, the QoC it requires and
//     the UDP port it receives on) over qocnetd's process socket,
//   - receives its copies of the streams on a UDP socket and hands every
//     datagram to a callback,
//   - asks for the QoC it measured on a steady timer and reports it,
//   - follows the policy the edge applies to it (a callback per change),
//   - and, when qocnetd restarts, re-registers and resubscribes by itself
//     (backing off between attempts).
//
// The socket and the timer run on a Boost.Asio io_context the caller owns
// and runs; every callback is called on a thread running it. The policy
// stream is read on a thread of the Process's own, which posts each update
// into the io_context; reports are asynchronous gRPC calls. The io_context
// must outlive the Process.
//
//   boost::asio::io_context io;
//   qocnet::client::ProcessOptions o;
//   o.name = "detector";
//   o.streams = {"10.0.0.1:40000->:5000"};
//   o.required = 0.9;
//   o.udp_port = 6000;
//   auto p = qocnet::client::Process::create(io, o);     // checks, binds
//   p.value()->on_datagram([](auto bytes, auto& from) { ... });
//   p.value()->on_measure([](const std::string& stream) -> std::optional<double> { ... });
//   if (auto st = p.value()->start(); !st) ...           // registers
//   io.run();
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qocnet/error.hpp"
#include "qocnet/v1/qoc.pb.h"
#include "qocnet_client/channel.hpp"

namespace qocnet::client {

// qocnetd's process socket (QocService only), where containers reach it.
inline constexpr const char* kProcessAddress = "unix:/run/qocnet/process/qocnet.sock";

struct ProcessOptions {
  std::string address = kProcessAddress;  // as parse_address() accepts it
  TlsFiles tls;                           // TCP only
  std::string name;                       // unique on the edge: [A-Za-z0-9_.-], at most 31 characters
  std::vector<std::string> streams;       // "10.0.0.1:40000->:5000", at least one
  double required = 0;                    // the QoC it needs; 0: none (keep everything)
  // The UDP port it receives on; 0: the streams' destination port (which
  // they must then share).
  std::uint16_t udp_port = 0;
  std::string interface;                  // its own interface toward the edge, only if it has several
  std::string bind_address = "0.0.0.0";   // where the socket listens
  int receive_buffer = 4 << 20;           // SO_RCVBUF, bytes
  std::chrono::milliseconds report_interval{1000};  // how often on_measure is asked
  std::chrono::milliseconds call_timeout{5000};     // deadline of each unary call
  std::chrono::milliseconds retry_min{200};         // back-off after a failure, doubling
  std::chrono::milliseconds retry_max{5000};        // up to this
  bool unregister_on_stop = true;                   // stop() unregisters the process
};

// One change of the policy the edge applies to one of the process's streams.
struct PolicyEvent {
  std::string stream;        // "10.0.0.1:40000->:5000"
  v1::Policy policy;         // kind, drop and (frame_aware) drop order
  std::string policy_text;   // "keep", "frame_aware(0.3)", "frame_aware(0.3,tail)"
  double required = 0;       // the process's requirement
  double target = 0;         // after closed-loop correction
  std::optional<double> measured;  // its last report, as qocnetd has it
  std::string reason;        // "current", "registered", "measured", "operator", ...
  std::uint64_t generation = 0;
};

// What happened to the process's session with qocnetd (for logs).
struct SessionEvent {
  enum class Kind {
    registered,     // the first registration
    reregistered,   // registered again after qocnetd lost the registration (a restart)
    resumed,        // qocnetd kept the registration (its state file): the token still holds
    disconnected,   // the policy stream ended; retrying after `retry_in`
    report_failed,  // a report was not taken
  };
  Kind kind;
  std::string message;
  std::chrono::milliseconds retry_in{0};
};
const char* to_string(SessionEvent::Kind kind) noexcept;

// The result of one report: the policy now applied and what the loop did.
struct ReportEvent {
  std::string stream;
  double measured = 0;
  v1::LoopAction action = v1::LOOP_ACTION_UNSPECIFIED;
  std::string policy_text;
};

// The receiving port for `options`: udp_port, else the streams' shared
// destination port. Fails naming the streams when they differ.
Result<std::uint16_t> receive_port(const ProcessOptions& options);

// Checks `options` (name, streams, required, timings, address) without
// binding or dialling; the error names the field and the fix.
Status check_options(const ProcessOptions& options);

// The RegisterProcess request `options` make.
Result<v1::RegisterProcessRequest> register_request(const ProcessOptions& options);

class Process {
 public:
  using DatagramFn = std::function<void(std::span<const std::uint8_t> datagram,
                                        const boost::asio::ip::udp::endpoint& from)>;
  // Called per stream at every report_interval; nullopt: nothing to report.
  using MeasureFn = std::function<std::optional<double>(const std::string& stream)>;
  using PolicyFn = std::function<void(const PolicyEvent&)>;
  using SessionFn = std::function<void(const SessionEvent&)>;
  using ReportFn = std::function<void(const ReportEvent&)>;

  // Checks the options, makes the channel and binds the UDP socket (so no
  // copy is lost between registration and the first receive). Nothing is
  // dialled yet.
  static Result<std::unique_ptr<Process>> create(boost::asio::io_context& io, ProcessOptions options);
  ~Process();  // stop()
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Set before start().
  void on_datagram(DatagramFn fn);
  void on_measure(MeasureFn fn);
  void on_policy(PolicyFn fn);
  // Session changes; without a callback they are printed on stderr.
  void on_session(SessionFn fn);
  void on_report(ReportFn fn);

  // Registers (a blocking call, at most call_timeout) and, once registered,
  // starts receiving, the report timer and the policy stream. A failed first
  // registration is returned (nothing is retried): e.g. qocnetd's socket
  // missing, the name taken, a stream the tenant rules do not allow.
  Status start();

  // Stops receiving, reporting and the policy stream; unregisters when
  // unregister_on_stop. Idempotent; may be called from a callback.
  void stop();

  // Changes the requirement (kept for re-registrations); reported at once
  // when registered. Posted into the io_context.
  void set_required(double required);

  // Reports `measured` for `stream` (empty: the only stream) now.
  void report_measured(double measured, const std::string& stream = {});

  const ProcessOptions& options() const;
  // Where qocnetd sends the copies (RegisterProcessResponse.process).
  v1::ProcessSpec spec() const;
  boost::asio::ip::udp::endpoint local_endpoint() const;
  // Registrations made (1 after start(); more after qocnetd restarts).
  std::uint64_t registrations() const;
  std::uint64_t datagrams() const;

  struct Impl;

 private:
  explicit Process(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace qocnet::client
