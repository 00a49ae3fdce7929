// The state behind qocnet::Edge, shared by the files that implement it
// (edge.cpp: programs, ports, DPI; replication.cpp: processes, targets,
// policies).
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "bpf_objects.hpp"
#include "compiler.hpp"
#include "netns.hpp"
#include "qoc_abi.h"
#include "qocnet/edge.hpp"
#include "tc.hpp"

namespace qocnet {

struct Edge::Impl {
  struct ProcessEntry {
    ProcessSpec spec;
    std::uint32_t slot = 0;
    unsigned ifindex = 0;
  };
  struct TargetEntry {
    std::string process;
    Policy policy;
  };

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
  detail::PerCpuMap<qoc_tkey, qoc_tstats> tstats;
  detail::TypedMap<qoc_tkey, qoc_fstate> fstate;
  std::map<unsigned, detail::TcAttachment> attached;  // by ifindex
  std::map<std::string, ProcessEntry> processes;      // by name
  std::map<std::string, std::vector<TargetEntry>> targets;  // by stream key bytes
  QocTable qoc_table = QocTable::paper_default();
  mutable std::mutex mu;

  Status open_maps(const detail::CompiledObject& obj);
  Result<detail::NetnsGuard> enter() const { return detail::NetnsGuard::enter(netns.get()); }
  Result<PortCounters> counters_of(unsigned ifindex) const;
  // The stream's target list, or not_found naming the stream.
  Result<const std::vector<TargetEntry>*> targets_of(const StreamId& stream) const;
  // Forgets a process slot's counters and frame_aware state on every stream
  // (the slot may be given to another process).
  Status forget_slot(std::uint32_t slot);
  // Eq. 3 over a stream's targets.
  static Policy effective_of(const std::vector<TargetEntry>& list);
  // Writes a stream's target list to qoc_subs (or removes it when empty).
  Status publish_targets(const qoc_stream_key& key, const std::vector<TargetEntry>& list);
};

}  // namespace qocnet
