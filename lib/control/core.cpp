// SPDX-License-Identifier: Apache-2.0
#include "control/core.hpp"

#include <algorithm>
#include <future>
#include <cmath>
#include <set>

#include "control/daemon_state.hpp"

namespace qocnet::control {

namespace {

// How long after a failed write of the loop state (requirements, targets) it
// is tried again.
constexpr std::chrono::milliseconds kFlushDelay{1000};

Status unavailable_stopping() { return make_error(Errc::unavailable, "qocnetd is shutting down", ""); }

Error out_of_range(const char* what, double v, const QocTable& t, const std::string& fix) {
  return make_error(Errc::invalid_argument,
                    std::string(what) + " " + std::to_string(v) + " is not in [0, " + std::to_string(t.lossless()) +
                        "]",
                    fix);
}

}  // namespace

ControlCore::ControlCore(CoreOptions options, SensorLinkFactory links)
    : options_(std::move(options)),
      links_(std::move(links)),
      table_(options_.table ? *options_.table : QocTable::paper_default()),
      tokens_(std::make_shared<const std::map<std::string, std::string>>()) {
  stats_watches_ = std::make_unique<SampleHub<StatsSnapshot>>(executor_.context(), [this] { return sample(); });
  flush_timer_ = std::make_unique<boost::asio::steady_timer>(executor_.context());
}

ControlCore::~ControlCore() { stop(); }

void ControlCore::start(std::function<void(const Status&)> done) {
  starter_ = std::thread([this, done = std::move(done)] {
    // Compiling takes a second or more: calls meanwhile get unavailable at
    // once (ready() says so), they do not queue behind it.
    auto edge = std::make_shared<Result<Edge>>(Edge::create(options_.edge));
    executor_.post([this, edge, done] {
      Status s;
      if (*edge) {
        edge_.emplace(std::move(*edge).value());
        edge_->keep_datapath(keep_.load());
        s = cancelled_ ? unavailable_stopping() : start_on_executor();
      } else {
        s = std::move(*edge).error().context("start the edge datapath");
      }
      {
        std::lock_guard lock(start_mu_);
        start_status_ = s;
        started_ = true;
      }
      ready_ = s.ok();
      if (done && !cancelled_) done(s);
    });
  });
}

void ControlCore::cancel_start() {
  cancelled_ = true;
  if (starter_.joinable()) starter_.join();
}

void ControlCore::close_watches() {
  executor_.post([this] {
    const Status bye = unavailable_stopping();
    policy_watches_.close_all(bye);
    stats_watches_->close_all(bye);
  });
}

Status ControlCore::start_on_executor() {
  // The QoC table is the Edge's: a pinned edge brings back the one it had;
  // the configuration's replaces it.
  if (options_.table) QOCNET_TRY(edge_->replace_qoc_table(*options_.table));
  table_ = edge_->qoc_table();
  // A re-adopted datapath already has what the configuration lists; the
  // configuration is applied on top (what exists is left as it is).
  const auto attached = edge_->attached_ports();
  for (const auto& port : options_.ports)
    if (std::find(attached.begin(), attached.end(), port) == attached.end()) QOCNET_TRY(edge_->attach_port(port));
  for (const auto& pair : options_.pairs) QOCNET_TRY(edge_->set_port_pair(pair.ingress, pair.egress));
  const auto known = edge_->processes();
  for (const auto& spec : options_.processes) {
    auto same = std::find_if(known.begin(), known.end(), [&](const ProcessSpec& p) { return p.name == spec.name; });
    if (same == known.end()) QOCNET_TRY(edge_->add_process(spec));
    registry_.add(spec.name);
  }
  for (const auto& p : known) registry_.add(p.name);
  // What an adopted datapath applies becomes what its processes want,
  // unless the state file says better (below).
  if (auto streams = edge_->streams(); streams)
    for (const auto& st : *streams)
      if (auto ts = edge_->target_stats(stream_id_of(st.key)); ts)
        for (const auto& t : *ts) registry_.demand(t.process, st.key).wanted = t.policy;
  // Tokens of processes the datapath still has come back; an epoch after
  // every earlier qocnetd's orders this edge's pushes after theirs.
  DaemonState state;
  if (!options_.state_file.empty()) {
    QOCNET_ASSIGN(loaded, load_daemon_state(options_.state_file));
    state = std::move(loaded);
  }
  registry_.restore(state);
  publish_tokens();
  epoch_ = next_epoch(state.epoch);
  QOCNET_TRY(save_state(true));
  for (const auto& s : options_.sensors) sensors_[s.name] = make_sensor(s);
  for (const auto& s : options_.streams) {
    QOCNET_ASSIGN(key, stream_key(s.stream));
    QOCNET_TRY(edge_->set_clone_targets(s.stream, s.targets));
    for (const auto& name : s.targets) {
      auto& d = registry_.demand(name, key);
      auto it = s.policies.find(name);
      d.wanted = it == s.policies.end() ? Policy::keep() : it->second;
    }
    QOCNET_TRY(apply_stream(key, "config"));
  }
  return {};
}

Status ControlCore::ready() const {
  std::lock_guard lock(start_mu_);
  return require_ready();
}

Status ControlCore::require_ready() const {
  if (!started_)
    return make_error(Errc::unavailable, "the datapath is still compiling",
                      "retry in a moment (the health service says SERVING once it is up)");
  return start_status_;
}

void ControlCore::keep_datapath(bool keep) {
  keep_ = keep;
  executor_.post([this, keep] {
    if (edge_) edge_->keep_datapath(keep);
  });
}

void ControlCore::stop() {
  if (stopped_.exchange(true)) return;
  cancel_start();
  // On the executor: end the watches, write what the loop left, hand over
  // the sensor links.
  std::promise<std::vector<std::shared_ptr<SensorLink>>> drained;
  auto links = drained.get_future();
  executor_.post([this, &drained] {
    const Status bye = unavailable_stopping();
    policy_watches_.close_all(bye);
    stats_watches_->close_all(bye);
    flush_timer_->cancel();
    if (edge_ && flush_pending_) (void)save_state(false);
    if (edge_) edge_->keep_datapath(keep_.load());
    std::vector<std::shared_ptr<SensorLink>> all;
    for (auto& [name, s] : sensors_)
      if (s.link) all.push_back(s.link);
    all.insert(all.end(), retired_.begin(), retired_.end());
    drained.set_value(std::move(all));
  });
  // Links report through the executor, which still runs while they stop.
  for (auto& l : links.get()) l->stop();
  executor_.stop();
  stats_watches_.reset();
  flush_timer_.reset();
  sensors_.clear();
  retired_.clear();
  edge_.reset();  // detaches unless keep_datapath
}

Status ControlCore::check_token(const std::string& name, const std::string& token) const {
  std::shared_ptr<const std::map<std::string, std::string>> tokens;
  {
    std::lock_guard lock(tokens_mu_);
    tokens = tokens_;
  }
  if (Status st = ready(); !st) return st;
  auto it = tokens->find(name);
  return check_token_hash(name, it == tokens->end() ? nullptr : &it->second, token);
}

void ControlCore::publish_tokens() {
  auto next = std::make_shared<std::map<std::string, std::string>>();
  for (const auto& [name, p] : registry_.processes()) next->emplace(name, p.token_hash);
  std::lock_guard lock(tokens_mu_);
  tokens_ = std::move(next);
}

template <class T, class F>
void ControlCore::run(Done<T> done, F f) {
  executor_.post([this, done = std::move(done), f = std::move(f)]() mutable {
    Status st;
    {
      std::lock_guard lock(start_mu_);
      st = require_ready();
    }
    if (!st) return done(std::move(st).error());
    done(f());
  });
}

void ControlCore::run_status(DoneStatus done, std::function<Status()> f) {
  executor_.post([this, done = std::move(done), f = std::move(f)] {
    Status st;
    {
      std::lock_guard lock(start_mu_);
      st = require_ready();
    }
    done(st ? f() : st);
  });
}

// --- state --------------------------------------------------------------------

Status ControlCore::save_state(bool durable) {
  if (options_.state_file.empty()) return {};
  DaemonState state;
  state.epoch = epoch_.load();
  registry_.save(state);
  if (Status st = save_daemon_state(options_.state_file, state, durable); !st) return st;
  flush_pending_ = false;
  return {};
}

void ControlCore::save_loop_state() {
  // Written at once (not durably: a crash of the machine may lose it, a
  // kill -9 of qocnetd does not); a write that fails is retried by the
  // flush timer until one succeeds.
  if (options_.state_file.empty()) return;
  if (!save_state(false)) schedule_flush();
}

void ControlCore::schedule_flush() {
  if (flush_pending_) return;
  flush_pending_ = true;
  flush_timer_->expires_after(kFlushDelay);
  flush_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || !flush_pending_) return;
    flush_pending_ = false;
    save_loop_state();
  });
}

// --- streams, sensors ---------------------------------------------------------------

Result<std::vector<std::string>> ControlCore::targets_of(const StreamKey& stream) const {
  std::vector<std::string> names;
  auto ts = edge_->target_stats(stream_id_of(stream));
  if (!ts) {
    if (ts.error().code == Errc::not_found) return names;  // not replicated yet
    return ts.error();
  }
  for (const auto& t : *ts) names.push_back(t.process);
  return names;
}

ControlCore::SensorEntry* ControlCore::sensor_of(const StreamKey& stream) {
  for (auto& [name, s] : sensors_)
    for (const auto& id : s.config.streams)
      if (auto k = stream_key(id); k && *k == stream) return &s;
  return nullptr;
}

ControlCore::SensorEntry ControlCore::make_sensor(const SensorConfig& config) {
  SensorEntry e;
  e.config = config;
  if (!links_) return e;
  // The link reports from its own thread: the report is posted here, and
  // dropped if the sensor (or this very link) is gone by then.
  auto holder = std::make_shared<const SensorLink*>(nullptr);
  SensorEvents events;
  events.epoch = [this] { return epoch_.load(); };
  events.result = [this, name = config.name, holder](const SensorPush& p, const Status& outcome) {
    executor_.post([this, name, holder, p, outcome] { pushed(name, *holder, p, outcome); });
  };
  events.stale = [this] { executor_.post([this] { bump_epoch(); }); };
  e.link = std::shared_ptr<SensorLink>(links_(config, std::move(events)));
  *holder = e.link.get();
  return e;
}

void ControlCore::pushed(const std::string& sensor, const SensorLink* link, const SensorPush& push,
                         const Status& outcome) {
  auto it = sensors_.find(sensor);
  if (it == sensors_.end() || it->second.link.get() != link || !edge_) return;  // removed meanwhile
  SensorEntry& s = it->second;
  if (!outcome) {
    s.last_error = outcome.error().message;
    return;
  }
  s.last_error.clear();
  auto key = stream_key(push.stream);
  if (!key) return;
  // The agent applies it now: the edge drops only what is left to drop.
  s.applied[*key] = push.policy;
  (void)apply_edge(*key);
}

void ControlCore::bump_epoch() {
  epoch_ = next_epoch(epoch_.load());
  (void)save_state(true);
}

Status ControlCore::apply_edge(const StreamKey& stream) {
  QOCNET_ASSIGN(targets, targets_of(stream));
  Policy at_sensor = Policy::keep();
  // A sensor that has not acknowledged (yet, or at all) keeps what it last
  // did; the edge drops the rest, so every process still gets what it wants.
  if (SensorEntry* sensor = sensor_of(stream))
    if (auto it = sensor->applied.find(stream); it != sensor->applied.end()) at_sensor = it->second;
  for (const auto& name : targets) {
    const Policy share = edge_share(registry_.demand(name, stream).wanted, at_sensor);
    const auto key = std::make_pair(name, stream);
    if (auto it = applied_.find(key); it != applied_.end() && it->second == share) continue;
    QOCNET_TRY(edge_->set_policy(name, stream_id_of(stream), share));
    applied_[key] = share;
  }
  return {};
}

Status ControlCore::apply_stream(const StreamKey& stream, const char* reason) {
  QOCNET_ASSIGN(targets, targets_of(stream));
  std::vector<Policy> wanted;
  for (const auto& name : targets) wanted.push_back(registry_.demand(name, stream).wanted);
  const Policy effective = control::effective_policy(wanted);
  const std::uint64_t generation = ++generation_;
  if (SensorEntry* sensor = sensor_of(stream); sensor && sensor->link) {
    auto q = sensor->queued.find(stream);
    if (q == sensor->queued.end() || !(q->second == effective)) {
      sensor->queued[stream] = effective;
      sensor->link->push(SensorPush{stream_id_of(stream), effective, generation});
    }
  }
  QOCNET_TRY(apply_edge(stream));
  for (const auto& name : targets) notify(name, registry_.demand(name, stream), reason);
  save_loop_state();
  return {};
}

StreamPolicy ControlCore::stream_policy(const Demand& d) const {
  return StreamPolicy{d.stream, d.wanted, d.required, d.target, d.measured};
}

void ControlCore::notify(const std::string& process, const Demand& d, const char* reason) {
  policy_watches_.publish(process, PolicyChange{stream_policy(d), reason, generation_.load()});
}

// --- ControlService -------------------------------------------------------------------

void ControlCore::attach_port(std::string port, DoneStatus done) {
  run_status(std::move(done), [this, port = std::move(port)] { return edge_->attach_port(port); });
}

void ControlCore::detach_port(std::string port, DoneStatus done) {
  run_status(std::move(done), [this, port = std::move(port)] { return edge_->detach_port(port); });
}

void ControlCore::set_port_pair(PortPair pair, DoneStatus done) {
  run_status(std::move(done), [this, pair = std::move(pair)] { return edge_->set_port_pair(pair.ingress, pair.egress); });
}

void ControlCore::remove_port_pair(std::string ingress, DoneStatus done) {
  run_status(std::move(done), [this, ingress = std::move(ingress)] { return edge_->remove_port_pair(ingress); });
}

void ControlCore::port_pairs(Done<std::vector<PortPair>> done) {
  run<std::vector<PortPair>>(std::move(done), [this] { return edge_->port_pairs(); });
}

void ControlCore::port_counters(std::vector<std::string> ports, Done<std::vector<PortCounters>> done) {
  run<std::vector<PortCounters>>(std::move(done),
                                 [this, ports = std::move(ports)]() -> Result<std::vector<PortCounters>> {
                                   if (ports.empty()) return edge_->all_port_counters();
                                   std::vector<PortCounters> all;
                                   for (std::size_t i = 0; i < ports.size(); ++i) {
                                     auto c = edge_->port_counters(ports[i]);
                                     if (!c) return std::move(c).error().context("ports[" + std::to_string(i) + "]");
                                     all.push_back(*c);
                                   }
                                   return all;
                                 });
}

void ControlCore::add_process(ProcessSpec spec, DoneStatus done) {
  run_status(std::move(done), [this, spec = std::move(spec)] { return edge_->add_process(spec); });
}

Status ControlCore::remove_process_now(const std::string& name) {
  if (!registry_.contains(name)) return edge_->remove_process(name);  // the library's not_found
  const std::vector<StreamKey> streams = registry_.streams_of(name);
  QOCNET_TRY(edge_->remove_process(name));
  const bool had_token = registry_.find(name)->registered();
  registry_.erase(name);
  publish_tokens();
  if (had_token) (void)save_state(true);  // a failed write leaves a token of a gone process: harmless
  std::erase_if(applied_, [&](const auto& e) { return e.first.first == name; });
  for (const auto& s : streams) QOCNET_TRY(apply_stream(s, "process left"));
  policy_watches_.close(name, make_error(Errc::not_found, "process '" + name + "' was removed", ""));
  return {};
}

void ControlCore::remove_process(std::string name, DoneStatus done) {
  run_status(std::move(done), [this, name = std::move(name)] { return remove_process_now(name); });
}

void ControlCore::processes(Done<std::vector<ProcessSpec>> done) {
  run<std::vector<ProcessSpec>>(std::move(done), [this] { return Result<std::vector<ProcessSpec>>(edge_->processes()); });
}

void ControlCore::set_clone_targets(StreamKey stream, std::vector<std::string> processes, DoneStatus done) {
  run_status(std::move(done), [this, stream, processes = std::move(processes)]() -> Status {
    QOCNET_ASSIGN(before, targets_of(stream));
    QOCNET_TRY(edge_->set_clone_targets(stream_id_of(stream), processes));
    std::erase_if(applied_, [&](const auto& e) { return e.first.second == stream; });
    for (const auto& name : before)
      if (std::find(processes.begin(), processes.end(), name) == processes.end()) registry_.drop_demand(name, stream);
    for (const auto& name : processes) registry_.demand(name, stream);  // new ones: keep
    return apply_stream(stream, "operator");
  });
}

void ControlCore::set_policy(std::string process, StreamKey stream, Policy policy, DoneStatus done) {
  run_status(std::move(done), [this, process = std::move(process), stream, policy]() -> Status {
    QOCNET_TRY(validate(policy));
    QOCNET_ASSIGN(targets, targets_of(stream));
    if (std::find(targets.begin(), targets.end(), process) == targets.end()) {
      // The library names the precise problem (unknown process, not a target).
      QOCNET_TRY(edge_->set_policy(process, stream_id_of(stream), policy));
    }
    auto& d = registry_.demand(process, stream);
    d.wanted = policy;
    d.required = d.target = 0;
    return apply_stream(stream, "operator");
  });
}

void ControlCore::target_stats(StreamKey stream, Done<std::vector<TargetStats>> done) {
  // The stream's targets, then the processes that left it (departed).
  run<std::vector<TargetStats>>(std::move(done), [this, stream]() -> Result<std::vector<TargetStats>> {
    auto now = edge_->target_stats(stream_id_of(stream));
    QOCNET_ASSIGN(gone, edge_->departed_stats(stream_id_of(stream)));
    if (!now && (now.error().code != Errc::not_found || gone.empty())) return now;
    std::vector<TargetStats> all = now ? std::move(*now) : std::vector<TargetStats>{};
    all.insert(all.end(), gone.begin(), gone.end());
    return all;
  });
}

Result<StreamPolicy> ControlCore::set_requirement_now(const std::string& process, const StreamKey& stream,
                                                      double required, const char* reason) {
  if (!registry_.contains(process)) return unknown_process(process);
  if (!std::isfinite(required) || required < 0 || required > table_.lossless())
    return make_error(Errc::invalid_argument,
                      "required " + std::to_string(required) + " is not in [0, " + std::to_string(table_.lossless()) +
                          "] (" + table_.metric() + ")",
                      "give the QoC the process needs, at most the loss-free value");
  QOCNET_ASSIGN(targets, targets_of(stream));
  if (std::find(targets.begin(), targets.end(), process) == targets.end())
    return make_error(Errc::failed_precondition,
                      "process '" + process + "' is not a clone target of stream " + to_string(stream),
                      "set its clone targets first (SetCloneTargets) or register the process with the stream");
  auto& d = registry_.demand(process, stream);
  d.wanted = start_loop(d, required);
  QOCNET_TRY(apply_stream(stream, reason));
  return stream_policy(d);
}

Policy ControlCore::start_loop(Demand& d, double required) const {
  d.required = required;
  if (!d.changed) d.before = d.wanted;
  d.changed = true;
  d.target = required;
  d.model = QocModel(table_, options_.loop);
  // The table's own answer (no margin): the reports then correct it.
  auto p = policy_for(table_, required);
  return p ? *p : Policy::keep();
}

void ControlCore::set_requirement(std::string process, StreamKey stream, double required, Done<StreamPolicy> done) {
  run<StreamPolicy>(std::move(done), [this, process = std::move(process), stream, required] {
    return set_requirement_now(process, stream, required, "operator");
  });
}

const StreamReport* ControlCore::find_report(const StatsSnapshot& snapshot, const StreamKey& stream) {
  for (const auto& r : snapshot.streams)
    if (r.stream.key == stream && !r.targets.empty()) return &r;
  return nullptr;
}

void ControlCore::effective_policy(StreamKey stream, Done<Policy> done) {
  run<Policy>(std::move(done), [this, stream]() -> Result<Policy> {
    // Over what the processes want (the sample's), for a stream the DPI has
    // seen; else the Edge's own Eq. 3, which names why there is none.
    QOCNET_ASSIGN(snapshot, sample());
    if (const StreamReport* r = find_report(snapshot, stream)) return r->effective;
    return edge_->effective_policy(stream_id_of(stream));
  });
}

void ControlCore::stream_bandwidth(StreamKey stream, Done<StreamBandwidth> done) {
  run<StreamBandwidth>(std::move(done), [this, stream]() -> Result<StreamBandwidth> {
    QOCNET_ASSIGN(snapshot, sample());
    if (const StreamReport* r = find_report(snapshot, stream))
      return StreamBandwidth{r->bandwidth, static_cast<std::uint32_t>(r->targets.size())};
    const StreamId id = stream_id_of(stream);
    StreamBandwidth out;
    QOCNET_ASSIGN(b, edge_->stream_bandwidth(id));  // names why there is none
    out.bandwidth = b;
    if (auto ts = edge_->target_stats(id); ts) out.processes = static_cast<std::uint32_t>(ts->size());
    return out;
  });
}

void ControlCore::qoc_table(Done<QocTable> done) {
  run<QocTable>(std::move(done), [this] { return Result<QocTable>(table_); });
}

void ControlCore::set_qoc_table(QocTable table, DoneStatus done) {
  run_status(std::move(done), [this, table = std::move(table)]() -> Status {
    // Every requirement must still be reachable before anything changes.
    std::set<std::pair<std::string, StreamKey>> next;
    for (const auto& [name, p] : registry_.processes())
      for (const auto& [key, d] : p.demands) {
        if (d.required <= 0) continue;
        if (d.required > table.lossless())
          return out_of_range("required", d.required, table, "lower the requirement first")
              .context("process '" + name + "' on " + to_string(key));
        next.insert({name, key});
      }
    // The Edge keeps its old table when the new one cannot be saved: so does
    // the core, and the caller hears why.
    QOCNET_TRY(edge_->replace_qoc_table(table));
    table_ = table;
    // The loop starts again from the new table's curves.
    std::set<StreamKey> touched;
    for (const auto& k : next) {
      Demand& d = registry_.demand(k.first, k.second);
      d.wanted = start_loop(d, d.required);
      touched.insert(k.second);
    }
    for (const auto& key : touched) QOCNET_TRY(apply_stream(key, "qoc table"));
    return {};
  });
}

void ControlCore::streams(Done<std::vector<StreamStats>> done) {
  run<std::vector<StreamStats>>(std::move(done), [this] { return edge_->streams(); });
}

void ControlCore::dpi_counters(Done<DpiCounters> done) {
  run<DpiCounters>(std::move(done), [this] { return edge_->dpi_counters(); });
}

void ControlCore::reset_streams(DoneStatus done) {
  run_status(std::move(done), [this] { return edge_->reset_streams(); });
}

void ControlCore::add_sensor(SensorConfig sensor, DoneStatus done) {
  run_status(std::move(done), [this, sensor = std::move(sensor)]() -> Status {
    if (sensors_.count(sensor.name))
      return make_error(Errc::already_exists, "sensor '" + sensor.name + "' exists",
                        "remove it first or pick another name");
    std::vector<StreamKey> keys;
    for (const auto& s : sensor.streams) {
      QOCNET_ASSIGN(key, stream_key(s));
      if (SensorEntry* other = sensor_of(key))
        return make_error(Errc::already_exists,
                          "stream " + to_string(s) + " is already sent by sensor '" + other->config.name + "'",
                          "a stream has one sensor; remove the other first");
      keys.push_back(key);
    }
    sensors_[sensor.name] = make_sensor(sensor);
    for (const auto& key : keys) {
      auto st = apply_stream(key, "sensor");
      if (!st) {
        auto link = sensors_[sensor.name].link;
        if (link) {
          link->retire();
          retired_.push_back(link);
        }
        sensors_.erase(sensor.name);
        return st;
      }
    }
    return {};
  });
}

void ControlCore::remove_sensor(std::string name, DoneStatus done) {
  run_status(std::move(done), [this, name = std::move(name)]() -> Status {
    auto it = sensors_.find(name);
    if (it == sensors_.end())
      return make_error(Errc::not_found, "no sensor '" + name + "'", "ListSensors shows the sensors");
    // The sensor goes back to sending everything (its link's last pushes,
    // sent once off the executor); the edge drops it all again.
    const std::uint64_t generation = ++generation_;
    if (auto& link = it->second.link) {
      for (const auto& s : it->second.config.streams) link->push(SensorPush{s, Policy::keep(), generation});
      link->retire();
      retired_.push_back(link);
    }
    std::erase_if(retired_, [](const auto& l) { return l->pending() == 0; });
    std::vector<StreamKey> keys;
    for (const auto& s : it->second.config.streams)
      if (auto k = stream_key(s)) keys.push_back(*k);
    sensors_.erase(it);
    for (const auto& k : keys) QOCNET_TRY(apply_stream(k, "sensor"));
    return {};
  });
}

void ControlCore::sensors(Done<std::vector<SensorView>> done) {
  run<std::vector<SensorView>>(std::move(done), [this]() -> Result<std::vector<SensorView>> {
    std::vector<SensorView> out;
    for (const auto& [name, s] : sensors_) {
      SensorView v{name, s.config.address, s.config.streams, std::nullopt, s.last_error};
      if (!s.config.streams.empty())
        if (auto k = stream_key(s.config.streams.front()))
          if (auto it = s.applied.find(*k); it != s.applied.end()) v.applied = it->second;
      out.push_back(std::move(v));
    }
    return out;
  });
}

void ControlCore::status(Done<CoreStatus> done) {
  run<CoreStatus>(std::move(done), [this]() -> Result<CoreStatus> {
    CoreStatus s;
    s.ports = edge_->attached_ports();
    s.programs = edge_->programs();
    s.adopted = edge_->start_info().adopted;
    s.compile_seconds = edge_->start_info().compile_seconds;
    s.generation = generation_.load();
    s.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
    return s;
  });
}

Result<StatsSnapshot> ControlCore::sample() const {
  StatsSnapshot u;
  u.monotonic_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  u.generation = generation_.load();
  QOCNET_ASSIGN(streams, edge_->streams());
  for (const auto& st : streams) {
    StreamReport r;
    r.stream = st;
    const StreamId id = stream_id_of(st.key);
    std::vector<Policy> wanted;
    if (auto ts = edge_->target_stats(id); ts) {
      for (const auto& t : *ts) {
        r.targets.push_back(t);
        const Demand* d = registry_.find_demand(t.process, st.key);
        r.requirements.push_back(d ? stream_policy(*d) : StreamPolicy{st.key, t.policy, 0, 0, std::nullopt});
        wanted.push_back(d ? d->wanted : t.policy);
      }
    }
    r.effective = control::effective_policy(wanted);
    double full = 0;
    for (auto b : st.bytes) full += static_cast<double>(b);
    r.bandwidth = bandwidth(full, wanted.size(), r.effective);
    u.streams.push_back(std::move(r));
  }
  if (auto ports = edge_->all_port_counters(); ports) u.ports = std::move(ports).value();
  QOCNET_ASSIGN(dpi, edge_->dpi_counters());
  u.dpi = dpi;
  return u;
}

void ControlCore::stats(Done<StatsSnapshot> done) {
  run<StatsSnapshot>(std::move(done), [this] { return sample(); });
}

void ControlCore::watch_stats(SubscriberPtr<StatsSnapshot> subscriber, std::chrono::milliseconds interval,
                              std::uint32_t count) {
  executor_.post([this, subscriber = std::move(subscriber), interval, count]() mutable {
    Status st;
    {
      std::lock_guard lock(start_mu_);
      st = require_ready();
    }
    if (!st) return subscriber->close(st);
    stats_watches_->subscribe(std::move(subscriber), interval, count,
                              [](StatsSnapshot& s, std::uint64_t seq) { s.sequence = seq; });
  });
}

void ControlCore::unwatch_stats(const Subscriber<StatsSnapshot>* subscriber) {
  executor_.post([this, subscriber] {
    if (stats_watches_) stats_watches_->unsubscribe(subscriber);
  });
}

// --- QocService -------------------------------------------------------------------------

void ControlCore::register_process(ProcessSpec spec, std::vector<StreamKey> streams, double required,
                                   Done<Registration> done) {
  run<Registration>(std::move(done), [this, spec = std::move(spec), streams = std::move(streams),
                                      required]() -> Result<Registration> {
    if (registry_.contains(spec.name))
      return make_error(Errc::already_exists, "process '" + spec.name + "' is already registered",
                        "pick another name, or unregister the old one with its token");
    if (streams.empty())
      return make_error(Errc::invalid_argument, "streams is empty", "name at least one stream the process consumes");
    if (!std::isfinite(required) || required < 0 || required > table_.lossless())
      return out_of_range("required", required, table_, "give the QoC the process needs (0: everything)");
    // Check every stream's new target list fits before anything changes.
    std::vector<std::vector<std::string>> lists;
    for (const auto& s : streams) {
      QOCNET_ASSIGN(t, targets_of(s));
      t.push_back(spec.name);
      lists.push_back(std::move(t));
    }
    QOCNET_TRY(edge_->add_process(spec));
    Status failed;
    for (std::size_t i = 0; i < streams.size(); ++i)
      if (auto st = edge_->set_clone_targets(stream_id_of(streams[i]), lists[i]); !st) {
        failed = st;
        break;
      }
    if (!failed.ok()) {  // undo: a failed call changes nothing
      (void)edge_->remove_process(spec.name);
      return std::move(failed).error();
    }
    std::erase_if(applied_, [&](const auto& e) { return e.first.first == spec.name; });
    Registration out;
    out.token = registry_.issue_token(spec.name);
    if (auto saved = save_state(true); !saved) {  // a token that would not survive a restart is not handed out
      (void)edge_->remove_process(spec.name);
      registry_.erase(spec.name);
      return std::move(saved).error().context("keep the token of process '" + spec.name + "'");
    }
    publish_tokens();
    for (const auto& s : streams) {
      auto& d = registry_.demand(spec.name, s);
      d.wanted = start_loop(d, required);
    }
    for (const auto& s : streams) QOCNET_TRY(apply_stream(s, "registered"));
    for (const auto& s : streams) out.policies.push_back(stream_policy(registry_.demand(spec.name, s)));
    return out;
  });
}

void ControlCore::unregister_process(std::string name, DoneStatus done) { remove_process(std::move(name), std::move(done)); }

void ControlCore::report_requirement(std::string name, std::optional<StreamKey> stream, double required,
                                     Done<std::vector<StreamPolicy>> done) {
  run<std::vector<StreamPolicy>>(std::move(done), [this, name = std::move(name), stream,
                                                   required]() -> Result<std::vector<StreamPolicy>> {
    std::vector<StreamKey> streams;
    for (const auto& key : registry_.streams_of(name))
      if (!stream || key == *stream) streams.push_back(key);
    if (streams.empty())
      return make_error(Errc::not_found,
                        stream ? "process '" + name + "' does not consume stream " + to_string(*stream)
                               : "process '" + name + "' consumes no stream",
                        "name one of the streams it registered with");
    std::vector<StreamPolicy> out;
    for (const auto& s : streams) {
      QOCNET_ASSIGN(sp, set_requirement_now(name, s, required, "requirement"));
      out.push_back(sp);
    }
    return out;
  });
}

void ControlCore::report_measured(std::string name, std::optional<StreamKey> stream, double measured,
                                  Done<Measurement> done) {
  run<Measurement>(std::move(done), [this, name = std::move(name), stream, measured]() -> Result<Measurement> {
    if (!registry_.contains(name)) return unknown_process(name);
    if (!std::isfinite(measured) || measured < 0 || measured > table_.lossless())
      return out_of_range("measured", measured, table_, "report the metric the process measured over its last interval");
    QOCNET_ASSIGN(d, registry_.demand_for(name, stream));
    d->measured = measured;
    // No requirement (or one an operator's policy replaced): nothing to hold.
    if (d->required <= 0) return Measurement{stream_policy(*d), LoopAction::held};
    if (d->model.empty()) d->model = QocModel(table_, options_.loop);  // restored from a saved state
    d->model.observe(d->wanted, measured, d->changed ? &d->before : nullptr, d->required);
    d->changed = false;
    // The drop order the stream's other frame_aware processes share (none:
    // no other, or they differ): the sensor drops for the stream only what
    // all drop alike (Eq. 3), so the loop keeps to it where it costs
    // little, and probes other orders only on a stream of its own.
    std::optional<DropOrder> share;
    bool others = false, mixed = false;
    if (auto targets = targets_of(d->stream); targets)
      for (const auto& other : *targets) {
        if (other == name) continue;
        const Policy& w = registry_.demand(other, d->stream).wanted;
        if (w.kind != PolicyKind::frame_aware || w.drop <= 0) continue;
        if (others && share != w.order) mixed = true;
        others = true;
        share = w.order;
      }
    if (mixed) share.reset();
    QocModel::Choice c = d->model.choose(d->required, d->wanted, share);
    if (c.policy == d->wanted && !others)
      if (auto p = d->model.probe(d->required, d->wanted)) c.policy = *p;  // another drop order
    const LoopAction action = action_of(d->wanted, c.policy);
    d->target = c.expected;
    if (!(c.policy == d->wanted)) {
      if (!d->changed) d->before = d->wanted;
      d->wanted = c.policy;
      d->changed = true;
      QOCNET_TRY(apply_stream(d->stream, "measured"));
    }
    return Measurement{stream_policy(*d), action};
  });
}

void ControlCore::watch_policy(std::string name, SubscriberPtr<PolicyChange> subscriber, DoneStatus done) {
  run_status(std::move(done), [this, name = std::move(name), subscriber = std::move(subscriber)]() -> Status {
    const ProcessRecord* p = registry_.find(name);
    if (!p) return unknown_process(name);
    for (const auto& [key, d] : p->demands)
      subscriber->deliver(PolicyChange{stream_policy(d), "current", generation_.load()});
    policy_watches_.subscribe(name, subscriber);
    return {};
  });
}

void ControlCore::unwatch_policy(const Subscriber<PolicyChange>* subscriber) {
  executor_.post([this, subscriber] { policy_watches_.unsubscribe(subscriber); });
}

}  // namespace qocnet::control
