// SPDX-License-Identifier: Apache-2.0
// qocnet::cleanup: removes a kept or orphaned pinned datapath (qocnet's TC
// filters, clsact qdiscs left empty by that, pins, state), leaving other
// tools' filters alone.
#include "qocnet/cleanup.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>

#include "fd.hpp"
#include "netns.hpp"
#include "pinning.hpp"
#include "tc.hpp"

namespace qocnet {

using namespace detail;
namespace fs = std::filesystem;

namespace {

const char* dir_name(TcDirection d) { return d == TcDirection::ingress ? "ingress" : "egress"; }

bpf_tc_hook make_hook(unsigned ifindex, TcDirection d) {
  bpf_tc_hook h{};
  h.sz = sizeof(h);
  h.ifindex = static_cast<int>(ifindex);
  h.attach_point = d == TcDirection::ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return h;
}

bpf_tc_opts qocnet_opts() {
  bpf_tc_opts o{};
  o.sz = sizeof(o);
  o.handle = kTcHandle;
  o.priority = kTcPriority;
  return o;
}

std::string prog_name_of_id(std::uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return {};
  UniqueFd owner(fd);
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return {};
  return info.name;
}

// The port's ownership lock, if no live qocnet process holds it.
struct PortLock {
  UniqueFd fd;
  fs::path path;
  bool held_by_other = false;
  std::string holder;
};
PortLock try_port_lock(const fs::path& lock_dir, ino_t netns, unsigned ifindex, TcDirection d) {
  PortLock l;
  l.path = lock_dir / ("tc-" + std::to_string(netns) + "-" + std::to_string(ifindex) + "-" +
                       dir_name(d) + ".lock");
  UniqueFd fd(::open(l.path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return l;  // no lock file: nobody owns it
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    l.held_by_other = true;
    l.holder = n > 0 ? "qocnet process " + std::string(buf, std::strcspn(buf, "\n"))
                     : std::string("a live qocnet process");
    return l;
  }
  l.fd = std::move(fd);
  return l;
}

}  // namespace

Result<CleanupReport> cleanup(const fs::path& pin_dir, const fs::path& lock_dir) {
  CleanupReport report;
  UniqueFd pin_lock;
  if (!pin_dir.empty()) {
    if (!pin_dir.is_absolute())
      return make_error(Errc::invalid_argument, "pin dir '" + pin_dir.string() + "' is not absolute",
                        "name the pin dir as the Edge had it, e.g. /sys/fs/bpf/qocnet/edge");
    auto lock = take_pin_lock(pin_lock_file(pin_dir, lock_dir), "pin dir " + pin_dir.string());
    if (!lock)
      return make_error(Errc::failed_precondition, std::move(lock).error().message,
                        "stop the qocnet process that uses it (it removes its datapath when it "
                        "exits unless told to keep it), then run cleanup again");
    pin_lock = std::move(*lock);
  }

  const ino_t netns = current_netns_inode();
  if (struct if_nameindex* ifs = ::if_nameindex()) {
    for (struct if_nameindex* i = ifs; i->if_index != 0; ++i) {
      const unsigned idx = i->if_index;
      const std::string name = i->if_name;
      bool removed_here = false;
      for (TcDirection d : {TcDirection::ingress, TcDirection::egress}) {
        // No clsact or no filter: nothing to query (libbpf would print why).
        auto n = count_tc_filters(idx, d);
        if (!n || *n == 0) continue;
        bpf_tc_hook hook = make_hook(idx, d);
        bpf_tc_opts q = qocnet_opts();
        if (bpf_tc_query(&hook, &q) != 0) continue;  // no clsact, or no filter at qocnet's handle
        const std::string prog = prog_name_of_id(q.prog_id);
        const std::string where = name + " " + dir_name(d);
        if (prog.rfind("qoc_", 0) != 0) {
          report.kept.push_back(where + ": filter at qocnet's handle runs '" + prog +
                                "', not a qocnet program");
          continue;
        }
        PortLock pl = try_port_lock(lock_dir, netns, idx, d);
        if (pl.held_by_other) {
          report.kept.push_back(where + ": " + prog + " is owned by " + pl.holder);
          continue;
        }
        bpf_tc_opts o = qocnet_opts();
        int rc = bpf_tc_detach(&hook, &o);
        if (rc != 0 && rc != -ENOENT) {
          ::if_freenameindex(ifs);
          return make_error(Errc::internal, "cannot remove qocnet's filter from " + where,
                            "remove it by hand: tc filter del dev " + name + " " + dir_name(d) +
                                " handle 0xc0c prio 3084 bpf",
                            -rc);
        }
        report.filters.push_back(where + ": " + prog + " (id " + std::to_string(q.prog_id) + ")");
        removed_here = true;
        if (pl.fd.valid() && ::unlink(pl.path.c_str()) == 0) report.files.push_back(pl.path.string());
      }
      if (!removed_here) continue;
      // The clsact goes only if nothing else is left on it.
      auto gone = destroy_clsact_if_empty(idx);
      if (gone && *gone) report.qdiscs.push_back(name);
      else if (gone) report.kept.push_back(name + ": clsact kept, other filters remain on it");
      else report.kept.push_back(name + ": clsact kept, its filters cannot be listed: " +
                                 gone.error().message);
    }
    ::if_freenameindex(ifs);
  }

  if (!pin_dir.empty()) {
    for (auto& f : remove_pins(pin_dir)) report.files.push_back(std::move(f));
    const fs::path state = state_file(pin_dir, lock_dir);
    std::error_code ec;
    if (fs::remove(state, ec)) report.files.push_back(state.string());
    if (fs::remove(atomic_spare(state), ec)) report.files.push_back(atomic_spare(state).string());
    const fs::path lock = pin_lock_file(pin_dir, lock_dir);
    if (::unlink(lock.c_str()) == 0) report.files.push_back(lock.string());
  }
  return report;
}

}  // namespace qocnet
