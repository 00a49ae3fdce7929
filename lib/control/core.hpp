// SPDX-License-Identifier: Apache-2.0
// qocnet::control::ControlCore -- the one place that owns the edge datapath
// in qocnetd (docs/ARCHITECTURE.md, Control plane). No gRPC, no protobuf:
// its API speaks the library's domain types.
//
// Threading: every call posts its work to the core's Executor (one thread,
// one io_context) and returns at once; the work runs there, one call at a
// time, and hands its outcome to the call's completion (`done`), on the
// executor's thread. A completion must not block (the gRPC front end
// finishes its reactor there). Only ready(), generation(), epoch() and
// check_token() answer synchronously, from atomics or a published
// snapshot, never waiting for the executor.
//
// It holds what the library does not: the processes registered over
// QocService (tokens, requirements, closed-loop state), the sensors the edge
// pushes effective policies to (through SensorLinks), and the subscribers of
// policy changes and stats.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/executor.hpp"
#include "control/policy_engine.hpp"
#include "control/registry.hpp"
#include "control/sensor_link.hpp"
#include "control/types.hpp"
#include "control/watch_hub.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet::control {

struct StreamConfig {
  StreamId stream;
  std::vector<std::string> targets;
  std::map<std::string, Policy> policies;  // by process
};

struct CoreOptions {
  EdgeOptions edge;
  std::vector<std::string> ports;   // attached at start
  std::vector<PortPair> pairs;
  std::vector<ProcessSpec> processes;
  std::vector<StreamConfig> streams;
  std::vector<SensorConfig> sensors;
  std::optional<QocTable> table;    // default: the paper's Table 1 (or what a pinned edge kept)
  LoopConfig loop;
  std::chrono::milliseconds sensor_timeout{1000};  // the deadline of one push
  // Tokens (hashed), demands and the edge epoch across restarts; empty: not kept.
  std::filesystem::path state_file;
};

template <class T>
using Done = std::function<void(Result<T>)>;
using DoneStatus = std::function<void(Status)>;

class ControlCore {
 public:
  // `links` makes the link to each sensor; none: sensors are refused.
  ControlCore(CoreOptions options, SensorLinkFactory links);
  ~ControlCore();  // stop()
  ControlCore(const ControlCore&) = delete;
  ControlCore& operator=(const ControlCore&) = delete;

  // Compiles (or re-adopts) the datapath on a thread of its own (calls
  // meanwhile get unavailable at once, they do not queue behind it), then
  // applies the configuration on the executor. `done` runs on the executor
  // with the outcome, unless stop() came first.
  void start(std::function<void(const Status&)> done);
  // unavailable while the datapath is compiling; the start error if it failed.
  Status ready() const;
  bool is_ready() const { return ready_.load(); }
  std::uint64_t generation() const { return generation_.load(); }
  std::uint64_t epoch() const { return epoch_.load(); }
  // Leaves the datapath in the kernel when the core goes (also when said
  // while it still compiles).
  void keep_datapath(bool keep);
  // Shutdown, in this order. cancel_start: a compile under way finishes but
  // nothing is applied (nor `done` called); returns once it has ended.
  void cancel_start();
  // Ends every WatchPolicy and WatchStats stream (unavailable), so the
  // server can drain.
  void close_watches();
  // After the server stopped: writes what the loop left, stops the sensor
  // links, ends the executor, and lets the Edge go (it detaches unless
  // keep_datapath). Returns when all is done. Idempotent.
  void stop();

  // A process call's token: not_found for an unknown process,
  // permission_denied for a token that is not its own. Thread-safe and
  // non-blocking (a snapshot of the token hashes the executor publishes).
  Status check_token(const std::string& name, const std::string& token) const;

  // ControlService.
  void attach_port(std::string port, DoneStatus done);
  void detach_port(std::string port, DoneStatus done);
  void set_port_pair(PortPair pair, DoneStatus done);
  void remove_port_pair(std::string ingress, DoneStatus done);
  void port_pairs(Done<std::vector<PortPair>> done);
  // Every port the datapath has seen when `ports` is empty; errors name ports[i].
  void port_counters(std::vector<std::string> ports, Done<std::vector<PortCounters>> done);
  void add_process(ProcessSpec spec, DoneStatus done);
  void remove_process(std::string name, DoneStatus done);
  void processes(Done<std::vector<ProcessSpec>> done);
  void set_clone_targets(StreamKey stream, std::vector<std::string> processes, DoneStatus done);
  void set_policy(std::string process, StreamKey stream, Policy policy, DoneStatus done);
  void target_stats(StreamKey stream, Done<std::vector<TargetStats>> done);
  void set_requirement(std::string process, StreamKey stream, double required, Done<StreamPolicy> done);
  // Eq. 3 over what the stream's processes want (not the edge's shares).
  void effective_policy(StreamKey stream, Done<Policy> done);
  void stream_bandwidth(StreamKey stream, Done<StreamBandwidth> done);
  void qoc_table(Done<QocTable> done);
  void set_qoc_table(QocTable table, DoneStatus done);
  void streams(Done<std::vector<StreamStats>> done);
  void dpi_counters(Done<DpiCounters> done);
  void reset_streams(DoneStatus done);
  void add_sensor(SensorConfig sensor, DoneStatus done);
  void remove_sensor(std::string name, DoneStatus done);
  void sensors(Done<std::vector<SensorView>> done);
  void status(Done<CoreStatus> done);
  void stats(Done<StatsSnapshot> done);
  // Samples every `interval` (the first at once), `count` times (0: until
  // the subscriber goes); each sample numbered in StatsSnapshot::sequence.
  void watch_stats(SubscriberPtr<StatsSnapshot> subscriber, std::chrono::milliseconds interval,
                   std::uint32_t count);
  void unwatch_stats(const Subscriber<StatsSnapshot>* subscriber);

  // QocService (the token already checked).
  void register_process(ProcessSpec spec, std::vector<StreamKey> streams, double required,
                        Done<Registration> done);
  void unregister_process(std::string name, DoneStatus done);
  // Every stream of the process when `stream` is unset.
  void report_requirement(std::string name, std::optional<StreamKey> stream, double required,
                          Done<std::vector<StreamPolicy>> done);
  void report_measured(std::string name, std::optional<StreamKey> stream, double measured,
                       Done<Measurement> done);
  // Sends every stream's policy now ("current"), then each change; ends
  // not_found when the process is removed. `done` says whether it was taken.
  void watch_policy(std::string name, SubscriberPtr<PolicyChange> subscriber, DoneStatus done);
  void unwatch_policy(const Subscriber<PolicyChange>* subscriber);

 private:
  struct SensorEntry {
    SensorConfig config;
    std::map<StreamKey, Policy> applied;  // by stream: last acknowledged
    std::map<StreamKey, Policy> queued;   // by stream: last handed to the link
    std::string last_error;
    std::shared_ptr<SensorLink> link;
  };

  // Runs `f` on the executor once the datapath is up; else `done(error)`.
  template <class T, class F>
  void run(Done<T> done, F f);
  void run_status(DoneStatus done, std::function<Status()> f);

  Status start_on_executor();
  Status require_ready() const;
  Status apply_stream(const StreamKey& stream, const char* reason);
  Status apply_edge(const StreamKey& stream);
  Result<std::vector<std::string>> targets_of(const StreamKey& stream) const;
  StreamPolicy stream_policy(const Demand& d) const;
  void notify(const std::string& process, const Demand& d, const char* reason);
  SensorEntry* sensor_of(const StreamKey& stream);
  SensorEntry make_sensor(const SensorConfig& config);
  void pushed(const std::string& sensor, const SensorLink* link, const SensorPush& push, const Status& outcome);
  void bump_epoch();
  // A demand's first policy for its requirement: a fresh QoC model (the
  // table's curves) and the table's policy for it.
  Policy start_loop(Demand& d, double required) const;
  Result<StreamPolicy> set_requirement_now(const std::string& process, const StreamKey& stream, double required,
                                           const char* reason);
  Status remove_process_now(const std::string& name);
  Result<StatsSnapshot> sample() const;
  static const StreamReport* find_report(const StatsSnapshot& snapshot, const StreamKey& stream);
  // Tokens: durable at once (a token handed out must survive a crash).
  Status save_state(bool durable);
  // Loop state: written at every change (not durably); a failed write is
  // retried by the flush timer.
  void save_loop_state();
  void schedule_flush();
  void publish_tokens();

  CoreOptions options_;
  SensorLinkFactory links_;
  std::optional<Edge> edge_;  // the executor's, once started
  Registry registry_;
  QocTable table_;
  std::map<std::string, SensorEntry> sensors_;
  std::vector<std::shared_ptr<SensorLink>> retired_;
  // The edge share last set per (process, stream): unchanged shares are not
  // written again (each write also rewrites the Edge's state file).
  std::map<std::pair<std::string, StreamKey>, Policy> applied_;
  FanOut<PolicyChange> policy_watches_;
  std::unique_ptr<SampleHub<StatsSnapshot>> stats_watches_;
  bool flush_pending_ = false;
  std::unique_ptr<boost::asio::steady_timer> flush_timer_;
  const std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();

  // Shared with other threads.
  std::atomic<bool> ready_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> keep_{false};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> epoch_{0};
  mutable std::mutex start_mu_;
  bool started_ = false;  // start_mu_
  Status start_status_;   // start_mu_
  mutable std::mutex tokens_mu_;
  std::shared_ptr<const std::map<std::string, std::string>> tokens_;  // name -> hash; tokens_mu_
  std::thread starter_;
  Executor executor_;  // last: its thread ends first
};

}  // namespace qocnet::control
