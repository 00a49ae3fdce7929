// SPDX-License-Identifier: Apache-2.0
// Offline classification: run the real edge program (BPF_PROG_TEST_RUN) over
// the datagrams of an MPEG-TS file or of a packet capture, and report the
// class it gives each datagram and each video frame. Used by
// `qocnetctl classify` and as the test oracle hook of the DPI.
//
// Input is read as a stream: FrameSource recognises the format from the
// first bytes and hands out one frame at a time, and classify_stream()
// reports rows as they are decided, so memory does not grow with the input
// (docs/DPI.md, Offline classification).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"

namespace qocnet {

// Largest record a capture may hold (libpcap's own limit, 256 KiB); a larger
// one means the file is damaged.
inline constexpr std::size_t kMaxCaptureRecord = 262144;

// Ethernet frames of a .ts file or a capture, one at a time, in file order.
//   .ts: recognised by 0x47 at every 188th byte of its start; cut into
//        datagrams of `ts_per_datagram` TS packets, each wrapped in
//        Ethernet/IPv4/UDP (10.0.0.1:40000 -> 10.0.0.2:5000);
//   pcap: either byte order, microsecond or nanosecond time stamps;
//   pcapng: every section and interface, either byte order (enhanced,
//        simple and obsolete packet blocks).
// Link types: Ethernet, Linux cooked v1/v2, raw IPv4/IPv6, BSD loopback
// (DLT_NULL/DLT_LOOP, the address family in either byte order); each packet
// is handed out as an Ethernet frame.
class FrameSource {
 public:
  static Result<FrameSource> open(const std::filesystem::path& file, int ts_per_datagram = 7);
  // Reads `bytes` (which must outlive the source); `name` is used in errors.
  static Result<FrameSource> from_memory(std::span<const std::uint8_t> bytes,
                                         std::string name = "input", int ts_per_datagram = 7);
  FrameSource(FrameSource&&) noexcept;
  FrameSource& operator=(FrameSource&&) noexcept;
  ~FrameSource();

  // The next frame into `frame` (its old contents are replaced); false at
  // the end of the input. A damaged or cut-short file is an error naming the
  // record; the frames before it were handed out.
  Result<bool> next(std::vector<std::uint8_t>& frame);

  // "ts", "pcap (EN10MB)", "pcapng", ...
  const std::string& kind() const;
  // What was skipped on the way (records of an unknown link type, a
  // trailing partial TS packet, ...), one line each, at most a few dozen.
  const std::vector<std::string>& notes() const;

 private:
  struct Impl;
  explicit FrameSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Ethernet frames to classify, in order.
struct Capture {
  std::vector<std::vector<std::uint8_t>> frames;
  std::string kind;  // "ts" or "pcap (<linktype>)"
};

// Reads all of FILE into memory (FrameSource, collected). For small inputs
// and tests; qocnetctl streams instead.
Result<Capture> read_capture(const std::filesystem::path& file, int ts_per_datagram = 7);

struct DatagramRow {
  std::size_t index = 0;   // 0-based, in file order
  FrameClass cls = FrameClass::other;
  std::size_t bytes = 0;   // Ethernet frame length
  Verdict verdict;
  std::string stream;      // "10.0.0.1:40000->:5000"; empty when not UDP
  // How many test runs the frame took: 1; 0 when it was not run (shorter
  // than Ethernet, or over the test-run limit and not UDP carrying TS);
  // n > 1 when a frame over the limit was cut into n datagrams of 7 TS
  // packets (see max_test_run_frame()).
  std::uint32_t runs = 1;
  // With runs > 1: the highest class of the parts (video first), what the
  // datagram's packets hold; `cls` is the kernel's verdict for the whole.
  FrameClass parts_cls = FrameClass::other;
};

struct FrameRow {
  std::int64_t pts = -1;   // PES PTS (90 kHz), -1 when the PES had none
  FrameClass cls = FrameClass::other;
  std::uint32_t number = 0;  // the stream's frame counter (1-based, decode order)
  std::string stream;        // the stream it belongs to, as DatagramRow::stream
};

struct Classification {
  std::vector<DatagramRow> datagrams;
  std::vector<FrameRow> frames;  // per stream in decode order; streams interleaved in file order
};

// BPF_PROG_TEST_RUN takes at most this many bytes for an skb program
// (a page minus the skb's headroom and shared info: 3712 on 4 KiB pages).
// A larger frame that is UDP carrying TS (a jumbo frame, a GRO'd datagram)
// is cut into datagrams of 7 TS packets with the frame's own headers and run
// in order, so the frame rows see every packet. It is reported as one row
// with the kernel's verdict for a datagram holding more packets than it
// inspects: ref once its stream has a video PID (Verdict::unparsed); the
// parts' highest class is in DatagramRow::parts_cls. Any other larger frame
// is `other` (the kernel's parser says so from its headers) and not run.
std::size_t max_test_run_frame();

// One frame in, its verdict out: Edge::test_run, or anything that stands in
// for the kernel (a fuzzer).
using VerdictFn = std::function<Result<Verdict>(std::span<const std::uint8_t> frame)>;

struct ClassifySink {
  std::function<void(const DatagramRow&)> datagram;  // each datagram, in file order
  std::function<void(const FrameRow&)> frame;        // each video frame once its class is final
};

// Classifies every frame of `source` with `verdict` and reports rows as they
// are decided. Memory is bounded (a few frames per stream, at most 4096
// streams followed). The frames of each stream are kept apart (by source
// address, source port and destination port, as the kernel keys streams).
Status classify_stream(FrameSource& source, const VerdictFn& verdict, const ClassifySink& sink);
// The same with the edge's program; the edge's stream state is reset first.
Status classify_stream(FrameSource& source, Edge& edge, const ClassifySink& sink);

// Runs the edge's program over the capture's frames (arriving on ifindex 1).
// The edge's stream state is reset first.
Result<Classification> classify(Edge& edge, const Capture& capture);

}  // namespace qocnet
