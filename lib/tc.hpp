// SPDX-License-Identifier: Apache-2.0
// A BPF program attached to a TC hook (clsact ingress or egress) of one port.
//
// The filter sits at a fixed handle and priority, so a later run finds a
// filter left by a qocnet process that died (TC filters outlive their
// process) and replaces it. One owner per port hook, across processes: the
// owner holds an advisory lock file, which the kernel releases when it dies.
// The clsact qdisc is created only if absent and removed only if qocnet
// created it, no qocnet attachment in this process still uses it, and no
// filter at all is left on it (ingress or egress): another tool may have added
// one after qocnet created the qdisc, and deleting the qdisc would delete it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "bpf_objects.hpp"
#include "fd.hpp"
#include "qocnet/error.hpp"

namespace qocnet::detail {

enum class TcDirection { ingress, egress };

inline constexpr std::uint32_t kTcHandle = 0xc0c;
inline constexpr std::uint32_t kTcPriority = 0xc0c;

// Number of filters (of any kind, any owner) on a clsact hook of `ifindex`
// in the calling thread's netns, by a netlink dump.
Result<int> count_tc_filters(unsigned ifindex, TcDirection dir);

// Removes the clsact qdisc of `ifindex` if no filter is left on either of its
// hooks. Returns whether it was removed; an error when the filters cannot be
// listed (the qdisc is then left).
Result<bool> destroy_clsact_if_empty(unsigned ifindex);

class TcAttachment {
 public:
  // Attaches `prog` to the hook of `ifindex` in the calling thread's netns.
  // A filter at qocnet's handle that already runs `prog` (left attached by an
  // earlier run of a pinned datapath) is adopted as it is, untouched; one
  // that runs another qocnet program is replaced in place (BPF_TC_F_REPLACE,
  // atomic for the traffic). `owns_qdisc`: treat the clsact as created by
  // qocnet even if it exists already (handed over by an earlier run).
  static Result<TcAttachment> attach(const Program& prog, unsigned ifindex,
                                     const std::string& ifname, TcDirection dir,
                                     const std::filesystem::path& lock_dir,
                                     bool owns_qdisc = false);
  TcAttachment(TcAttachment&&) noexcept;
  TcAttachment& operator=(TcAttachment&&) = delete;
  TcAttachment(const TcAttachment&) = delete;
  ~TcAttachment();

  // Removes the filter now (idempotent).
  Status detach();
  // Leaves the filter attached when this object goes away.
  void persist() { persist_ = true; }

  unsigned ifindex() const { return ifindex_; }
  const std::string& ifname() const { return ifname_; }
  bool replaced_stale() const { return replaced_stale_; }
  // The filter already ran the program and was left as it was.
  bool adopted() const { return adopted_; }
  bool created_qdisc() const { return created_qdisc_; }

 private:
  TcAttachment() = default;
  void release_qdisc_use();
  UniqueFd netns_;
  UniqueFd lock_;
  std::filesystem::path lock_path_;
  ino_t netns_ino_ = 0;
  unsigned ifindex_ = 0;
  std::string ifname_;
  TcDirection dir_ = TcDirection::ingress;
  bool attached_ = false;
  bool persist_ = false;
  bool replaced_stale_ = false;
  bool adopted_ = false;
  bool created_qdisc_ = false;
  bool holds_qdisc_ = false;  // counted in the process's qdisc registry
};

}  // namespace qocnet::detail
