// SPDX-License-Identifier: Apache-2.0
#include "control/registry.hpp"

namespace qocnet::control {

Error unknown_process(const std::string& name) {
  return make_error(Errc::not_found, "no process '" + name + "'",
                    "register it (QocService.RegisterProcess) or add it (ControlService.AddProcess) first");
}

Status check_token_hash(const std::string& name, const std::string* token_hash, const std::string& token) {
  // token_matches() on a hash even for an unknown name: the same work either way.
  static const std::string no_hash(64, '0');
  const bool ok = token_matches(token, token_hash ? *token_hash : no_hash) && token_hash != nullptr;
  if (ok) return {};
  return make_error(Errc::permission_denied, "the token is not that of a registered process '" + name + "'",
                    "use the token RegisterProcess returned to this process; if qocnetd lost the registration "
                    "(its state file was removed), register again");
}

const ProcessRecord* Registry::find(const std::string& name) const {
  auto it = processes_.find(name);
  return it == processes_.end() ? nullptr : &it->second;
}

ProcessRecord* Registry::find(const std::string& name) {
  auto it = processes_.find(name);
  return it == processes_.end() ? nullptr : &it->second;
}

Demand& Registry::demand(const std::string& name, const StreamKey& stream) {
  auto& d = processes_[name].demands[stream];
  d.stream = stream;
  return d;
}

const Demand* Registry::find_demand(const std::string& name, const StreamKey& stream) const {
  const ProcessRecord* p = find(name);
  if (!p) return nullptr;
  auto it = p->demands.find(stream);
  return it == p->demands.end() ? nullptr : &it->second;
}

void Registry::drop_demand(const std::string& name, const StreamKey& stream) {
  if (ProcessRecord* p = find(name)) p->demands.erase(stream);
}

std::vector<StreamKey> Registry::streams_of(const std::string& name) const {
  std::vector<StreamKey> out;
  if (const ProcessRecord* p = find(name))
    for (const auto& [key, d] : p->demands) out.push_back(key);
  return out;
}

Result<Demand*> Registry::demand_for(const std::string& name, const std::optional<StreamKey>& stream) {
  ProcessRecord* p = find(name);
  if (!p) return unknown_process(name);
  if (stream) {
    auto it = p->demands.find(*stream);
    if (it == p->demands.end())
      return make_error(Errc::not_found, "process '" + name + "' does not consume stream " + to_string(*stream),
                        "name one of the streams it registered with");
    return &it->second;
  }
  if (p->demands.size() == 1) return &p->demands.begin()->second;
  return make_error(Errc::invalid_argument,
                    "stream is unset but process '" + name + "' consumes " + std::to_string(p->demands.size()) +
                        " streams",
                    "name the stream the measurement is about");
}

std::string Registry::issue_token(const std::string& name) {
  const std::string token = new_token();
  processes_[name].token_hash = token_hash(token);
  return token;
}

Status Registry::check_token(const std::string& name, const std::string& token) const {
  const ProcessRecord* p = find(name);
  return check_token_hash(name, p ? &p->token_hash : nullptr, token);
}

void Registry::save(DaemonState& state) const {
  for (const auto& [name, p] : processes_) {
    if (!p.registered()) continue;
    auto& out = state.processes[name];
    out.token_hash = p.token_hash;
    out.demands.clear();
    for (const auto& [key, d] : p.demands)
      out.demands.push_back(StoredDemand{to_string(key), d.required, d.target, to_string(d.wanted)});
  }
}

void Registry::restore(const DaemonState& state) {
  for (const auto& [name, saved] : state.processes) {
    ProcessRecord* p = find(name);
    if (!p) continue;  // gone with the datapath
    p->token_hash = saved.token_hash;
    for (const auto& sd : saved.demands) {
      auto id = parse_stream_id(sd.stream);
      if (!id) continue;
      auto key = stream_key(*id);
      auto wanted = parse_policy(sd.wanted);
      if (!key || !wanted) continue;
      Demand& d = demand(name, *key);
      d.required = sd.required;
      d.target = sd.target;
      d.wanted = *wanted;
    }
  }
}

}  // namespace qocnet::control
