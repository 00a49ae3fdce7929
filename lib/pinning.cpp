// SPDX-License-Identifier: Apache-2.0
#include "pinning.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace qocnet::detail {

namespace fs = std::filesystem;

namespace {

const char* const kMapsDir = "maps";
const char* const kProgsDir = "progs";

// bpffs refuses names with dots (EPERM): a pin being replaced is made as
// qoctmp_<name> and renamed over <name>.
constexpr const char* kTmpPrefix = "qoctmp_";

bool is_qoc_name(const std::string& n) { return n.rfind("qoc_", 0) == 0 || n.rfind(kTmpPrefix, 0) == 0; }

Result<UniqueFd> obj_get(const fs::path& p) {
  int fd = bpf_obj_get(p.c_str());
  if (fd < 0)
    return make_error(errno == ENOENT ? Errc::not_found : Errc::internal,
                      "cannot open pin " + p.string(), {}, errno);
  return UniqueFd(fd);
}

std::string holder_of(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
  return pid > 0 ? "qocnet process " + std::to_string(pid) : std::string("another qocnet process");
}

}  // namespace

Error incompatible_pins(const fs::path& pin_dir, const std::string& why) {
  return make_error(Errc::failed_precondition,
                    "the pinned datapath in " + pin_dir.string() + " cannot be reused: " + why,
                    "remove it with `qocnetctl cleanup --pin-dir " + pin_dir.string() +
                        "` (or qocnet::cleanup(), or delete the pins: rm -r " + pin_dir.string() +
                        ") and start again; running traffic then waits for the new datapath");
}

Status check_bpffs(const fs::path& pin_dir) {
  fs::path p = pin_dir;
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  struct statfs st {};
  if (p.empty() || ::statfs(p.c_str(), &st) != 0 ||
      static_cast<unsigned long>(st.f_type) != static_cast<unsigned long>(BPF_FS_MAGIC))
    return make_error(Errc::unavailable,
                      "EdgeOptions::pin_dir " + pin_dir.string() + " is not on a BPF filesystem",
                      "mount one (mount -t bpf bpf /sys/fs/bpf) and put pin_dir under it; "
                      "`ip netns exec` hides /sys/fs/bpf, enter namespaces with nsenter --net= "
                      "or setns() instead");
  return {};
}

Result<std::optional<PinSet>> open_pins(const fs::path& pin_dir) {
  std::error_code ec;
  if (!fs::exists(pin_dir / kMetaPin, ec)) {
    // No meta: either nothing of qocnet's, or a set left half-made.
    for (const char* sub : {kMapsDir, kProgsDir})
      for (const auto& e : fs::directory_iterator(pin_dir / sub, ec))
        if (is_qoc_name(e.path().filename().string()))
          return incompatible_pins(pin_dir, "it holds " + e.path().string() + " but no " +
                                                kMetaPin + " (an interrupted first start?)");
    return std::optional<PinSet>();
  }
  PinSet set;
  QOCNET_ASSIGN(mfd, obj_get(pin_dir / kMetaPin));
  QOCNET_ASSIGN(meta_map, Map::adopt(std::move(mfd), kMetaPin));
  if (meta_map.type() != BPF_MAP_TYPE_ARRAY || meta_map.key_size() != 4 ||
      meta_map.value_size() != sizeof(PinMeta) || meta_map.max_entries() != 1)
    return incompatible_pins(pin_dir, std::string(kMetaPin) + " is not a qocnet metadata map of this "
                                      "version (value size " +
                                          std::to_string(meta_map.value_size()) + ")");
  __u32 zero = 0;
  if (bpf_map_lookup_elem(meta_map.fd(), &zero, &set.meta) != 0)
    return make_error(Errc::internal, "cannot read " + (pin_dir / kMetaPin).string(), {}, errno);
  if (set.meta.magic != kPinMagic)
    return incompatible_pins(pin_dir, std::string(kMetaPin) + " does not carry qocnet's mark");
  if (set.meta.layout_version != kMapLayoutVersion)
    return incompatible_pins(pin_dir, "its map layout version is " +
                                          std::to_string(set.meta.layout_version) +
                                          ", this qocnet uses version " +
                                          std::to_string(kMapLayoutVersion));
  set.meta_map = std::move(meta_map);
  for (const auto& e : fs::directory_iterator(pin_dir / kMapsDir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("qoc_", 0) != 0) continue;
    QOCNET_ASSIGN(fd, obj_get(e.path()));
    QOCNET_ASSIGN(m, Map::adopt(std::move(fd), name));
    set.maps.emplace(name, std::move(m));
  }
  for (const auto& e : fs::directory_iterator(pin_dir / kProgsDir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("qoc_", 0) != 0) continue;
    QOCNET_ASSIGN(fd, obj_get(e.path()));
    set.progs.emplace(name, std::move(fd));
  }
  return std::optional<PinSet>(std::move(set));
}

Status make_pin_dirs(const fs::path& pin_dir) {
  std::error_code ec;
  for (const char* sub : {kMapsDir, kProgsDir}) {
    fs::create_directories(pin_dir / sub, ec);
    if (ec)
      return make_error(Errc::failed_precondition,
                        "cannot create pin directory " + (pin_dir / sub).string(),
                        "check that pin_dir is on a writable BPF filesystem", ec.value());
  }
  return {};
}

Status pin_at(int fd, const fs::path& path) {
  const fs::path tmp = path.parent_path() / (kTmpPrefix + path.filename().string());
  ::unlink(tmp.c_str());
  if (bpf_obj_pin(fd, tmp.c_str()) != 0)
    return make_error(Errc::internal, "cannot pin " + path.string(),
                      "check that the pin directory is on a writable BPF filesystem", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return make_error(Errc::internal, "cannot move pin into place at " + path.string(), {}, err);
  }
  return {};
}

Result<Map> create_meta_map() {
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, kMetaPin, 4, sizeof(PinMeta), 1, nullptr);
  if (fd < 0) return make_error(Errc::internal, "cannot create the qoc_meta map", {}, errno);
  return Map::adopt(UniqueFd(fd), kMetaPin);
}

Status write_meta(const Map& meta_map, const PinMeta& meta) {
  __u32 zero = 0;
  if (bpf_map_update_elem(meta_map.fd(), &zero, &meta, BPF_ANY) != 0)
    return make_error(Errc::internal, "cannot write the qoc_meta map", {}, errno);
  return {};
}

std::vector<std::string> remove_pins(const fs::path& pin_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const char* sub : {kMapsDir, kProgsDir}) {
    std::vector<fs::path> victims;
    for (const auto& e : fs::directory_iterator(pin_dir / sub, ec))
      if (is_qoc_name(e.path().filename().string())) victims.push_back(e.path());
    for (const auto& v : victims)
      if (::unlink(v.c_str()) == 0) removed.push_back(v.string());
    if (::rmdir((pin_dir / sub).c_str()) == 0) removed.push_back((pin_dir / sub).string());
  }
  if (::unlink((pin_dir / kMetaPin).c_str()) == 0) removed.push_back((pin_dir / kMetaPin).string());
  if (::rmdir(pin_dir.c_str()) == 0) removed.push_back(pin_dir.string());
  return removed;
}

std::string escape_path(const fs::path& p) {
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  std::string out;
  for (char c : s) out += c == '/' ? '-' : c;
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  return out.empty() ? "root" : out;
}

fs::path state_file(const fs::path& pin_dir, const fs::path& lock_dir) {
  return lock_dir.lexically_normal().parent_path() / "state" / (escape_path(pin_dir) + ".yaml");
}

fs::path pin_lock_file(const fs::path& pin_dir, const fs::path& lock_dir) {
  return lock_dir / ("pin-" + escape_path(pin_dir) + ".lock");
}

Result<UniqueFd> take_pin_lock(const fs::path& path, const std::string& what) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid())
    return make_error(Errc::failed_precondition, "cannot open lock file " + path.string(),
                      "make the lock directory writable (EdgeOptions::lock_dir)", errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return make_error(Errc::already_exists, what + " is in use by " + holder_of(fd.get()),
                      "stop that process first; one Edge uses a pin dir at a time");
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    // The pid is only for messages; the lock itself holds.
  }
  return fd;
}

fs::path atomic_spare(const fs::path& path) { return path.string() + ".tmp"; }

Status write_file_atomic(const fs::path& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = atomic_spare(path);
  // No O_TRUNC: the spare (the previous text) is overwritten and then cut to
  // length, never truncated to zero, which ext4 (auto_da_alloc) answers by
  // writing the data out on close.
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid())
    return make_error(Errc::failed_precondition, "cannot write state file " + tmp.string(),
                      "make " + path.parent_path().string() + " writable (EdgeOptions::lock_dir)",
                      errno);
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::pwrite(fd.get(), text.data() + off, text.size() - off, static_cast<off_t>(off));
    if (n <= 0) return make_error(Errc::internal, "cannot write state file " + tmp.string(), {}, errno);
    off += static_cast<std::size_t>(n);
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0)
    return make_error(Errc::internal, "cannot write state file " + tmp.string(), {}, errno);
  // No fsync: the state must survive the process (a crash, kill -9), which
  // the exchange (or rename) alone guarantees; it need not survive the
  // machine, whose reboot takes the pinned maps with it. An fsync per change
  // cost 0.7 ms to many ms per policy change on a disk-backed /run
  // (docs/BENCHMARKS.md).
  fd.reset();
  // Into place by trading names with the current file, in one atomic step
  // like rename. A rename over an existing file makes ext4 (auto_da_alloc)
  // write the new file's data out at once: 0.2 to 1.5 ms per save on this
  // disk, against 0.03 ms for the exchange. Nothing to exchange with (the
  // first save), or a filesystem without RENAME_EXCHANGE: a plain rename.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
    struct stat st {};
    if (::lstat(tmp.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      // What stood at `path` was no file (a directory): put it back, as
      // rename would have refused it.
      (void)::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE);
      (void)::unlink(tmp.c_str());
      return make_error(Errc::internal, "cannot move state file into place at " + path.string(),
                        "remove what is at " + path.string() + " (not a file)", EISDIR);
    }
    return {};
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(Errc::internal, "cannot move state file into place at " + path.string(), {},
                      errno);
  return {};
}

}  // namespace qocnet::detail
