// SPDX-License-Identifier: Apache-2.0
#include "compiler.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "bcc_loader.hpp"
#include "preflight.hpp"

namespace qocnet::detail {

namespace fs = std::filesystem;

namespace {

std::mutex& compile_lock() {
  static std::mutex m;
  return m;
}

// Redirects fd 2 into a memfd while alive; take() returns what was written.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    mem_ = UniqueFd(::memfd_create("qocnet-stderr", MFD_CLOEXEC));
    saved_ = UniqueFd(::fcntl(2, F_DUPFD_CLOEXEC, 0));
    if (mem_.valid() && saved_.valid()) ::dup2(mem_.get(), 2);
  }
  ~StderrCapture() { restore(); }
  std::string take() {
    restore();
    std::string out;
    if (!mem_.valid()) return out;
    ::lseek(mem_.get(), 0, SEEK_SET);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(mem_.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  void restore() {
    if (!saved_.valid()) return;
    std::fflush(stderr);
    ::dup2(saved_.get(), 2);
    saved_.reset();
  }
  UniqueFd mem_, saved_;
};

// Sets an environment variable for the scope (under the compile lock).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (!value.empty()) ::setenv(name, value.c_str(), 1);
    active_ = !value.empty();
  }
  ~ScopedEnv() {
    if (!active_) return;
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false, active_ = false;
};

std::uint64_t fnv1a(std::uint64_t h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Result<std::string> read_file(const fs::path& p) {
  std::ifstream f(p);
  if (!f)
    return make_error(Errc::not_found, "BPF source " + p.string() + " cannot be read",
                      "point QOCNET_BPF_SRC_DIR (or EdgeOptions::bpf_src_dir) at qocnet's bpf_src/ "
                      "directory, or unset it to use the sources built into the library");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Where the BPF files come from: a directory, or the embedded copies.
class SourceSet {
 public:
  explicit SourceSet(fs::path dir) : dir_(std::move(dir)) {}
  Result<std::string> read(const std::string& name) const {
    if (!dir_.empty()) return read_file(dir_ / name);
    for (const auto& s : embedded_bpf_sources())
      if (name == s.name) return std::string(s.text);
    return make_error(Errc::not_found, "no embedded BPF source " + name,
                      "rebuild qocnet: cmake embeds every file of bpf_src/");
  }
  bool has(const std::string& name) const {
    std::error_code ec;
    if (!dir_.empty()) return fs::is_regular_file(dir_ / name, ec);
    for (const auto& s : embedded_bpf_sources())
      if (name == s.name) return true;
    return false;
  }
  // The name diagnostics show for a file.
  std::string display(const std::string& name) const {
    return dir_.empty() ? "bpf_src/" + name : (dir_ / name).string();
  }

 private:
  fs::path dir_;
};

// libbcc rewrites map operations (map.lookup(), ...) only in the file it is
// given, not in headers it includes. So qocnet hands it one translation unit:
// every `#include "qoc_*.h"` of a file from the source set is replaced by that
// file (once, as include guards would), framed by #line markers so clang's
// diagnostics still name the real file and line. System includes stay.
Status flatten(const SourceSet& src, const std::string& name, std::set<std::string>& seen,
               std::string& out, int depth) {
  if (depth > 16)
    return make_error(Errc::invalid_argument, "BPF includes nest deeper than 16 at " + name,
                      "look for an include cycle in bpf_src/");
  seen.insert(name);
  QOCNET_ASSIGN(text, src.read(name));
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  out += "#line 1 \"" + src.display(name) + "\"\n";
  while (std::getline(in, line)) {
    ++lineno;
    std::string inc;
    auto h = line.find_first_not_of(" \t");
    if (h != std::string::npos && line.compare(h, 1, "#") == 0) {
      auto k = line.find_first_not_of(" \t", h + 1);
      if (k != std::string::npos && line.compare(k, 7, "include") == 0) {
        auto q1 = line.find('"', k + 7), q2 = q1 == std::string::npos ? q1 : line.find('"', q1 + 1);
        if (q2 != std::string::npos) inc = line.substr(q1 + 1, q2 - q1 - 1);
      }
    }
    if (inc.empty() || !src.has(inc)) {
      out += line + "\n";
      continue;
    }
    if (!seen.count(inc)) QOCNET_TRY(flatten(src, inc, seen, out, depth + 1));
    out += "#line " + std::to_string(lineno + 1) + " \"" + src.display(name) + "\"\n";
  }
  return {};
}

std::string first_error_line(const std::string& diag) {
  std::istringstream in(diag);
  std::string line;
  while (std::getline(in, line))
    if (line.find("error:") != std::string::npos) return line;
  return {};
}

std::string verifier_tail(const std::string& log, std::size_t max_lines) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  std::string l;
  while (std::getline(in, l)) lines.push_back(l);
  std::string out;
  std::size_t start = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = start; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

// Rewrites the map fds of BPF_LD_IMM64 map references (BPF_PSEUDO_MAP_FD,
// BPF_PSEUDO_MAP_VALUE) from libbcc's maps to the maps that replace them.
void remap_map_fds(std::vector<bpf_insn>& insns, const std::map<int, int>& remap) {
  for (std::size_t i = 0; i + 1 < insns.size(); ++i) {
    bpf_insn& in = insns[i];
    if (in.code != (BPF_LD | BPF_DW | BPF_IMM)) continue;
    if (in.src_reg == BPF_PSEUDO_MAP_FD || in.src_reg == BPF_PSEUDO_MAP_VALUE) {
      auto it = remap.find(in.imm);
      if (it != remap.end()) in.imm = it->second;
    }
    ++i;  // the second half of the 16-byte instruction
  }
}

// libbcc's compiled module, freed (with its LLVM memory and its map fds) at
// the end of the scope.
class BccObject {
 public:
  BccObject(const qocnet_bcc_api* api, qocnet_bcc_object* obj) : api_(api), obj_(obj) {}
  ~BccObject() { api_->destroy(obj_); }
  BccObject(const BccObject&) = delete;
  BccObject& operator=(const BccObject&) = delete;
  const qocnet_bcc_api& api() const { return *api_; }
  const qocnet_bcc_object* get() const { return obj_; }

 private:
  const qocnet_bcc_api* api_;
  qocnet_bcc_object* obj_;
};

Result<Program> load_program(const BccObject& mod, const std::string& name,
                             const std::map<int, int>& remap) {
  auto* start = static_cast<const bpf_insn*>(mod.api().function_start(mod.get(), name.c_str()));
  size_t size = mod.api().function_size(mod.get(), name.c_str());
  if (!start || size == 0)
    return make_error(Errc::not_found, "BPF function " + name + " not found in the compiled source",
                      "define `int " + name + "(struct __sk_buff *skb)` in the entry file");
  std::vector<bpf_insn> code(start, start + size / sizeof(bpf_insn));
  remap_map_fds(code, remap);
  const bpf_insn* insns = code.data();
  std::string log(1u << 20, '\0');
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.log_buf = log.data();
  opts.log_size = static_cast<__u32>(log.size());
  opts.log_level = 0;
  const char* license = mod.api().license(mod.get());
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name.c_str(), license, insns,
                         size / sizeof(bpf_insn), &opts);
  int err = errno;
  if (fd < 0 && (err == EACCES || err == EINVAL)) {
    // Load again with the verifier log on, to show why it refused.
    log.assign(log.size(), '\0');
    opts.log_level = 1;
    fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name.c_str(), license, insns,
                       size / sizeof(bpf_insn), &opts);
    err = errno;
  }
  if (fd < 0) {
    Error e = make_error(err == EPERM ? Errc::permission_denied : Errc::failed_precondition,
                         "the kernel refused BPF program " + name,
                         err == EPERM ? "run as root or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN"
                                      : "see the verifier log below; fix the program in bpf_src/",
                         err);
    log.resize(std::strlen(log.c_str()));
    if (!log.empty()) e.detail = "verifier log (last lines):\n" + verifier_tail(log, 40);
    return e;
  }
  return Program::adopt(UniqueFd(fd), name);
}

}  // namespace

std::string clean_diagnostics(const std::string& raw, const std::string& entry_name) {
  std::istringstream in(raw);
  std::string line, out;
  while (std::getline(in, line)) {
    // libbcc's own chatter, not the user's business.
    if (line.find("modprobe: not found") != std::string::npos ||
        line.find("sha1 socket not available") != std::string::npos ||
        line.find("chdir(") == 0 ||
        line.find("Unable to find kernel headers") != std::string::npos)
      continue;
    for (std::string::size_type p; (p = line.find("/virtual/main.c")) != std::string::npos;)
      line.replace(p, 15, entry_name);
    out += line + "\n";
  }
  return out;
}

namespace {

std::atomic<std::uint64_t> g_compiles{0};

// The one translation unit handed to libbcc, its flags and their hash.
struct Prepared {
  std::string text;
  std::vector<std::string> flags;
  std::string origin;
  std::string entry_display;
  std::uint64_t hash = 0;
};

Result<Prepared> prepare(const CompileRequest& req) {
  fs::path dir = req.src_dir;
  if (dir.empty())
    if (const char* env = std::getenv("QOCNET_BPF_SRC_DIR"); env && *env) dir = env;
  const SourceSet sources(dir);
  Prepared p;
  p.origin = dir.empty() ? "embedded" : dir.string();
  p.entry_display = sources.display(req.entry);
  if (!sources.has(req.entry))
    return make_error(Errc::not_found, "BPF source " + sources.display(req.entry) + " not found",
                      "point QOCNET_BPF_SRC_DIR (or EdgeOptions::bpf_src_dir) at qocnet's bpf_src/ "
                      "directory, or unset it to use the sources built into the library");
  std::set<std::string> seen;
  QOCNET_TRY(flatten(sources, req.entry, seen, p.text, 0));
  for (const auto& d : req.defines) p.flags.push_back("-D" + d);
  // #line markers name the source directory; hash the text without them so
  // the same sources hash alike wherever they are read from.
  std::string hashed;
  std::istringstream in(p.text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("#line ", 0) != 0) hashed += line + "\n";
  std::uint64_t h = fnv1a(1469598103934665603ull, hashed);
  for (const auto& f : p.flags) h = fnv1a(h, f);
  p.hash = h;
  return p;
}

// Checks that `pinned` can stand in for the map libbcc declared as `fresh`.
Status check_shape(const Map& fresh, const Map& pinned) {
  auto shape = [](const Map& m) {
    return "type " + std::to_string(m.type()) + ", key " + std::to_string(m.key_size()) +
           " B, value " + std::to_string(m.value_size()) + " B, max_entries " +
           std::to_string(m.max_entries()) + ", flags 0x" + [&] {
             char b[16];
             std::snprintf(b, sizeof b, "%x", m.map_flags());
             return std::string(b);
           }();
  };
  if (fresh.type() == pinned.type() && fresh.key_size() == pinned.key_size() &&
      fresh.value_size() == pinned.value_size() && fresh.max_entries() == pinned.max_entries() &&
      fresh.map_flags() == pinned.map_flags())
    return {};
  return make_error(Errc::failed_precondition,
                    "pinned map " + fresh.name() + " (" + shape(pinned) +
                        ") does not match the map the new datapath declares (" + shape(fresh) + ")",
                    "remove the pins (qocnetctl cleanup) or start with the options and sources "
                    "that made them");
}

}  // namespace

Result<std::uint64_t> hash_sources(const CompileRequest& req) {
  QOCNET_ASSIGN(p, prepare(req));
  return p.hash;
}

std::uint64_t compile_count() { return g_compiles.load(); }

Result<CompiledObject> compile_bpf(const CompileRequest& req) {
  std::lock_guard<std::mutex> lock(compile_lock());
  const auto t0 = std::chrono::steady_clock::now();

  QOCNET_ASSIGN(headers, check_kernel_headers(req.kernel_headers));
  QOCNET_ASSIGN(prep, prepare(req));
  // libbcc, LLVM and Clang are mapped here, on the first compile only.
  QOCNET_ASSIGN(bcc, bcc_module());
  const std::string& origin = prep.origin;
  const std::string& text = prep.text;
  std::vector<const char*> cflags;
  for (const auto& f : prep.flags) cflags.push_back(f.c_str());

  CompiledObject obj;
  obj.source_origin = origin;
  obj.source_hash = prep.hash;
  g_compiles++;

  {
    ScopedEnv kenv("BCC_KERNEL_SOURCE", req.kernel_headers.empty() ? std::string() : headers.string());
    std::string raw;
    int rc;
    qocnet_bcc_object* compiled = nullptr;
    char exception_text[512] = "";
    {
      StderrCapture cap;
      rc = bcc->compile(text.c_str(), cflags.data(), static_cast<int>(cflags.size()), &compiled,
                        exception_text, sizeof exception_text);
      raw = cap.take();
    }
    if (rc == 0 && !compiled) rc = -1;
    if (exception_text[0]) raw += std::string("libbcc: ") + exception_text + "\n";
    std::string diag = clean_diagnostics(raw, prep.entry_display);
    if (rc != 0) {
      std::string first = first_error_line(diag);
      Error e = make_error(Errc::failed_precondition,
                           "BPF compile of " + req.entry + " failed" +
                               (first.empty() ? std::string() : ": " + first),
                           origin == "embedded"
                               ? "the built-in sources did not compile against these kernel headers (" +
                                     headers.string() + "); check the headers with scripts/bootstrap"
                               : "fix the C source in " + origin +
                                     " or unset QOCNET_BPF_SRC_DIR to use the built-in sources");
      e.detail = diag.empty() ? "(libbcc printed no diagnostics)" : "clang diagnostics:\n" + diag;
      return e;
    }
    const BccObject mod(bcc, compiled);
    obj.warnings = diag;

    // The maps first: a pinned map that replaces a declared one must have
    // its shape, checked before any program is loaded.
    std::map<int, int> remap;
    const qocnet_bcc_api& api = mod.api();
    for (size_t i = 0; i < api.num_tables(mod.get()); ++i) {
      const int table_fd = api.table_fd(mod.get(), i);
      int fd = ::fcntl(table_fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return make_error(Errc::internal, "cannot keep map fd", {}, errno);
      QOCNET_ASSIGN(m, Map::adopt(UniqueFd(fd), api.table_name(mod.get(), i)));
      if (req.reuse_maps) {
        auto it = req.reuse_maps->find(m.name());
        if (it != req.reuse_maps->end()) {
          QOCNET_TRY(check_shape(m, it->second));
          remap[table_fd] = it->second.fd();
          QOCNET_ASSIGN(d, it->second.dup());
          obj.maps.emplace(d.name(), std::move(d));
          continue;
        }
      }
      obj.maps.emplace(m.name(), std::move(m));
    }
    for (const auto& name : req.programs) {
      QOCNET_ASSIGN(p, load_program(mod, name, remap));
      obj.programs.emplace(name, std::move(p));
    }
  }  // the module and its LLVM memory go here; the fds stay.
  obj.compile_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return obj;
}

}  // namespace qocnet::detail
