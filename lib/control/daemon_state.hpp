// SPDX-License-Identifier: Apache-2.0
// What qocnetd keeps across its own restarts besides the datapath (which the
// Edge keeps in its pins and state file): the tokens of registered processes,
// as SHA-256 hashes only, and the edge's epoch, which orders its policy
// pushes to sensors across restarts (docs/SERVICE.md, Restarts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet::control {

// What a registered process asked of one stream (the closed loop's state).
struct StoredDemand {
  std::string stream;  // canonical text, parse_stream_id reads it
  double required = 0;
  double target = 0;
  std::string wanted;  // to_string(Policy)
};

struct StoredProcess {
  std::string token_hash;  // hex SHA-256 of its token
  std::vector<StoredDemand> demands;
};

struct DaemonState {
  std::uint64_t epoch = 0;                        // the last epoch a qocnetd used
  std::map<std::string, StoredProcess> processes;  // registered processes, by name
};

// A missing file is an empty state; a damaged one is an error naming it.
Result<DaemonState> load_daemon_state(const std::filesystem::path& file);
// Atomically (temporary file, rename), mode 0600; `durable`: fsync first
// (tokens must survive a crash of the machine too, loop state need not).
// The file's text (YAML, format 2): what save_daemon_state writes.
std::string format_daemon_state(const DaemonState& state);
Status save_daemon_state(const std::filesystem::path& file, const DaemonState& state, bool durable);
// Where qocnetd keeps its state for a pin dir: <lock_dir>/../state/qocnetd-<pin dir escaped>.yaml.
std::filesystem::path default_state_file(const std::filesystem::path& pin_dir,
                                         const std::filesystem::path& lock_dir);

// The hex SHA-256 of a token (what is stored; the token itself never is).
std::string token_hash(const std::string& token);
// True if `token` hashes to `hash`, compared in constant time.
bool token_matches(const std::string& token, const std::string& hash);
// A fresh token: 128 random bits as 32 hex digits.
std::string new_token();

// Epochs and generations are below 2^63; a sensor refuses larger ones (a
// client cannot freeze it with 2^64 - 1).
inline constexpr std::uint64_t kMaxOrder = (std::uint64_t{1} << 63) - 1;
// The epoch of a starting edge: the wall clock in nanoseconds, but always
// after `last` (so a clock stepped back still gives a newer epoch).
std::uint64_t next_epoch(std::uint64_t last);

}  // namespace qocnet::control
