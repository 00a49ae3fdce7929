// Real H.264 test video for the kernel and daemon tests: an ffmpeg-made TS
// corpus, cut into datagrams as ffmpeg's UDP output would (every 7 TS
// packets, or flushed at frame boundaries), and a hash to recognise a
// datagram at the receiver.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "check.hpp"
#include "qocnet/testbed.hpp"

namespace qocnet::test {

inline std::uint64_t fnv(const std::uint8_t* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// A TS file made once per test run: 640x480 H.264 with up to `bframes`
// B-frames in a row (non-reference; 0: none, every frame after the key frame
// a P frame referenced by the next), a GOP of `gop` frames.
inline const std::vector<std::uint8_t>& corpus_ts(int gop, int bframes = 3) {
  static std::map<std::pair<int, int>, std::vector<std::uint8_t>> made;
  auto it = made.find({gop, bframes});
  if (it != made.end()) return it->second;
  const std::string path = "/tmp/qocnet-corpus-" + std::to_string(::getpid()) + ".ts";
  auto r = testbed::run({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                         "testsrc2=size=640x480:rate=25", "-t", "20", "-c:v", "libx264", "-preset",
                         "veryfast", "-b:v", "4M", "-bf", std::to_string(bframes), "-g", std::to_string(gop),
                         "-x264-params", "b-pyramid=none", "-f", "mpegts", path});
  INFO(describe(r));
  REQUIRE(r.ok());
  std::ifstream f(path, std::ios::binary);
  std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(f)), {});
  ::unlink(path.c_str());
  return made[{gop, bframes}] = std::move(data);
}

// ffmpeg's default UDP output: 7 TS packets per datagram, whatever the frames.
inline std::vector<std::vector<std::uint8_t>> cut_every_7(const std::vector<std::uint8_t>& ts) {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::size_t off = 0; off + 1316 <= ts.size(); off += 1316)
    out.emplace_back(ts.begin() + static_cast<long>(off), ts.begin() + static_cast<long>(off + 1316));
  return out;
}

// datagram at every PES start on the video PID, at most 7 TS packets each.
// frame_of[i] is datagram i's frame (0 before the first PES start).
inline std::vector<std::vector<std::uint8_t>> cut_at_frames(const std::vector<std::uint8_t>& ts,
                                                     std::vector<int>* frame_of) {
  constexpr std::uint16_t kVideo = 0x100;  // ffmpeg's first elementary stream PID
  std::vector<std::vector<std::uint8_t>> out;
  std::vector<std::uint8_t> cur;
  int frame = 0, cur_frame = 0;
  bool has_video = false;
  auto flush = [&] {
    if (cur.empty()) return;
    out.push_back(std::move(cur));
    frame_of->push_back(has_video ? cur_frame : 0);  // PSI alone: no frame's
    cur.clear();
    has_video = false;
  };
  for (std::size_t off = 0; off + 188 <= ts.size(); off += 188) {
    const std::uint8_t* p = &ts[off];
    const std::uint16_t pid = static_cast<std::uint16_t>(((p[1] & 0x1f) << 8) | p[2]);
    if (pid == kVideo && (p[1] & 0x40)) {
      flush();
      cur_frame = ++frame;
    }
    if (pid == kVideo) has_video = true;
    cur.insert(cur.end(), p, p + 188);
    if (cur.size() == 7 * 188) flush();
  }
  flush();
  REQUIRE(frame > 100);  // the video PID was right
  return out;
}

// What ffmpeg complains of when decoding the datagrams' TS (empty: nothing).
// The TS is cut before the last PES start on the video PID: a run of
// datagrams that stops mid-frame would otherwise end in a frame cut short.
inline std::string decode_errors(const std::vector<std::vector<std::uint8_t>>& dg) {
  std::vector<std::uint8_t> ts;
  for (const auto& d : dg) ts.insert(ts.end(), d.begin(), d.end());
  for (std::size_t off = ts.size() / 188 * 188; off >= 188; off -= 188) {
    const std::uint8_t* p = &ts[off - 188];
    if (p[0] == 0x47 && (p[1] & 0x40) && (((p[1] & 0x1f) << 8) | p[2]) == 0x100) {
      ts.resize(off - 188);
      break;
    }
  }
  const std::string path = "/tmp/qocnet-decode-" + std::to_string(::getpid()) + ".ts";
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(ts.data()), static_cast<std::streamsize>(ts.size()));
  }
  auto r = testbed::run({"sh", "-c", "ffmpeg -hide_banner -v error -i " + path + " -f null - 2>&1"});
  ::unlink(path.c_str());
  INFO(describe(r));
  REQUIRE(r.ok());
  return *r;
}

}  // namespace qocnet::test
