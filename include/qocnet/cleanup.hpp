// SPDX-License-Identifier: Apache-2.0
// qocnet::cleanup — removes what a pinned qocnet datapath leaves behind when
// it was kept (EdgeOptions::keep_datapath) or its process died: qocnet's TC
// filters in the calling thread's network namespace, clsact qdiscs left
// empty by that, the pins under a pin dir and the edge's state file.
// Filters of other tools, also on the same clsact, are left alone.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "qocnet/error.hpp"

namespace qocnet {

struct CleanupReport {
  // "e0 ingress: qoc_edge_in (id 42)": qocnet filters removed.
  std::vector<std::string> filters;
  // "e0": clsact qdiscs removed because nothing else was left on them.
  std::vector<std::string> qdiscs;
  // "e1 ingress: clsact kept, other filters on it" / "held by qocnet process
  // 123": what was found but left in place, and why.
  std::vector<std::string> kept;
  // Pins, the state file and lock files removed (absolute paths).
  std::vector<std::string> files;
};

// Removes, in the calling thread's network namespace, every TC filter at
// qocnet's handle/priority whose program is named qoc_* (except those of a
// port a live qocnet process owns), the clsact qdisc of such a port when
// nothing else remains on it, every qocnet pin under `pin_dir` (and the
// directory when empty), and the state file of that pin dir next to
// `lock_dir`. failed_precondition when a live Edge still uses the pin dir.
Result<CleanupReport> cleanup(const std::filesystem::path& pin_dir,
                              const std::filesystem::path& lock_dir = "/run/qocnet/locks");

}  // namespace qocnet
