// SPDX-License-Identifier: Apache-2.0
// The state behind qocnet::Edge, shared by the files that implement it
// (edge.cpp: programs, ports, DPI; replication.cpp: processes, targets,
// policies).
#pragma once

#include <sys/types.h>

#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "bpf_objects.hpp"
#include "compiler.hpp"
#include "netns.hpp"
#include "qoc_abi.h"
#include "state_file.hpp"
#include "qocnet/edge.hpp"
#include "tc.hpp"

namespace qocnet {

// Stream keys: detail::stream_key_of / stream_id_of (dpi_view.hpp).
// A process's qoc_procs entry from its spec (the port already resolved; its
// QOC_PROC_F_PEER flag is the caller's: proc_port_flags).
Result<qoc_proc> make_proc(const ProcessSpec& spec, unsigned ifindex);
// The qoc_proc flags of a process's port, asked of the kernel in the calling
// thread's namespace: QOC_PROC_F_PEER when it is a veth whose other end is in
// another namespace. Anything else, or a question the kernel does not
// answer, is 0 (plain bpf_redirect, correct for every port).
__u32 proc_port_flags(unsigned ifindex);

struct Edge::Impl {
  // What the Edge holds of a process and a target is what its state file
  // keeps: one type each, so the two cannot drift apart.
  using ProcessEntry = detail::SavedProcess;
  using TargetEntry = detail::SavedTarget;

  EdgeOptions options;
  detail::UniqueFd netns;
  detail::Program program;
  detail::Program slow_program;
  detail::Program deliver_program;
  detail::TypedMap<__u32, qoc_port_pair> pairs;
  detail::PerCpuMap<__u32, qoc_port_stats> stats;
  detail::TypedMap<qoc_stream_key, qoc_stream> streams;
  detail::PerCpuMap<__u32, qoc_counters> counters;
  detail::Map prog_array;  // keeps the tail-call table (and so the slow path) alive
  detail::TypedMap<__u32, qoc_proc> procs;
  detail::TypedMap<qoc_stream_key, qoc_targets> subs;
  detail::PerCpuMap<__u32, qoc_tstats> sub_stats;   // by subscription slot
  detail::TypedMap<__u32, qoc_fstate> sub_fstate;    // by subscription slot
  std::map<unsigned, detail::TcAttachment> attached;  // by ifindex
  std::map<std::string, ProcessEntry> processes;      // by name
  std::map<std::string, std::vector<TargetEntry>> targets;  // by stream key bytes
  // Subscription slots (qoc_sub_stats, qoc_sub_fstate) of the targets in
  // qoc_subs, by (stream key bytes, process slot); a slot is zeroed when it
  // is given out and is the pair's as long as the process is a target of
  // the stream.
  std::map<std::pair<std::string, std::uint32_t>, std::uint32_t> sub_slots;
  std::vector<bool> sub_used = std::vector<bool>(QOC_MAX_SUBS, false);
  std::uint32_t sub_hint = 0;  // where the search for a free slot starts
  // The process name of each subscription slot in use (for departed).
  std::vector<std::string> sub_owner = std::vector<std::string>(QOC_MAX_SUBS);
  // Final counters of ended subscriptions, by (stream key bytes, process
  // name), summed over the pair's ended subscriptions; the oldest pair is
  // forgotten beyond QOC_MAX_SUBS (departed_order: first booked first).
  std::map<std::pair<std::string, std::string>, TargetStats> departed;
  std::deque<std::pair<std::string, std::string>> departed_order;
  // An ARRAY_OF_MAPS and its one inner map, made on first use: an update of
  // a map-in-map returns after an RCU grace period (the kernel waits for
  // running BPF programs), so every datagram that read an older target list
  // has been counted once wait_for_datapath returns.
  detail::UniqueFd grace_outer, grace_inner;
  Status wait_for_datapath();
  // Adds a slot's counters to departed (called as the slot is given back).
  void book_departed(const std::string& kb, std::uint32_t slot);
  QocTable qoc_table = QocTable::paper_default();
  mutable std::mutex mu;

  // Pinning and restart (lib/edge_pin.cpp). Empty pin dir: none of it.
  StartInfo start;
  bool keep = false;                // leave the datapath when destroyed
  detail::UniqueFd pin_lock;        // held while this Edge uses the pin dir
  detail::Map meta;                 // qoc_meta
  std::vector<detail::Map> retired; // older programs' tail-call tables, kept
                                    // for packets still running in them
  bool pinned() const { return !options.pin_dir.empty(); }
  // The control-plane state as it stands (lib/state_file.hpp).
  detail::SavedState snapshot() const;
  // Writes a state file (no-op without a pin dir). Every mutating call
  // writes the state it is about to make or has made, and undoes its change
  // in the datapath when the write fails (docs/SERVICE.md, State file).
  Status write_state(const detail::SavedState& s) const;
  Status save_state() const;
  // The text of the last state file write_state put in place ("" before the
  // first and after a failed write).
  mutable std::string last_state;
  std::filesystem::path state_path;
  ino_t netns_inode = 0;            // of the namespace the Edge was created in
  // Reads and checks the state file of the pin dir (if any) into processes,
  // targets and the QoC table, and returns the ports to re-attach. Changes
  // no map; a state file that fails any check is failed_precondition naming
  // the file and `qocnetctl cleanup`, and changes nothing here either.
  Result<std::vector<detail::SavedPort>> read_state(std::size_t max_streams);
  // Rewrites qoc_procs and qoc_subs from the restored state.
  Status apply_state();
  // Takes a compiled (or adopted) object's maps and programs and fills the
  // tail-call table.
  Status take(detail::CompiledObject& obj);
  // Edge::create with a pin dir: fresh, adopted or replaced.
  Status start_pinned(detail::CompileRequest req);
  // Leaves or removes the pinned datapath when the Edge goes.
  void shutdown();
  // A failed create() must not detach filters it re-adopted: traffic keeps
  // flowing through them. (After shutdown() nothing is left here.)
  ~Impl() {
    for (auto& [idx, att] : attached) att.persist();
  }

  Status open_maps(const detail::CompiledObject& obj);
  Result<detail::NetnsGuard> enter() const { return detail::NetnsGuard::enter(netns.get()); }
  Result<PortCounters> counters_of(unsigned ifindex) const;
  // The stream's target list, or not_found naming the stream.
  Result<const std::vector<TargetEntry>*> targets_of(const StreamId& stream) const;
  // The subscription slot of (stream, process slot): its own, or a free one
  // zeroed for it (`fresh` set); resource_exhausted when none is free.
  Result<std::uint32_t> sub_slot_of(const std::string& kb, std::uint32_t proc, const std::string& name,
                                    bool* fresh);
  // Whether one of the list's processes has process slot `proc`.
  bool lists_slot(const std::vector<TargetEntry>& list, std::uint32_t proc) const;
  // Gives back the stream's subscription slots of processes not in `list`,
  // their final counters booked in departed (after wait_for_datapath).
  void release_sub_slots(const std::string& kb, const std::vector<TargetEntry>& list);
  // Takes the subscription slots the pinned qoc_subs map names for the
  // restored targets, so their counters and frame_aware state go on.
  Status adopt_sub_slots();
  // Eq. 3 over a stream's targets.
  static Policy effective_of(const std::vector<TargetEntry>& list);
  // Sets a stream's target list (empty: none) in memory, the state file and
  // qoc_subs, or leaves all three as they were.
  Status replace_targets(const qoc_stream_key& key, std::vector<TargetEntry> list);
  // Writes a stream's target list to qoc_subs (or removes it when empty).
  Status publish_targets(const qoc_stream_key& key, const std::vector<TargetEntry>& list);
};

}  // namespace qocnet
