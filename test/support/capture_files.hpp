// SPDX-License-Identifier: Apache-2.0
// Capture files built byte by byte, a scratch directory, and a child program
// run with its output and peak memory: shared by the classify tests (unit
// and kernel).
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace qocnet::test {

using FileBytes = std::vector<std::uint8_t>;

// A directory under the system's temp dir, removed with everything in it.
struct TmpDir {
  std::filesystem::path path;
  explicit TmpDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() / ("qocnet-" + tag + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TmpDir(const TmpDir&) = delete;
  TmpDir& operator=(const TmpDir&) = delete;
};

inline void put32(FileBytes& b, std::uint32_t v, bool big) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(big ? v >> (24 - 8 * i) : v >> (8 * i)));
}
inline void put16(FileBytes& b, std::uint16_t v, bool big) {
  b.push_back(static_cast<std::uint8_t>(big ? v >> 8 : v));
  b.push_back(static_cast<std::uint8_t>(big ? v : v >> 8));
}

// A pcap file of `linktype` (1: Ethernet) in the given byte order, with
// micro- or nanosecond stamps; every record whole.
inline FileBytes pcap_file(const std::vector<FileBytes>& records, bool big = false, bool nano = false,
                           std::uint32_t linktype = 1, std::uint32_t snaplen = 262144) {
  FileBytes b;
  put32(b, nano ? 0xa1b23c4d : 0xa1b2c3d4, big);
  put16(b, 2, big);
  put16(b, 4, big);
  put32(b, 0, big);
  put32(b, 0, big);
  put32(b, snaplen, big);
  put32(b, linktype, big);
  std::uint32_t t = 0;
  for (const auto& r : records) {
    put32(b, ++t, big);
    put32(b, 0, big);
    put32(b, static_cast<std::uint32_t>(r.size()), big);
    put32(b, static_cast<std::uint32_t>(r.size()), big);
    b.insert(b.end(), r.begin(), r.end());
  }
  return b;
}

inline void write_file(const std::filesystem::path& p, const FileBytes& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                           static_cast<std::streamsize>(b.size()));
}

inline std::string read_text(const std::filesystem::path& p) {
  std::string s;
  if (FILE* in = std::fopen(p.c_str(), "r")) {
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) s.append(buf, n);
    std::fclose(in);
  }
  return s;
}

struct Child {
  int status = -1;  // as from wait4
  std::string out, err;
  long maxrss_kib = 0;
};

// Runs `argv` with stdout and stderr captured (through files in `scratch`);
// its exit status and peak RSS from wait4.
inline Child run_child(const std::vector<std::string>& argv, const std::filesystem::path& scratch) {
  const auto outf = scratch / "child.stdout", errf = scratch / "child.stderr";
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int o = ::open(outf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(errf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0) ::_exit(120);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  Child c;
  rusage ru{};
  REQUIRE(::wait4(pid, &c.status, 0, &ru) == pid);
  c.maxrss_kib = ru.ru_maxrss;
  c.out = read_text(outf);
  c.err = read_text(errf);
  std::error_code ec;
  std::filesystem::remove(outf, ec);
  std::filesystem::remove(errf, ec);
  return c;
}

}  // namespace qocnet::test
