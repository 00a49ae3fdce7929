// SPDX-License-Identifier: Apache-2.0
#include "control/daemon_state.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "yaml_text.hpp"

namespace fs = std::filesystem;

namespace qocnet::control {

namespace {

constexpr int kFormat = 1;

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

Error damaged(const fs::path& file, const std::string& what) {
  return make_error(Errc::failed_precondition, "qocnetd's state file " + file.string() + " " + what,
                    "remove it (registered processes then register again) or restore it");
}

}  // namespace

std::string token_hash(const std::string& token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
  return hex(md, sizeof md);
}

bool token_matches(const std::string& token, const std::string& hash) {
  const std::string h = token_hash(token);
  return !hash.empty() && h.size() == hash.size() && CRYPTO_memcmp(h.data(), hash.data(), h.size()) == 0;
}

std::string new_token() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  }
  return hex(bytes, sizeof bytes);
}

std::uint64_t next_epoch(std::uint64_t last) {
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::uint64_t e = now > 0 ? static_cast<std::uint64_t>(now) : 1;
  if (last < kMaxOrder) e = std::max(e, last + 1);
  return std::min(e, kMaxOrder);
}

fs::path default_state_file(const fs::path& pin_dir, const fs::path& lock_dir) {
  std::string name;
  for (unsigned char c : pin_dir.lexically_normal().string()) {
    if (std::isalnum(c) || c == '-' || c == '.') {
      name += static_cast<char>(c);
    } else {
      static const char* digits = "0123456789abcdef";
      name += '_';
      name += digits[c >> 4];
      name += digits[c & 15];
    }
  }
  return lock_dir.lexically_normal().parent_path() / "state" / ("qocnetd-" + name + ".yaml");
}

Result<DaemonState> load_daemon_state(const fs::path& file) {
  DaemonState s;
  std::error_code ec;
  if (!fs::exists(file, ec)) return s;
  try {
    const YAML::Node root = YAML::LoadFile(file.string());
    if (!root.IsMap() || !root["format"] || !root["format"].IsScalar() || root["format"].as<int>() != kFormat)
      return damaged(file, "is not in format " + std::to_string(kFormat));
    if (auto e = root["epoch"]) s.epoch = e.as<std::uint64_t>();
    if (auto ps = root["processes"]) {
      if (!ps.IsMap()) return damaged(file, "has processes that is not a mapping");
      for (const auto& kv : ps) {
        const auto name = kv.first.as<std::string>();
        StoredProcess p;
        p.token_hash = kv.second["token_sha256"].as<std::string>();
        if (p.token_hash.size() != 2 * SHA256_DIGEST_LENGTH) return damaged(file, "has a bad hash for '" + name + "'");
        if (auto ds = kv.second["streams"])
          for (const auto& d : ds)
            p.demands.push_back(StoredDemand{d["stream"].as<std::string>(), d["required"].as<double>(),
                                             d["target"].as<double>(), d["wanted"].as<std::string>()});
        s.processes[name] = std::move(p);
      }
    }
  } catch (const std::exception& e) {
    return damaged(file, std::string("cannot be read: ") + e.what());
  }
  return s;
}

std::string format_daemon_state(const DaemonState& s) {
  std::string out;
  out.reserve(128 + 160 * s.processes.size());
  out += "format: " + std::to_string(kFormat) + "\nepoch: " + std::to_string(s.epoch) + "\nprocesses:";
  if (s.processes.empty()) out += " {}";
  out += '\n';
  for (const auto& [name, p] : s.processes) {
    out += "  ";
    detail::put_quoted(out, name);
    out += ":\n    token_sha256: ";
    detail::put_quoted(out, p.token_hash);
    out += "\n    streams:";
    if (p.demands.empty()) out += " []";
    out += '\n';
    for (const auto& d : p.demands) {
      out += "      - {stream: ";
      detail::put_quoted(out, d.stream);
      out += ", required: ";
      detail::put_real(out, d.required);
      out += ", target: ";
      detail::put_real(out, d.target);
      out += ", wanted: ";
      detail::put_quoted(out, d.wanted);
      out += "}\n";
    }
  }
  return out;
}

Status save_daemon_state(const fs::path& file, const DaemonState& s, bool durable) {
  const std::string text = format_daemon_state(s);
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  const fs::path tmp = file.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return make_error(Errc::unavailable, "cannot write " + tmp.string() + ": " + std::strerror(errno),
                      "check that qocnetd may write in " + file.parent_path().string(), errno);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && (!durable || ::fsync(fd) == 0);
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error(Errc::unavailable, "cannot write " + file.string() + ": " + std::strerror(err),
                      "check the disk and the directory's permissions", err);
  }
  return {};
}

}  // namespace qocnet::control
