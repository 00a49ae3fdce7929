// qocnetd's own state (tokens, epoch) belongs to the control core.
#pragma once

#include "control/daemon_state.hpp"

namespace qocnet::grpc_api {
using control::DaemonState;
using control::default_state_file;
using control::kMaxOrder;
using control::load_daemon_state;
using control::new_token;
using control::next_epoch;
using control::save_daemon_state;
using control::StoredDemand;
using control::StoredProcess;
using control::token_hash;
using control::token_matches;
}  // namespace qocnet::grpc_api
