// SPDX-License-Identifier: Apache-2.0
#include "bpf_objects.hpp"

#include <fcntl.h>

namespace qocnet::detail {

Result<Program> Program::adopt(UniqueFd fd, std::string name) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return make_error(Errc::internal, "cannot read info of program " + name, {}, errno);
  Program p;
  p.fd_ = std::move(fd);
  p.name_ = std::move(name);
  p.id_ = info.id;
  return p;
}

Result<Map> Map::adopt(UniqueFd fd, std::string name) {
  Map m;
  __u32 len = sizeof(m.info_);
  if (bpf_obj_get_info_by_fd(fd.get(), &m.info_, &len) != 0)
    return make_error(Errc::internal, "cannot read info of map " + name, {}, errno);
  m.fd_ = std::move(fd);
  m.name_ = std::move(name);
  return m;
}

Result<Map> Map::dup() const {
  int fd = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::internal, "cannot duplicate fd of map " + name_, {}, errno);
  Map m;
  m.fd_ = UniqueFd(fd);
  m.name_ = name_;
  m.info_ = info_;
  return m;
}

bool Map::per_cpu() const {
  switch (info_.type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      return true;
    default:
      return false;
  }
}

int possible_cpus() {
  static const int n = [] {
    int c = libbpf_num_possible_cpus();
    return c > 0 ? c : 1;
  }();
  return n;
}

Error map_error(const Map& m, const char* op, int err) {
  if (err == E2BIG || err == ENOMEM)
    return make_error(Errc::resource_exhausted,
                      "map " + m.name() + " is full (" + std::to_string(m.max_entries()) + " entries)",
                      "raise the limit in EdgeOptions (e.g. max_ports) and restart", err);
  return make_error(Errc::internal, std::string("map ") + m.name() + ": " + op + " failed", {}, err);
}

}  // namespace qocnet::detail
