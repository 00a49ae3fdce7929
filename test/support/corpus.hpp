// SPDX-License-Identifier: Apache-2.0
// Real H.264 test video for the kernel and daemon tests: an ffmpeg-made TS
// corpus, cut into datagrams as ffmpeg's UDP output would (every 7 TS
// packets, or flushed at frame boundaries), and a hash to recognise a
// datagram at the receiver.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
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

// H.264 whose scene cuts (a mandelbrot picture laid over testsrc2 every
// 0.8 s) come closer than min-keyint: x264 codes them as I frames that are
// not IDRs, and the muxer does not mark them random access points.
struct SceneCuts {
  std::vector<std::uint8_t> ts;
  struct Frame {
    std::uint64_t pos = 0;  // byte offset of its first TS packet
    bool intra = false, key = false;
  };
  std::vector<Frame> frames;
};

inline const SceneCuts& scene_cuts() {
  static SceneCuts made = [] {
    SceneCuts sc;
    const std::string path = "/tmp/qocnet-scenecuts-" + std::to_string(::getpid()) + ".ts";
    auto r = testbed::run({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                           "testsrc2=size=640x480:rate=25", "-f", "lavfi", "-i", "mandelbrot=size=640x480:rate=25",
                           "-filter_complex", "[0][1]overlay=enable='lt(mod(t\\,1.6)\\,0.8)'", "-t", "8", "-c:v",
                           "libx264", "-preset", "veryfast", "-b:v", "2M", "-bf", "2", "-x264-params",
                           "keyint=100:min-keyint=100:scenecut=100:b-pyramid=none", "-f", "mpegts", path});
    INFO(describe(r));
    REQUIRE(r.ok());
    auto probe = testbed::run({"ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                               "frame=pkt_pos,pict_type,key_frame", "-of", "csv=p=0", path});
    INFO(describe(probe));
    REQUIRE(probe.ok());
    {
      std::ifstream f(path, std::ios::binary);
      std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(f)), {});
      sc.ts = std::move(data);
    }
    ::unlink(path.c_str());
    std::istringstream in(*probe);
    std::string line;
    while (std::getline(in, line)) {
      // key_frame,pkt_pos,pict_type (ffprobe's order of the entries)
      std::istringstream l(line);
      std::string key, pos, type;
      if (!std::getline(l, key, ',') || !std::getline(l, pos, ',') || !std::getline(l, type, ',')) continue;
      if (pos.empty() || pos == "N/A") continue;
      sc.frames.push_back({std::stoull(pos), type.rfind("I", 0) == 0, key == "1"});
    }
    std::sort(sc.frames.begin(), sc.frames.end(), [](const auto& a, const auto& b) { return a.pos < b.pos; });
    return sc;
  }();
  return made;
}


}  // namespace qocnet::test
