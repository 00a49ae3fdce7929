// SPDX-License-Identifier: Apache-2.0
// RAII owners of loaded BPF programs and maps, and typed map views whose key
// and value sizes are checked against the kernel's map when opened.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fd.hpp"
#include "qocnet/error.hpp"

namespace qocnet::detail {

class Program {
 public:
  static Result<Program> adopt(UniqueFd fd, std::string name);
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  std::uint32_t id() const { return id_; }

 private:
  UniqueFd fd_;
  std::string name_;
  std::uint32_t id_ = 0;
};

class Map {
 public:
  // Takes ownership of a map fd and reads its layout from the kernel.
  static Result<Map> adopt(UniqueFd fd, std::string name);
  Result<Map> dup() const;

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  std::uint32_t type() const { return info_.type; }
  std::uint32_t key_size() const { return info_.key_size; }
  std::uint32_t value_size() const { return info_.value_size; }
  std::uint32_t max_entries() const { return info_.max_entries; }
  std::uint32_t map_flags() const { return info_.map_flags; }
  std::uint32_t id() const { return info_.id; }
  bool per_cpu() const;

 private:
  UniqueFd fd_;
  std::string name_;
  bpf_map_info info_{};
};

// Number of value slots a per-CPU map returns per lookup.
int possible_cpus();

Error map_error(const Map& m, const char* op, int err);

// Typed view of a (non-per-CPU) map.
template <class K, class V>
class TypedMap {
 public:
  TypedMap() = default;  // no map until assigned from open()
  static Result<TypedMap> open(const Map& m) {
    if (m.per_cpu())
      return make_error(Errc::invalid_argument, "map " + m.name() + " is per-CPU",
                        "open it as a PerCpuMap");
    if (m.key_size() != sizeof(K) || m.value_size() != sizeof(V))
      return size_mismatch(m, sizeof(K), sizeof(V));
    QOCNET_ASSIGN(d, m.dup());
    return TypedMap(std::move(d));
  }

  Status update(const K& key, const V& value, std::uint64_t flags = BPF_ANY) {
    if (bpf_map_update_elem(map_.fd(), &key, &value, flags) != 0) {
      int err = errno;
      return map_error(map_, "update", err);
    }
    return {};
  }
  Result<std::optional<V>> lookup(const K& key) const {
    V v{};
    if (bpf_map_lookup_elem(map_.fd(), &key, &v) == 0) return std::optional<V>(v);
    if (errno == ENOENT) return std::optional<V>();
    return map_error(map_, "lookup", errno);
  }
  // Returns true when the key existed.
  Result<bool> erase(const K& key) {
    if (bpf_map_delete_elem(map_.fd(), &key) == 0) return true;
    if (errno == ENOENT) return false;
    return map_error(map_, "delete", errno);
  }
  Result<std::vector<K>> keys() const { return map_keys<K>(map_); }
  const Map& map() const { return map_; }

  static Error size_mismatch(const Map& m, std::size_t k, std::size_t v) {
    return make_error(Errc::failed_precondition,
                      "map " + m.name() + " has key/value size " + std::to_string(m.key_size()) +
                          "/" + std::to_string(m.value_size()) + " but the control plane expects " +
                          std::to_string(k) + "/" + std::to_string(v),
                      "rebuild qocnet so bpf_src/ and the library share one qoc_abi.h");
  }

  template <class Key>
  static Result<std::vector<Key>> map_keys(const Map& m) {
    std::vector<Key> out;
    Key cur{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(m.fd(), prev, &next) == 0) {
      out.push_back(next);
      cur = next;
      prev = &cur;
    }
    if (errno != ENOENT) return map_error(m, "iterate", errno);
    return out;
  }

 private:
  explicit TypedMap(Map m) : map_(std::move(m)) {}
  Map map_;
};

// Typed view of a per-CPU hash or array map: values are read as one V per
// possible CPU and written to every CPU.
template <class K, class V>
class PerCpuMap {
  static_assert(sizeof(V) % 8 == 0, "per-CPU values are laid out in 8-byte slots");

 public:
  PerCpuMap() = default;  // no map until assigned from open()
  static Result<PerCpuMap> open(const Map& m) {
    if (!m.per_cpu())
      return make_error(Errc::invalid_argument, "map " + m.name() + " is not per-CPU",
                        "open it as a TypedMap");
    if (m.key_size() != sizeof(K) || m.value_size() != sizeof(V))
      return TypedMap<K, V>::size_mismatch(m, sizeof(K), sizeof(V));
    QOCNET_ASSIGN(d, m.dup());
    return PerCpuMap(std::move(d));
  }

  Result<std::optional<std::vector<V>>> lookup_all(const K& key) const {
    std::vector<V> vals(static_cast<std::size_t>(possible_cpus()));
    if (bpf_map_lookup_elem(map_.fd(), &key, vals.data()) == 0)
      return std::optional<std::vector<V>>(std::move(vals));
    if (errno == ENOENT) return std::optional<std::vector<V>>();
    return map_error(map_, "lookup", errno);
  }
  // Sets the same value on every CPU (e.g. zero to create or reset an entry).
  Status update_all(const K& key, const V& value, std::uint64_t flags = BPF_ANY) {
    std::vector<V> vals(static_cast<std::size_t>(possible_cpus()), value);
    if (bpf_map_update_elem(map_.fd(), &key, vals.data(), flags) != 0) {
      int err = errno;
      return map_error(map_, "update", err);
    }
    return {};
  }
  Result<bool> erase(const K& key) {
    if (bpf_map_delete_elem(map_.fd(), &key) == 0) return true;
    if (errno == ENOENT) return false;
    return map_error(map_, "delete", errno);
  }
  Result<std::vector<K>> keys() const { return TypedMap<K, V>::template map_keys<K>(map_); }
  const Map& map() const { return map_; }

 private:
  explicit PerCpuMap(Map m) : map_(std::move(m)) {}
  Map map_;
};

}  // namespace qocnet::detail
