// qocnet::grpc_api::Controller — the one place that owns the edge datapath in
// qocnetd. gRPC handlers validate and translate, then call in here; every
// change runs under one lock, so calls from many clients apply one at a time.
// Nothing slow happens under that lock: pushes to sensors are queued to a
// SensorPusher per sensor, whose acknowledgements come back through pushed().
//
// It also holds what the library does not: the processes registered over
// QocService (their tokens, requirements and closed-loop state), the sensors
// the edge pushes effective policies to, and the watchers of policy changes.
//
// Policies in three places (docs/SERVICE.md, Feedback):
//   wanted    what a process needs of a stream (from its requirement through
//             the QoC table, or set by an operator);
//   sensor    the stream's effective policy (Eq. 3 over the wanted ones),
//             applied on the sensor's uplink when a sensor agent serves it;
//   edge      what the edge still drops for the process out of what arrives:
//             1 - (1 - wanted) / (1 - sensor), so wanted = sensor then edge.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/v1/control.pb.h"
#include "qocnet/v1/qoc.pb.h"
#include "control/policy_engine.hpp"
#include "convert.hpp"
#include "sensor_pusher.hpp"
#include "stream_writer.hpp"

namespace qocnet::grpc_api {

struct SensorConfig {
  std::string name;
  std::string address;  // gRPC target of its SensorService
  std::vector<StreamId> streams;
};

struct StreamConfig {
  StreamId stream;
  std::vector<std::string> targets;
  std::map<std::string, Policy> policies;  // by process
};

// Closed loop on measured QoC (docs/SERVICE.md): the policy engine's.
using LoopConfig = control::LoopConfig;

struct ControllerOptions {
  EdgeOptions edge;
  std::vector<std::string> ports;   // attached at start
  std::vector<PortPair> pairs;
  std::vector<ProcessSpec> processes;
  std::vector<StreamConfig> streams;
  std::vector<SensorConfig> sensors;
  std::optional<QocTable> table;    // default: the paper's Table 1
  LoopConfig loop;
  std::chrono::milliseconds sensor_timeout{1000};  // the deadline of one push
  SensorTls sensor_tls;                            // toward agents on TCP
  // Tokens (hashed) and the edge epoch across restarts; empty: not kept.
  std::filesystem::path state_file;
};

// A process's policy stream (QocService.WatchPolicy).
class Watch : public QueueWriter<v1::PolicyUpdate> {
 public:
  std::string process;
};

class Controller {
 public:
  explicit Controller(ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Compiles (or re-adopts) the datapath and applies the configuration, in a
  // background thread. `done` runs with the outcome once it is known.
  void start(std::function<void(const Status&)> done);
  // unavailable while the datapath is compiling; the start error if it failed.
  Status ready() const;
  bool is_ready() const { return ready_.load(); }
  // Leaves the datapath in the kernel when the controller goes away (also
  // when said while it is still compiling).
  void keep_datapath(bool keep);
  // Shutdown: a start still compiling does not apply the configuration (nor
  // call `done`); returns once the start thread has ended.
  void stop_start();
  // Stops every policy watch (shutdown).
  void close_watches();

  // Runs `f` on the edge under the lock; unavailable while compiling.
  Status with_edge(const std::function<Status(Edge&)>& f);
  Status with_edge(const std::function<Status(const Edge&)>& f) const;

  // ControlService calls that go beyond the library.
  Status remove_process(const std::string& name);
  Status set_clone_targets(const StreamId& stream, const std::vector<std::string>& processes);
  Status set_policy(const std::string& process, const StreamId& stream, const Policy& policy);
  Result<v1::StreamPolicy> set_requirement(const std::string& process, const StreamId& stream,
                                           double required, const char* reason);
  Status set_qoc_table(QocTable table);
  QocTable qoc_table() const;
  Status add_sensor(const SensorConfig& sensor);
  Status remove_sensor(const std::string& name);
  std::vector<v1::Sensor> sensors() const;
  Result<v1::StatsUpdate> stats() const;
  Result<v1::GetStatusResponse> status() const;
  std::uint64_t generation() const { return generation_.load(); }
  // This edge's epoch: orders its pushes to sensors before those of any
  // earlier qocnetd (docs/SERVICE.md, Feedback to the sensor).
  std::uint64_t epoch() const { return epoch_.load(); }

  // QocService.
  Result<v1::RegisterProcessResponse> register_process(const ProcessSpec& spec,
                                                       const std::vector<StreamId>& streams,
                                                       double required);
  // not_found for an unknown process, permission_denied for a wrong token.
  Status check_token(const std::string& name, const std::string& token) const;
  Status unregister_process(const std::string& name);
  Result<std::vector<v1::StreamPolicy>> report_requirement(const std::string& name,
                                                           const std::optional<StreamId>& stream,
                                                           double required);
  Result<v1::ReportMeasuredQocResponse> report_measured(const std::string& name,
                                                        const std::optional<StreamId>& stream,
                                                        double measured);
  // Registers a policy watch for `name`: sends every stream's policy now,
  // then each change. The watch unregisters itself when gRPC is done with it.
  Status add_watch(const std::string& name, Watch* watch);
  void remove_watch(Watch* watch);

 private:
  struct Demand {
    StreamId stream;
    double required = 0;  // 0: none reported
    double target = 0;    // after closed-loop correction
    Policy wanted;        // what the process gets end to end
  };
  struct Client {
    std::string token_hash;  // SHA-256 of its token; empty: added by an operator, not registered
    std::map<StreamKey, Demand> demands;  // by stream (value, not text)
  };
  struct SensorEntry {
    SensorConfig config;
    std::map<StreamKey, Policy> applied;  // by stream: last acknowledged
    std::map<StreamKey, Policy> queued;   // by stream: last handed to the pusher
    std::string last_error;
    std::shared_ptr<SensorPusher> pusher;
  };

  Status start_locked();
  Status require_ready() const;
  // Recomputes the stream's effective policy, pushes it to its sensor and sets
  // the edge's share of every target. Lock held.
  Status apply_stream(const StreamId& stream, const char* reason);
  Result<std::vector<std::string>> targets_of(const StreamId& stream) const;
  Demand& demand(const std::string& process, const StreamId& stream);
  Result<Policy> policy_for(double target) const;
  v1::StreamPolicy stream_policy(const Demand& d) const;
  void notify(const std::string& process, const Demand& d, const char* reason);
  SensorEntry* sensor_of(const StreamId& stream);
  // A sensor's entry with its pusher (started). Lock held.
  SensorEntry make_sensor(const SensorConfig& config);
  // Sets the edge's share of every target of `stream` against what its
  // sensor last acknowledged. Lock held.
  Status apply_edge(const StreamId& stream);
  // A pusher's report (its worker thread, no lock held).
  void pushed(const std::string& sensor, const SensorPusher* pusher, const SensorPush& push, const Status& outcome);
  // A sensor said it applied a later order than ours: a newer epoch.
  void bump_epoch();

  ControllerOptions options_;
  mutable std::mutex mu_;
  std::optional<Edge> edge_;
  std::atomic<bool> ready_{false};
  Status start_status_;
  bool started_ = false;
  bool keep_ = false;
  std::atomic<bool> cancel_{false};
  std::thread starter_;
  QocTable table_;
  std::map<std::string, Client> clients_;
  std::map<std::string, SensorEntry> sensors_;
  // Removed sensors' pushers, sending their last keep; stopped at the end.
  std::vector<std::shared_ptr<SensorPusher>> retired_;
  // The edge share last set per (process, stream key): unchanged shares are
  // not written again (each write also rewrites the Edge's state file).
  std::map<std::pair<std::string, StreamKey>, Policy> applied_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> epoch_{0};
  // Writes the registered processes (token hashes, demands) and the epoch to
  // options_.state_file; `durable`: fsync. Lock held.
  Status save_state(bool durable);
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();

  mutable std::mutex watch_mu_;
  std::multimap<std::string, Watch*> watches_;
};

}  // namespace qocnet::grpc_api
