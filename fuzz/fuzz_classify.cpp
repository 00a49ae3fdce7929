// SPDX-License-Identifier: Apache-2.0
// fuzz_classify: the offline classifier (`qocnetctl classify`) on arbitrary
// bytes: FrameSource's format recognition and its pcap (both byte orders,
// us/ns), pcapng and .ts readers, the link-type conversion to Ethernet, and
// classify_stream's user-space side: the header parser, the cutting of
// frames over the test-run limit, per-stream frame tracking and the PES PTS
// reader. The kernel's verdict (BPF_PROG_TEST_RUN needs root and a loaded
// program) is stood in for by one derived from each frame's bytes, so the
// tracking sees video PIDs appear and change and frame counters rise, jump
// and restart. Promises checked (a broken one aborts, a finding):
//   - every frame handed to the verdict is a whole Ethernet header or more
//     and at most max_test_run_frame() bytes (what the kernel accepts);
//   - datagram rows come in file order, one per frame read;
//   - a frame row is numbered from 1 and names the stream it belongs to.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "qocnet/classify.hpp"

namespace {

[[noreturn]] void fail(const char* what, unsigned long long a) {
  std::fprintf(stderr, "fuzz_classify: promise broken: %s (%llu)\n", what, a);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace qocnet;
  const int per_datagram = static_cast<int>(size % 7) + 1;
  auto src = FrameSource::from_memory({data, size}, "fuzz", per_datagram);
  if (!src) return 0;

  std::map<std::uint32_t, std::uint32_t> counters;  // per stand-in "stream" byte
  const std::size_t limit = max_test_run_frame();
  const VerdictFn verdict = [&](std::span<const std::uint8_t> f) -> Result<Verdict> {
    if (f.size() < 14) fail("a frame shorter than Ethernet was run", f.size());
    if (f.size() > limit) fail("a frame over the test-run limit was run", f.size());
    std::uint32_t h = 2166136261u;
    for (std::size_t i = f.size() > 64 ? f.size() - 64 : 0; i < f.size(); ++i) h = (h ^ f[i]) * 16777619u;
    Verdict v;
    v.ts = h & 1;
    v.video = h & 2;
    v.psi = h & 4;
    v.cls = static_cast<FrameClass>((h >> 3) & 3);
    v.video_pid = (h & 0x20) ? 0 : static_cast<std::uint16_t>(0x100 + ((h >> 6) & 1));
    std::uint32_t& n = counters[f.size() > 40 ? f[40] : 0];
    const std::uint32_t step = (h >> 7) & 7;
    if (step == 7) n = (h >> 10) & 3;  // the kernel restarted the stream
    else n += step > 3 ? 0 : step;
    v.frames = n;
    v.new_frame = step > 0 && step < 4;
    v.history = static_cast<std::uint16_t>(h >> 16);
    v.pending = h & 0x1000;
    return v;
  };
  std::size_t expect_index = 0;
  ClassifySink sink;
  sink.datagram = [&](const DatagramRow& r) {
    if (r.index != expect_index) fail("datagram rows out of order", r.index);
    ++expect_index;
  };
  sink.frame = [&](const FrameRow& r) {
    if (r.number == 0) fail("a frame numbered 0", 0);
    if (r.stream.empty()) fail("a frame row without its stream", r.number);
  };
  (void)classify_stream(*src, verdict, sink);
  (void)src->notes();
  return 0;
}
