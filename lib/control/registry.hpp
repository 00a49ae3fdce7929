// SPDX-License-Identifier: Apache-2.0
// qocnet::control registry: the processes the control plane knows, the
// hashes of their tokens, and what each asked of each stream (its demand:
// requirement, the closed loop's target, the policy it gets end to end).
// Plain data with its operations: no datapath, no locks (the control core's
// executor is its only writer), unit-tested without root.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/daemon_state.hpp"
#include "control/qoc_model.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"

namespace qocnet::control {

// What one process asked of one stream.
struct Demand {
  StreamKey stream;
  double required = 0;  // 0: none reported
  double target = 0;    // the QoC the closed loop expects under `wanted`
  std::optional<double> measured;  // the QoC the process last reported (not saved across restarts)
  Policy wanted;        // what the process gets end to end
  QocModel model;       // its QoC against the drop, learnt from its reports (empty: none yet)
  bool changed = false; // `wanted` changed since its last report, from `before`
  Policy before;
};

struct ProcessRecord {
  std::string token_hash;               // hex SHA-256; empty: added by an operator, not registered
  std::map<StreamKey, Demand> demands;  // by stream
  bool registered() const { return !token_hash.empty(); }
};

// not_found "no process 'NAME'" with the fix (register or add it).
Error unknown_process(const std::string& name);

// The answer to a process call's name and token: `token_hash` is the
// process's (nullptr: no such process). An unknown name and a wrong token
// get the same answer, permission_denied, so a caller without the token
// cannot tell which names exist.
Status check_token_hash(const std::string& name, const std::string* token_hash, const std::string& token);

class Registry {
 public:
  bool contains(const std::string& name) const { return processes_.count(name) != 0; }
  const ProcessRecord* find(const std::string& name) const;
  ProcessRecord* find(const std::string& name);
  // The process's record, created empty (no token, no demand) if new.
  ProcessRecord& add(const std::string& name) { return processes_[name]; }
  // true if it was there.
  bool erase(const std::string& name) { return processes_.erase(name) != 0; }
  const std::map<std::string, ProcessRecord>& processes() const { return processes_; }
  std::size_t size() const { return processes_.size(); }

  // The process's demand on `stream`, created (keep, no requirement) if new;
  // the process is created too.
  Demand& demand(const std::string& name, const StreamKey& stream);
  const Demand* find_demand(const std::string& name, const StreamKey& stream) const;
  // Forgets the process's demand on `stream` (it no longer consumes it).
  void drop_demand(const std::string& name, const StreamKey& stream);
  // The streams the process has demands on, in key order.
  std::vector<StreamKey> streams_of(const std::string& name) const;
  // The demand a measurement is about: `stream` if given, else the process's
  // only stream. not_found (unknown process or stream), invalid_argument
  // (no stream named and several consumed).
  Result<Demand*> demand_for(const std::string& name, const std::optional<StreamKey>& stream);

  // Hands the process a fresh token and keeps its hash (the token itself is
  // never stored). The process must exist.
  std::string issue_token(const std::string& name);
  // permission_denied for an unknown process and for a token that is not
  // the process's (also for an operator-added process, which has none):
  // check_token_hash().
  Status check_token(const std::string& name, const std::string& token) const;

  // The registered processes (token hashes and demands) into `state`.
  void save(DaemonState& state) const;
  // Takes tokens and demands back from `state` for the processes the registry
  // already has (a process the datapath no longer has stays gone); entries
  // that do not parse are skipped.
  void restore(const DaemonState& state);

 private:
  std::map<std::string, ProcessRecord> processes_;
};

}  // namespace qocnet::control
