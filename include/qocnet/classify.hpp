// Offline classification: run the real edge program (BPF_PROG_TEST_RUN) over
// the datagrams of an MPEG-TS file or of a packet capture, and report the
// class it gives each datagram and each video frame. Used by
// `qocnetctl classify` and as the test oracle hook of the DPI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"

namespace qocnet {

// Ethernet frames to classify, in order.
struct Capture {
  std::vector<std::vector<std::uint8_t>> frames;
  std::string kind;  // "ts" or "pcap (<linktype>)"
};

// Reads FILE: a .ts file (recognised by its sync bytes) is cut into datagrams
// of `ts_per_datagram` TS packets, each wrapped in Ethernet/IPv4/UDP
// (10.0.0.1:40000 -> 10.0.0.2:5000); anything else is opened with libpcap
// (pcap or pcapng; Ethernet, Linux cooked v1/v2, raw IP and BSD loopback link
// types are turned into Ethernet frames).
Result<Capture> read_capture(const std::filesystem::path& file, int ts_per_datagram = 7);

struct DatagramRow {
  std::size_t index = 0;   // 0-based, in file order
  FrameClass cls = FrameClass::other;
  std::size_t bytes = 0;   // Ethernet frame length
  Verdict verdict;
};

struct FrameRow {
  std::int64_t pts = -1;   // PES PTS (90 kHz), -1 when the PES had none
  FrameClass cls = FrameClass::other;
  std::uint32_t number = 0;  // the stream's frame counter (1-based, decode order)
};

struct Classification {
  std::vector<DatagramRow> datagrams;
  std::vector<FrameRow> frames;  // of the first video stream found, decode order
};

// Runs the edge's program over the capture's frames (arriving on ifindex 1).
// The edge's stream state is reset first.
Result<Classification> classify(Edge& edge, const Capture& capture);

}  // namespace qocnet
