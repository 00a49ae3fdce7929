// SPDX-License-Identifier: Apache-2.0
// The offline classifier's reader (qocnet::FrameSource) and the errors of
// `qocnetctl classify` on bad input, without the kernel: formats recognised
// from their first bytes, records streamed, every bad input a clear error.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../support/capture_files.hpp"
#include "qocnet/classify.hpp"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

void write(const fs::path& p, const Bytes& b) { write_file(p, b); }

// A small Ethernet frame whose bytes say which one it is.
Bytes frame(std::uint8_t tag, std::size_t n = 60) {
  Bytes f(n, tag);
  f[12] = 0x08;
  f[13] = 0x00;
  return f;
}

Bytes pcap(const std::vector<Bytes>& recs, bool big, bool nano, std::uint32_t linktype = 1) {
  return pcap_file(recs, big, nano, linktype, 65535);
}

void block(Bytes& b, std::uint32_t type, const Bytes& body, bool big) {
  const std::uint32_t len = static_cast<std::uint32_t>(12 + (body.size() + 3) / 4 * 4);
  put32(b, type, big);
  put32(b, len, big);
  b.insert(b.end(), body.begin(), body.end());
  b.resize(b.size() + (4 - body.size() % 4) % 4, 0);
  put32(b, len, big);
}

// pcapng: a section, an Ethernet interface, a statistics block (skipped),
// the records as enhanced packet blocks and the last as a simple one.
Bytes pcapng(const std::vector<Bytes>& recs, bool big) {
  Bytes b, body;
  put32(body, 0x1A2B3C4D, big);
  put16(body, 1, big);
  put16(body, 0, big);
  put32(body, 0xffffffff, big);
  put32(body, 0xffffffff, big);
  block(b, 0x0A0D0D0A, body, big);
  body.clear();
  put16(body, 1, big);
  put16(body, 0, big);
  put32(body, 0, big);
  block(b, 1, body, big);
  block(b, 5, Bytes(20, 0), big);  // interface statistics
  for (std::size_t i = 0; i < recs.size(); ++i) {
    body.clear();
    if (i + 1 < recs.size()) {
      put32(body, 0, big);
      put32(body, 0, big);
      put32(body, 0, big);
      put32(body, static_cast<std::uint32_t>(recs[i].size()), big);
      put32(body, static_cast<std::uint32_t>(recs[i].size()), big);
      body.insert(body.end(), recs[i].begin(), recs[i].end());
      block(b, 6, body, big);
    } else {
      put32(body, static_cast<std::uint32_t>(recs[i].size()), big);
      body.insert(body.end(), recs[i].begin(), recs[i].end());
      block(b, 3, body, big);
    }
  }
  return b;
}

std::vector<Bytes> all_frames(FrameSource& src) {
  std::vector<Bytes> out;
  Bytes f;
  for (;;) {
    auto more = src.next(f);
    REQUIRE(more.ok());
    if (!*more) return out;
    out.push_back(f);
  }
}

// qocnetctl with `args`, its output captured and its peak RSS.
Child run_qocnetctl(const std::vector<std::string>& args) {
  static TmpDir scratch("unit-classify-child");
  std::vector<std::string> argv{QOCNETCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_child(argv, scratch.path);
}

}  // namespace

TEST_CASE("pcap in either byte order, with micro- or nanosecond stamps, is read record by record",
          "[unit][classify]") {
  const std::vector<Bytes> recs{frame(1), frame(2, 1514), frame(3, 9000)};
  for (bool big : {false, true})
    for (bool nano : {false, true}) {
      INFO((big ? "big" : "little") << "-endian, " << (nano ? "ns" : "us"));
      const Bytes file = pcap(recs, big, nano);
      auto src = FrameSource::from_memory(file);
      REQUIRE(src.ok());
      CHECK(src->kind() == std::string("pcap (EN10MB") + (nano ? ", ns)" : ")"));
      CHECK(all_frames(*src) == recs);
    }
}

TEST_CASE("pcapng in either byte order: packet blocks read, other blocks skipped", "[unit][classify]") {
  const std::vector<Bytes> recs{frame(1), frame(2, 61), frame(3, 1514)};
  for (bool big : {false, true}) {
    INFO((big ? "big" : "little") << "-endian");
    const Bytes file = pcapng(recs, big);
    auto src = FrameSource::from_memory(file);
    REQUIRE(src.ok());
    CHECK(src->kind() == "pcapng");
    CHECK(all_frames(*src) == recs);
  }
}

TEST_CASE("a .ts file is recognised by its sync bytes and cut into datagrams", "[unit][classify]") {
  Bytes ts;
  for (int i = 0; i < 10; ++i) {
    Bytes p(188, static_cast<std::uint8_t>(i));
    p[0] = 0x47;
    ts.insert(ts.end(), p.begin(), p.end());
  }
  ts.resize(ts.size() + 50, 0x47);  // a partial packet at the end
  auto src = FrameSource::from_memory(ts, "cam.ts", 4);
  REQUIRE(src.ok());
  CHECK(src->kind() == "ts");
  const auto frames = all_frames(*src);
  REQUIRE(frames.size() == 3);  // 4 + 4 + 2 packets
  CHECK(frames[0].size() == 42 + 4 * 188);
  CHECK(frames[2].size() == 42 + 2 * 188);
  CHECK(frames[1][42 + 188 + 1] == 5);
  REQUIRE(src->notes().size() == 1);
  CHECK(src->notes()[0].find("50 bytes at the end") != std::string::npos);
}

TEST_CASE("BSD loopback headers in either byte order and Linux cooked headers become Ethernet",
          "[unit][classify]") {
  Bytes ip4(40, 0x45), ip6(60, 0x60);
  for (std::uint32_t lt : {0u, 108u})
    for (bool big : {false, true}) {
      INFO("link type " << lt << ", family " << (big ? "big" : "little") << "-endian");
      Bytes r4, r6;
      put32(r4, 2, big);
      r4.insert(r4.end(), ip4.begin(), ip4.end());
      put32(r6, 30, big);  // AF_INET6 on macOS
      r6.insert(r6.end(), ip6.begin(), ip6.end());
      const Bytes file = pcap({r4, r6}, false, false, lt);
      auto src = FrameSource::from_memory(file);
      REQUIRE(src.ok());
      const auto f = all_frames(*src);
      REQUIRE(f.size() == 2);
      CHECK((f[0][12] == 0x08 && f[0][13] == 0x00));
      CHECK(Bytes(f[0].begin() + 14, f[0].end()) == ip4);
      CHECK((f[1][12] == 0x86 && f[1][13] == 0xdd));
    }
  Bytes sll(16, 0), sll2(20, 0);
  sll[14] = 0x86, sll[15] = 0xdd;
  sll2[0] = 0x08, sll2[1] = 0x00;
  sll.insert(sll.end(), ip6.begin(), ip6.end());
  sll2.insert(sll2.end(), ip4.begin(), ip4.end());
  for (auto [lt, rec, type] : {std::tuple{113u, sll, 0x86dd}, std::tuple{276u, sll2, 0x0800}}) {
    const Bytes file = pcap({rec}, true, false, lt);  // must outlive the source
    auto src = FrameSource::from_memory(file);
    REQUIRE(src.ok());
    const auto f = all_frames(*src);
    REQUIRE(f.size() == 1);
    CHECK(((f[0][12] << 8) | f[0][13]) == type);
  }
}

TEST_CASE("packets captured shorter than they were (snap length) are said so", "[unit][classify]") {
  Bytes file = pcap({frame(1), frame(2)}, false, false);
  file[24 + 12] = 200;  // record 0: original length 200, 60 captured
  auto src = FrameSource::from_memory(file);
  REQUIRE(src.ok());
  CHECK(all_frames(*src).size() == 2);
  REQUIRE(src->notes().size() == 1);
  CHECK(src->notes()[0].find("1 packets were captured shorter than they were") != std::string::npos);
  CHECK(src->notes()[0].find("tcpdump -s 0") != std::string::npos);
}

TEST_CASE("bad input to the reader is an error naming the problem and the fix", "[unit][classify]") {
  TmpDir tmp("unit-classify");
  auto err = [](const Result<FrameSource>& r) {
    REQUIRE_FALSE(r.ok());
    return r.error();
  };
  SECTION("a directory") {
    const auto e = err(FrameSource::open(tmp.path));
    CHECK(e.code == Errc::invalid_argument);
    CHECK(e.message.find("is a directory") != std::string::npos);
    CHECK(e.fix.find("inside it") != std::string::npos);
  }
  SECTION("a missing file") {
    CHECK(err(FrameSource::open(tmp.path / "nope.pcap")).code == Errc::not_found);
  }
  SECTION("an empty file") {
    write(tmp.path / "empty", {});
    const auto e = err(FrameSource::open(tmp.path / "empty"));
    CHECK(e.message.find("is empty") != std::string::npos);
  }
  SECTION("an unknown format") {
    const auto e = err(FrameSource::from_memory(Bytes{'h', 'e', 'l', 'l', 'o'}, "x.txt"));
    CHECK(e.message.find("neither an MPEG-TS file nor a capture (pcap/pcapng); it starts with 68 65 6c 6c") !=
          std::string::npos);
    CHECK(e.fix.find("tcpdump -w") != std::string::npos);
  }
  SECTION("192-byte M2TS packets") {
    Bytes m2ts(192 * 4, 0);
    for (int i = 0; i < 4; ++i) m2ts[i * 192] = 0x47;
    const auto e = err(FrameSource::from_memory(m2ts, "x.m2ts"));
    CHECK(e.message.find("byte 188") != std::string::npos);
    CHECK(e.fix.find("M2TS") != std::string::npos);
  }
  SECTION("a pcap header cut short") {
    const Bytes file = pcap({}, false, false);
    const auto e = err(FrameSource::from_memory(std::span(file).first(10), "cut.pcap"));
    CHECK(e.message.find("cut short: the pcap file header has 10 of 24 bytes") != std::string::npos);
  }
  SECTION("an unknown link type") {
    const auto e = err(FrameSource::from_memory(pcap({}, false, false, 147), "usb.pcap"));
    CHECK(e.message.find("link type 147") != std::string::npos);
  }
}

TEST_CASE("a capture cut short or damaged mid-way: the records before it, then the error",
          "[unit][classify]") {
  const std::vector<Bytes> recs{frame(1), frame(2), frame(3)};
  SECTION("pcap record cut") {
    Bytes file = pcap(recs, false, false);
    file.resize(file.size() - 7);
    auto src = FrameSource::from_memory(file, "cut.pcap");
    REQUIRE(src.ok());
    Bytes f;
    for (int i = 0; i < 2; ++i) {
      auto r = src->next(f);
      REQUIRE(r.ok());
      CHECK(*r);
    }
    auto r = src->next(f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("cut short: the last record has 53 of 60 bytes (record 2)") != std::string::npos);
  }
  SECTION("pcap record of an impossible length") {
    Bytes file = pcap(recs, false, false);
    file[24 + 8 + 3] = 0x7f;  // caplen of record 0
    auto src = FrameSource::from_memory(file, "bad.pcap");
    REQUIRE(src.ok());
    Bytes f;
    auto r = src->next(f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("is damaged at byte 40 (record 0)") != std::string::npos);
  }
  SECTION("pcapng block cut") {
    Bytes file = pcapng(recs, true);
    file.resize(file.size() - 30);
    auto src = FrameSource::from_memory(file, "cut.pcapng");
    REQUIRE(src.ok());
    Bytes f;
    std::size_t n = 0;
    Result<bool> r = true;
    while ((r = src->next(f)).ok() && *r) ++n;
    CHECK(n == 2);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("cut short") != std::string::npos);
  }
}

TEST_CASE("qocnetctl classify: bad files exit 2 with the problem and the fix, no abort",
          "[unit][classify]") {
  TmpDir tmp("unit-classify");
  write(tmp.path / "empty.pcap", {});
  write(tmp.path / "text.ts", Bytes(300, 'x'));
  const std::pair<fs::path, std::string> cases[] = {
      {tmp.path, "is a directory"},
      {tmp.path / "missing.pcap", "no such file"},
      {tmp.path / "empty.pcap", "is empty"},
      {tmp.path / "text.ts", "neither an MPEG-TS file nor a capture"},
  };
  for (const auto& [file, what] : cases) {
    INFO(file);
    const Child c = run_qocnetctl({"classify", file.string()});
    INFO(c.err);
    REQUIRE(WIFEXITED(c.status));
    CHECK(WEXITSTATUS(c.status) == 2);
    CHECK(c.err.find(what) != std::string::npos);
    CHECK(c.err.find("fix:") != std::string::npos);
  }
}

// The whole file used to be read into memory before its format was looked
// at: a 256 MiB file that is no capture peaked at 331 MiB. Now the format is
// recognised from the first bytes and records are streamed. qocnetctl's own
// peak (libbcc's LLVM and clang libraries, before any input is read) is
// about 76 MiB; what the input may add on top of it is bounded, and that is
// what is measured (ru_maxrss of the child, against the same run on a tiny
// file).
TEST_CASE("qocnetctl classify reads a 1 GiB file that is no capture in bounded memory",
          "[unit][classify]") {
  TmpDir tmp("unit-classify");
  const fs::path big = tmp.path / "zeros.pcap", small = tmp.path / "small.pcap";
  { std::ofstream(big, std::ios::binary); }
  fs::resize_file(big, std::uintmax_t{1} << 30);  // sparse: no disk, read as zeros
  write(small, Bytes(64, 0));
  const Child base = run_qocnetctl({"classify", small.string()});
  const Child c = run_qocnetctl({"classify", big.string()});
  INFO(c.err);
  REQUIRE(WIFEXITED(c.status));
  CHECK(WEXITSTATUS(c.status) == 2);
  CHECK(c.err.find("it starts with 00 00 00 00") != std::string::npos);
  INFO("peak RSS " << c.maxrss_kib << " KiB, on a 64-byte file " << base.maxrss_kib << " KiB");
  CHECK(c.maxrss_kib - base.maxrss_kib <= 8 * 1024);
}
