// SPDX-License-Identifier: Apache-2.0
// A pinned edge datapath on a BPF filesystem (docs/ARCHITECTURE.md, Pinning
// and restart):
//
//   <pin_dir>/qoc_meta          array map, 1 entry: PinMeta (layout, hash)
//   <pin_dir>/maps/<name>       every map of bpf_src/qoc_maps.h
//   <pin_dir>/progs/<name>      qoc_edge_in, qoc_ts_slow, qoc_deliver
//
// and the control-plane state next to the lock dir:
//
//   <lock_dir>/../state/<escaped pin_dir>.yaml
//   <lock_dir>/pin-<escaped pin_dir>.lock      held by the Edge using the pins
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "bpf_objects.hpp"
#include "fd.hpp"
#include "qoc_consts.h"
#include "qocnet/error.hpp"

namespace qocnet::detail {

// Version of what a pin directory holds: the maps' layouts (the structs of
// qoc_abi.h, each map's type and meaning), the pin directory's layout and
// PinMeta. Bump it when any of them changes in a way an older datapath's
// pins cannot be reused by the new code: a pin of another version is
// refused, never reused. The assert below fails when qoc_abi.h's own
// version moves, as a reminder to bump this one with it.
inline constexpr std::uint32_t kMapLayoutVersion = 9;
static_assert(QOC_ABI_VERSION == 11,
              "qoc_abi.h changed its version: bump kMapLayoutVersion and this assert");

inline constexpr std::uint32_t kPinMagic = 0x716f636eu;  // "qocn"
inline constexpr const char* kMetaPin = "qoc_meta";

// The one value of the qoc_meta map.
struct PinMeta {
  __u32 magic;
  __u32 layout_version;
  __u64 source_hash;  // 0 while programs are being replaced
  __u32 max_ports;
  __u32 reserved;
};
static_assert(sizeof(PinMeta) == 24);

// What a pin directory holds.
struct PinSet {
  Map meta_map;
  PinMeta meta{};
  std::map<std::string, Map> maps;       // by map name
  std::map<std::string, UniqueFd> progs; // by program name
};

// pin_dir (or its nearest existing parent) is on a BPF filesystem.
Status check_bpffs(const std::filesystem::path& pin_dir);

// The pins under pin_dir: nullopt when there is none of qocnet's; an
// incompatible or incomplete pin set is failed_precondition naming the dir
// and the fix.
Result<std::optional<PinSet>> open_pins(const std::filesystem::path& pin_dir);

// A failed_precondition error about the pins under pin_dir, with the fix.
Error incompatible_pins(const std::filesystem::path& pin_dir, const std::string& why);

// Creates (or re-creates) the directories maps/ and progs/ under pin_dir.
Status make_pin_dirs(const std::filesystem::path& pin_dir);
// Pins fd at path, replacing an existing pin atomically (pin + rename).
Status pin_at(int fd, const std::filesystem::path& path);
// A new qoc_meta map, not pinned yet.
Result<Map> create_meta_map();
Status write_meta(const Map& meta_map, const PinMeta& meta);

// Removes qocnet's pins (qoc_* names) under pin_dir and the directories that
// are then empty; returns the paths removed.
std::vector<std::string> remove_pins(const std::filesystem::path& pin_dir);

// "sys-fs-bpf-qocnet-edge" for /sys/fs/bpf/qocnet/edge.
std::string escape_path(const std::filesystem::path& p);
std::filesystem::path state_file(const std::filesystem::path& pin_dir,
                                 const std::filesystem::path& lock_dir);
std::filesystem::path pin_lock_file(const std::filesystem::path& pin_dir,
                                    const std::filesystem::path& lock_dir);

// Takes an exclusive advisory lock on `path` without waiting, writing the
// pid into it; already_exists names the holder otherwise.
Result<UniqueFd> take_pin_lock(const std::filesystem::path& path, const std::string& what);

// Writes `text` to `path` atomically: into the spare file beside it, which
// then trades names with `path` (renameat2 RENAME_EXCHANGE; a plain rename
// where there is nothing to exchange with). A process killed at any point
// leaves `path` holding either the old or the new text, whole. The spare
// then holds the previous text and is rewritten in place next time (no new
// inode, no truncation to zero: either makes ext4 write the data out at once,
// docs/BENCHMARKS.md, State file cost). No fsync: see the .cpp.
Status write_file_atomic(const std::filesystem::path& path, const std::string& text);
// The spare file write_file_atomic keeps beside `path` (`path` + ".tmp");
// whoever removes `path` removes it too.
std::filesystem::path atomic_spare(const std::filesystem::path& path);

}  // namespace qocnet::detail
