#include "controller.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "convert.hpp"
#include "daemon_state.hpp"
#include "qocnet/v1/sensor.grpc.pb.h"

namespace qocnet::grpc_api {

namespace {

// Every StreamId reaching the controller was checked where it entered
// (from_proto, parse_stream_id); one that does not parse gets an all-ones
// address, which no real stream has, and fails in the library.
StreamKey key_of(const StreamId& s) {
  if (auto k = stream_key(s); k) return *k;
  StreamKey k;
  k.address.fill(0xff);
  k.source_port = s.source_port;
  k.destination_port = s.destination_port;
  return k;
}

Error unknown_process(const std::string& name) {
  return make_error(Errc::not_found, "no process '" + name + "'",
                    "register it (QocService.RegisterProcess) or add it (ControlService.AddProcess) first");
}

}  // namespace

Controller::Controller(ControllerOptions options)
    : options_(std::move(options)), table_(options_.table ? *options_.table : QocTable::paper_default()) {}

Controller::~Controller() {
  if (starter_.joinable()) starter_.join();
  // The pushers call back under the lock: stop them with it released.
  std::vector<std::shared_ptr<SensorPusher>> pushers;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, s] : sensors_)
      if (s.pusher) pushers.push_back(s.pusher);
    pushers.insert(pushers.end(), retired_.begin(), retired_.end());
  }
  for (auto& p : pushers) p->stop();
  close_watches();
}

void Controller::start(std::function<void(const Status&)> done) {
  starter_ = std::thread([this, done = std::move(done)] {
    Status s;
    // Compiling takes a second or more: calls meanwhile must get unavailable,
    // not wait for the lock.
    auto edge = Edge::create(options_.edge);
    {
      std::lock_guard lock(mu_);
      if (edge && cancel_) {
        edge_.emplace(std::move(edge).value());
        edge_->keep_datapath(keep_);
        s = make_error(Errc::unavailable, "qocnetd is shutting down", "");
      } else if (edge) {
        edge_.emplace(std::move(edge).value());
        edge_->keep_datapath(keep_);
        s = start_locked();
      } else {
        s = std::move(edge).error().context("start the edge datapath");
      }
      start_status_ = s;
      started_ = true;
      ready_ = s.ok();
    }
    if (done && !cancel_) done(s);
  });
}

void Controller::stop_start() {
  cancel_ = true;
  if (starter_.joinable()) starter_.join();
}

Status Controller::start_locked() {
  if (options_.table) QOCNET_TRY(edge_->replace_qoc_table(*options_.table));
  // A re-adopted datapath already has what the configuration lists; the
  // configuration is applied on top (what exists is left as it is).
  const auto attached = edge_->attached_ports();
  for (const auto& port : options_.ports)
    if (std::find(attached.begin(), attached.end(), port) == attached.end())
      QOCNET_TRY(edge_->attach_port(port));
  for (const auto& pair : options_.pairs) QOCNET_TRY(edge_->set_port_pair(pair.ingress, pair.egress));
  const auto known = edge_->processes();
  for (const auto& spec : options_.processes) {
    auto same = std::find_if(known.begin(), known.end(), [&](const ProcessSpec& p) { return p.name == spec.name; });
    if (same == known.end()) QOCNET_TRY(edge_->add_process(spec));
    clients_[spec.name];
  }
  for (const auto& p : known) clients_[p.name];
  // What an adopted datapath applies becomes what its processes want,
  // unless the state file says better (below).
  if (auto streams = edge_->streams(); streams)
    for (const auto& st : *streams) {
      const StreamId id = stream_of(st);
      if (auto ts = edge_->target_stats(id); ts)
        for (const auto& t : *ts) demand(t.process, id).wanted = t.policy;
    }
  // Tokens of processes the datapath still has come back; an epoch after
  // every earlier qocnetd's orders this edge's pushes after theirs.
  DaemonState state;
  if (!options_.state_file.empty()) {
    QOCNET_ASSIGN(loaded, load_daemon_state(options_.state_file));
    state = std::move(loaded);
  }
  for (const auto& [name, p] : state.processes) {
    auto it = clients_.find(name);
    if (it == clients_.end()) continue;  // gone with the datapath
    it->second.token_hash = p.token_hash;
    for (const auto& sd : p.demands) {
      auto id = parse_stream_id(sd.stream);
      auto wanted = parse_policy(sd.wanted);
      if (!id || !wanted) continue;
      auto& d = demand(name, *id);
      d.required = sd.required;
      d.target = sd.target;
      d.wanted = *wanted;
    }
  }
  epoch_ = next_epoch(state.epoch);
  QOCNET_TRY(save_state(true));
  for (const auto& s : options_.sensors) sensors_[s.name] = make_sensor(s);
  for (const auto& s : options_.streams) {
    QOCNET_TRY(edge_->set_clone_targets(s.stream, s.targets));
    for (const auto& name : s.targets) {
      auto& d = demand(name, s.stream);
      auto it = s.policies.find(name);
      d.wanted = it == s.policies.end() ? Policy::keep() : it->second;
    }
    QOCNET_TRY(apply_stream(s.stream, "config"));
  }
  // Each sensor learns this edge's policies (in its new epoch) at once.
  for (const auto& s : options_.sensors)
    for (const auto& id : s.streams) QOCNET_TRY(apply_stream(id, "restart"));
  return {};
}

Status Controller::save_state(bool durable) {
  if (options_.state_file.empty()) return {};
  DaemonState state;
  state.epoch = epoch_.load();
  for (const auto& [name, c] : clients_) {
    if (c.token_hash.empty()) continue;
    auto& p = state.processes[name];
    p.token_hash = c.token_hash;
    for (const auto& [key, d] : c.demands)
      p.demands.push_back(StoredDemand{to_string(d.stream), d.required, d.target, to_string(d.wanted)});
  }
  return save_daemon_state(options_.state_file, state, durable);
}

Status Controller::ready() const {
  std::lock_guard lock(mu_);
  return require_ready();
}

Status Controller::require_ready() const {
  if (!started_)
    return make_error(Errc::unavailable, "the datapath is still compiling",
                      "retry in a moment (the health service says SERVING once it is up)");
  return start_status_;
}

void Controller::keep_datapath(bool keep) {
  std::lock_guard lock(mu_);
  keep_ = keep;
  if (edge_) edge_->keep_datapath(keep);
}

void Controller::close_watches() {
  std::lock_guard lock(watch_mu_);
  for (auto& [name, w] : watches_) w->close(::grpc::Status(::grpc::StatusCode::UNAVAILABLE, "qocnetd is shutting down"));
}

Status Controller::with_edge(const std::function<Status(Edge&)>& f) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  return f(*edge_);
}

Status Controller::with_edge(const std::function<Status(const Edge&)>& f) const {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  return f(*edge_);
}

Controller::Demand& Controller::demand(const std::string& process, const StreamId& stream) {
  const StreamKey key = key_of(stream);
  auto& d = clients_[process].demands[key];
  d.stream = stream_id_of(key);
  return d;
}

Result<std::vector<std::string>> Controller::targets_of(const StreamId& stream) const {
  std::vector<std::string> names;
  auto ts = edge_->target_stats(stream);
  if (!ts) {
    if (ts.error().code == Errc::not_found) return names;  // not replicated yet
    return ts.error();
  }
  for (const auto& t : *ts) names.push_back(t.process);
  return names;
}

Controller::SensorEntry* Controller::sensor_of(const StreamId& stream) {
  const auto key = key_of(stream);
  for (auto& [name, s] : sensors_)
    for (const auto& id : s.config.streams)
      if (key_of(id) == key) return &s;
  return nullptr;
}

Controller::SensorEntry Controller::make_sensor(const SensorConfig& config) {
  SensorEntry e;
  e.config = config;
  auto holder = std::make_shared<const SensorPusher*>(nullptr);
  e.pusher = std::make_shared<SensorPusher>(
      config.name, config.address, options_.sensor_tls, options_.sensor_timeout, [this] { return epoch_.load(); },
      [this, name = config.name, holder](const SensorPush& p, const Status& outcome) {
        pushed(name, *holder, p, outcome);
      },
      [this] { bump_epoch(); });
  *holder = e.pusher.get();
  return e;
}

void Controller::pushed(const std::string& sensor, const SensorPusher* pusher, const SensorPush& push,
                        const Status& outcome) {
  std::lock_guard lock(mu_);
  auto it = sensors_.find(sensor);
  if (it == sensors_.end() || it->second.pusher.get() != pusher || !edge_) return;  // removed meanwhile
  SensorEntry& s = it->second;
  if (!outcome) {
    s.last_error = outcome.error().message;
    return;
  }
  s.last_error.clear();
  // The agent applies it now: the edge drops only what is left to drop.
  s.applied[key_of(push.stream)] = push.policy;
  (void)apply_edge(push.stream);
}

void Controller::bump_epoch() {
  std::lock_guard lock(mu_);
  epoch_ = next_epoch(epoch_.load());
  (void)save_state(true);
}

Status Controller::apply_edge(const StreamId& stream) {
  QOCNET_ASSIGN(targets, targets_of(stream));
  Policy at_sensor = Policy::keep();
  // A sensor that has not acknowledged (yet, or at all) keeps what it last
  // did; the edge drops the rest, so every process still gets what it wants.
  if (SensorEntry* sensor = sensor_of(stream))
    if (auto it = sensor->applied.find(key_of(stream)); it != sensor->applied.end()) at_sensor = it->second;
  for (const auto& name : targets) {
    const Policy share = control::edge_share(demand(name, stream).wanted, at_sensor);
    const auto key = std::make_pair(name, key_of(stream));
    if (auto it = applied_.find(key); it != applied_.end() && it->second == share) continue;
    QOCNET_TRY(edge_->set_policy(name, stream, share));
    applied_[key] = share;
  }
  return {};
}

Status Controller::apply_stream(const StreamId& stream, const char* reason) {
  QOCNET_ASSIGN(targets, targets_of(stream));
  std::vector<Policy> wanted;
  for (const auto& name : targets) wanted.push_back(demand(name, stream).wanted);
  const Policy effective = control::effective_policy(wanted);
  const std::uint64_t generation = ++generation_;
  if (SensorEntry* sensor = sensor_of(stream)) {
    const StreamKey key = key_of(stream);
    auto q = sensor->queued.find(key);
    if (q == sensor->queued.end() || !(q->second == effective)) {
      sensor->queued[key] = effective;
      sensor->pusher->push(SensorPush{stream_id_of(key), effective, generation});
    }
  }
  QOCNET_TRY(apply_edge(stream));
  for (const auto& name : targets) notify(name, demand(name, stream), reason);
  (void)save_state(false);  // the loop's state; a failed write shows on the next token change
  return {};
}

Result<Policy> Controller::policy_for(double target) const { return control::policy_for(table_, target); }

v1::StreamPolicy Controller::stream_policy(const Demand& d) const {
  v1::StreamPolicy sp;
  to_proto(d.stream, sp.mutable_stream());
  to_proto(d.wanted, sp.mutable_policy());
  sp.set_required(d.required);
  sp.set_target(d.target);
  return sp;
}

void Controller::notify(const std::string& process, const Demand& d, const char* reason) {
  v1::PolicyUpdate u;
  *u.mutable_policy() = stream_policy(d);
  u.set_reason(reason);
  u.set_generation(generation_.load());
  std::lock_guard lock(watch_mu_);
  auto [first, last] = watches_.equal_range(process);
  for (auto it = first; it != last; ++it) it->second->push(u);
}

Status Controller::remove_process(const std::string& name) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  if (!clients_.count(name)) {
    QOCNET_TRY(edge_->remove_process(name));  // the library's not_found
    return {};
  }
  std::vector<StreamId> streams;
  for (const auto& [key, d] : clients_[name].demands) streams.push_back(d.stream);
  QOCNET_TRY(edge_->remove_process(name));
  const bool had_token = !clients_[name].token_hash.empty();
  clients_.erase(name);
  if (had_token) (void)save_state(true);  // a failed write leaves a token of a gone process: harmless
  std::erase_if(applied_, [&](const auto& e) { return e.first.first == name; });
  for (const auto& s : streams) QOCNET_TRY(apply_stream(s, "process left"));
  {
    std::lock_guard wl(watch_mu_);
    auto [first, last] = watches_.equal_range(name);
    for (auto it = first; it != last; ++it)
      it->second->close(::grpc::Status(::grpc::StatusCode::NOT_FOUND, "process '" + name + "' was removed"));
  }
  return {};
}

Status Controller::set_clone_targets(const StreamId& stream, const std::vector<std::string>& processes) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  QOCNET_ASSIGN(before, targets_of(stream));
  QOCNET_TRY(edge_->set_clone_targets(stream, processes));
  std::erase_if(applied_, [&](const auto& e) { return e.first.second == key_of(stream); });
  for (const auto& name : before)
    if (std::find(processes.begin(), processes.end(), name) == processes.end())
      clients_[name].demands.erase(key_of(stream));
  for (const auto& name : processes) demand(name, stream);  // new ones: keep
  return apply_stream(stream, "operator");
}

Status Controller::set_policy(const std::string& process, const StreamId& stream, const Policy& policy) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  QOCNET_TRY(validate(policy));
  QOCNET_ASSIGN(targets, targets_of(stream));
  if (std::find(targets.begin(), targets.end(), process) == targets.end()) {
    // The library names the precise problem (unknown process, not a target).
    QOCNET_TRY(edge_->set_policy(process, stream, policy));
  }
  auto& d = demand(process, stream);
  d.wanted = policy;
  d.required = d.target = 0;
  return apply_stream(stream, "operator");
}

Result<v1::StreamPolicy> Controller::set_requirement(const std::string& process, const StreamId& stream,
                                                     double required, const char* reason) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  if (!clients_.count(process)) return unknown_process(process);
  if (!std::isfinite(required) || required < 0 || required > table_.lossless())
    return make_error(Errc::invalid_argument,
                      "required " + std::to_string(required) + " is not in [0, " +
                          std::to_string(table_.lossless()) + "] (" + table_.metric() + ")",
                      "give the QoC the process needs, at most the loss-free value");
  QOCNET_ASSIGN(targets, targets_of(stream));
  if (std::find(targets.begin(), targets.end(), process) == targets.end())
    return make_error(Errc::failed_precondition,
                      "process '" + process + "' is not a clone target of stream " + to_string(stream),
                      "set its clone targets first (SetCloneTargets) or register the process with the stream");
  QOCNET_ASSIGN(policy, policy_for(required));
  auto& d = demand(process, stream);
  d.required = d.target = required;
  d.wanted = policy;
  QOCNET_TRY(apply_stream(stream, reason));
  return stream_policy(d);
}

Status Controller::set_qoc_table(QocTable table) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  // Every requirement must still be reachable before anything changes.
  std::map<std::pair<std::string, StreamKey>, Policy> next;
  for (const auto& [name, c] : clients_)
    for (const auto& [key, d] : c.demands) {
      if (d.required <= 0) continue;
      const double target = std::min(d.target, table.lossless());
      auto p = target >= table.lossless() ? Result<Policy>(Policy::keep()) : choose_policy(table, target);
      if (!p) return std::move(p).error().context("process '" + name + "' on " + to_string(d.stream));
      next[{name, key}] = *p;
    }
  // The Edge keeps its old table when the new one cannot be saved: so does
  // the controller, and the caller hears why.
  QOCNET_TRY(edge_->replace_qoc_table(table));
  table_ = std::move(table);
  std::set<StreamKey> touched;
  for (auto& [k, p] : next) {
    auto& d = clients_[k.first].demands[k.second];
    d.wanted = p;
    touched.insert(k.second);
  }
  for (const auto& key : touched)
    for (auto& [name, c] : clients_)
      if (auto it = c.demands.find(key); it != c.demands.end()) {
        QOCNET_TRY(apply_stream(it->second.stream, "qoc table"));
        break;
      }
  return {};
}

QocTable Controller::qoc_table() const {
  std::lock_guard lock(mu_);
  return table_;
}

Status Controller::add_sensor(const SensorConfig& sensor) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  if (sensors_.count(sensor.name))
    return make_error(Errc::already_exists, "sensor '" + sensor.name + "' exists",
                      "remove it first or pick another name");
  for (const auto& s : sensor.streams)
    if (SensorEntry* other = sensor_of(s))
      return make_error(Errc::already_exists,
                        "stream " + to_string(s) + " is already sent by sensor '" + other->config.name + "'",
                        "a stream has one sensor; remove the other first");
  sensors_[sensor.name] = make_sensor(sensor);
  for (const auto& s : sensor.streams) {
    auto st = apply_stream(s, "sensor");
    if (!st) {
      auto p = sensors_[sensor.name].pusher;
      p->retire();
      retired_.push_back(p);
      sensors_.erase(sensor.name);
      return st;
    }
  }
  return {};
}

Status Controller::remove_sensor(const std::string& name) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  auto it = sensors_.find(name);
  if (it == sensors_.end())
    return make_error(Errc::not_found, "no sensor '" + name + "'", "ListSensors shows the sensors");
  // The sensor goes back to sending everything (its pusher's last pushes,
  // sent once off the lock); the edge drops it all again.
  const std::uint64_t generation = ++generation_;
  for (const auto& s : it->second.config.streams) it->second.pusher->push(SensorPush{s, Policy::keep(), generation});
  it->second.pusher->retire();
  retired_.push_back(it->second.pusher);
  std::erase_if(retired_, [](const auto& p) { return p->pending() == 0; });
  const auto streams = it->second.config.streams;
  sensors_.erase(it);
  for (const auto& s : streams) QOCNET_TRY(apply_stream(s, "sensor"));
  return {};
}

std::vector<v1::Sensor> Controller::sensors() const {
  std::lock_guard lock(mu_);
  std::vector<v1::Sensor> out;
  for (const auto& [name, s] : sensors_) {
    v1::Sensor m;
    m.set_name(name);
    m.set_address(s.config.address);
    for (const auto& id : s.config.streams) to_proto(id, m.add_streams());
    if (!s.config.streams.empty())
      if (auto it = s.applied.find(key_of(s.config.streams.front())); it != s.applied.end())
        to_proto(it->second, m.mutable_applied());
    m.set_last_error(s.last_error);
    out.push_back(std::move(m));
  }
  return out;
}

Result<v1::StatsUpdate> Controller::stats() const {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  v1::StatsUpdate u;
  u.set_monotonic_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count());
  u.set_generation(generation_.load());
  QOCNET_ASSIGN(streams, edge_->streams());
  for (const auto& st : streams) {
    auto* r = u.add_streams();
    to_proto(st, r->mutable_stream());
    const StreamId id = stream_of(st);
    auto ts = edge_->target_stats(id);
    std::vector<Policy> wanted;
    if (ts) {
      for (const auto& t : *ts) {
        to_proto(t, r->add_targets());
        auto c = clients_.find(t.process);
        const Demand* d = nullptr;
        if (c != clients_.end())
          if (auto it = c->second.demands.find(key_of(id)); it != c->second.demands.end()) d = &it->second;
        Demand fallback{id, 0, 0, t.policy};
        *r->add_requirements() = stream_policy(d ? *d : fallback);
        wanted.push_back(d ? d->wanted : t.policy);
      }
    }
    const Policy eff = control::effective_policy(wanted);
    to_proto(eff, r->mutable_effective());
    double full = 0;
    for (auto b : st.bytes) full += static_cast<double>(b);
    to_proto(bandwidth(full, wanted.size(), eff), r->mutable_bandwidth());
  }
  if (auto ports = edge_->all_port_counters(); ports)
    for (const auto& p : *ports) to_proto(p, u.add_ports());
  QOCNET_ASSIGN(dpi, edge_->dpi_counters());
  to_proto(dpi, u.mutable_dpi());
  return u;
}

Result<v1::GetStatusResponse> Controller::status() const {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  v1::GetStatusResponse r;
  r.set_version(QOCNET_VERSION);
  for (const auto& p : edge_->attached_ports()) r.add_ports(p);
  for (const auto& p : edge_->programs()) to_proto(p, r.add_programs());
  r.set_adopted(edge_->start_info().adopted);
  r.set_compile_seconds(edge_->start_info().compile_seconds);
  r.set_generation(generation_.load());
  r.set_uptime_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count());
  return r;
}

Result<v1::RegisterProcessResponse> Controller::register_process(const ProcessSpec& spec,
                                                                 const std::vector<StreamId>& streams,
                                                                 double required) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  if (clients_.count(spec.name))
    return make_error(Errc::already_exists, "process '" + spec.name + "' is already registered",
                      "pick another name, or unregister the old one with its token");
  if (streams.empty())
    return make_error(Errc::invalid_argument, "streams is empty", "name at least one stream the process consumes");
  if (!std::isfinite(required) || required < 0 || required > table_.lossless())
    return make_error(Errc::invalid_argument,
                      "required " + std::to_string(required) + " is not in [0, " +
                          std::to_string(table_.lossless()) + "]",
                      "give the QoC the process needs (0: everything)");
  QOCNET_ASSIGN(policy, policy_for(required));
  // Check every stream's new target list fits before anything changes.
  std::vector<std::vector<std::string>> lists;
  for (const auto& s : streams) {
    QOCNET_ASSIGN(t, targets_of(s));
    t.push_back(spec.name);
    lists.push_back(std::move(t));
  }
  QOCNET_TRY(edge_->add_process(spec));
  std::size_t done = 0;
  Status failed;
  for (; done < streams.size(); ++done)
    if (auto st = edge_->set_clone_targets(streams[done], lists[done]); !st) {
      failed = st;
      break;
    }
  if (!failed.ok()) {  // undo: a failed call changes nothing
    (void)edge_->remove_process(spec.name);
    return std::move(failed).error();
  }
  std::erase_if(applied_, [&](const auto& e) { return e.first.first == spec.name; });
  auto& client = clients_[spec.name];
  const std::string token = new_token();
  client.token_hash = token_hash(token);
  if (auto saved = save_state(true); !saved) {  // a token that would not survive a restart is not handed out
    (void)edge_->remove_process(spec.name);
    clients_.erase(spec.name);
    return std::move(saved).error().context("keep the token of process '" + spec.name + "'");
  }
  v1::RegisterProcessResponse resp;
  resp.set_token(token);
  for (const auto& s : streams) {
    auto& d = demand(spec.name, s);
    d.required = d.target = required;
    d.wanted = policy;
  }
  for (const auto& s : streams) QOCNET_TRY(apply_stream(s, "registered"));
  for (const auto& s : streams) *resp.add_policies() = stream_policy(demand(spec.name, s));
  return resp;
}

Status Controller::check_token(const std::string& name, const std::string& token) const {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  auto it = clients_.find(name);
  if (it == clients_.end()) return unknown_process(name);
  if (!token_matches(token, it->second.token_hash))
    return make_error(Errc::permission_denied, "the token does not belong to process '" + name + "'",
                      "use the token RegisterProcess returned to this process");
  return {};
}

Status Controller::unregister_process(const std::string& name) { return remove_process(name); }

Result<std::vector<v1::StreamPolicy>> Controller::report_requirement(const std::string& name,
                                                                     const std::optional<StreamId>& stream,
                                                                     double required) {
  std::vector<StreamId> streams;
  {
    std::lock_guard lock(mu_);
    if (auto it = clients_.find(name); it != clients_.end())
      for (const auto& [key, d] : it->second.demands)
        if (!stream || key == key_of(*stream)) streams.push_back(d.stream);
  }
  if (streams.empty())
    return make_error(Errc::not_found,
                      stream ? "process '" + name + "' does not consume stream " + to_string(*stream)
                             : "process '" + name + "' consumes no stream",
                      "name one of the streams it registered with");
  std::vector<v1::StreamPolicy> out;
  for (const auto& s : streams) {
    QOCNET_ASSIGN(sp, set_requirement(name, s, required, "requirement"));
    out.push_back(std::move(sp));
  }
  return out;
}

Result<v1::ReportMeasuredQocResponse> Controller::report_measured(const std::string& name,
                                                                  const std::optional<StreamId>& stream,
                                                                  double measured) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  auto c = clients_.find(name);
  if (c == clients_.end()) return unknown_process(name);
  if (!std::isfinite(measured) || measured < 0 || measured > table_.lossless())
    return make_error(Errc::invalid_argument,
                      "measured " + std::to_string(measured) + " is not in [0, " +
                          std::to_string(table_.lossless()) + "]",
                      "report the metric the process measured over its last interval");
  Demand* d = nullptr;
  if (stream) {
    auto it = c->second.demands.find(key_of(*stream));
    if (it == c->second.demands.end())
      return make_error(Errc::not_found, "process '" + name + "' does not consume stream " + to_string(*stream),
                        "name one of the streams it registered with");
    d = &it->second;
  } else if (c->second.demands.size() == 1) {
    d = &c->second.demands.begin()->second;
  } else {
    return make_error(Errc::invalid_argument, "stream is unset but process '" + name + "' consumes " +
                                                  std::to_string(c->second.demands.size()) + " streams",
                      "name the stream the measurement is about");
  }
  v1::ReportMeasuredQocResponse resp;
  const control::LoopStep step = control::loop_step(options_.loop, table_.lossless(), d->required, d->target, measured);
  resp.set_action(step.action == control::LoopAction::tightened  ? v1::LOOP_ACTION_TIGHTENED
                  : step.action == control::LoopAction::loosened ? v1::LOOP_ACTION_LOOSENED
                                                                 : v1::LOOP_ACTION_HELD);
  if (step.target != d->target) {
    QOCNET_ASSIGN(policy, policy_for(step.target));
    d->target = step.target;
    const bool changed = !(policy == d->wanted);
    d->wanted = policy;
    if (changed) QOCNET_TRY(apply_stream(d->stream, "measured"));
  }
  *resp.mutable_policy() = stream_policy(*d);
  return resp;
}

Status Controller::add_watch(const std::string& name, Watch* watch) {
  std::lock_guard lock(mu_);
  QOCNET_TRY(require_ready());
  auto c = clients_.find(name);
  if (c == clients_.end()) return unknown_process(name);
  std::lock_guard wl(watch_mu_);
  for (const auto& [key, d] : c->second.demands) {
    v1::PolicyUpdate u;
    *u.mutable_policy() = stream_policy(d);
    u.set_reason("current");
    u.set_generation(generation_.load());
    watch->push(std::move(u));
  }
  watches_.emplace(name, watch);
  return {};
}

void Controller::remove_watch(Watch* watch) {
  std::lock_guard lock(watch_mu_);
  for (auto it = watches_.begin(); it != watches_.end(); ++it)
    if (it->second == watch) {
      watches_.erase(it);
      return;
    }
}

}  // namespace qocnet::grpc_api
