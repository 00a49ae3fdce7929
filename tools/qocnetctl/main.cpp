// qocnetctl: qocnet's operator CLI.
//
//   qocnetctl classify [--frames] [--format csv|table] FILE
//
// classify runs the real edge program (compiled by libbcc and run by the
// kernel with BPF_PROG_TEST_RUN) over the datagrams of an MPEG-TS file or a
// packet capture and prints the class it gives each datagram, or each video
// frame with --frames. Needs root (it loads a BPF program).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "qocnet/classify.hpp"
#include "qocnet/edge.hpp"

namespace {

int fail(const qocnet::Error& e) {
  std::cerr << "qocnetctl: " << e.to_string() << "\n";
  return e.code == qocnet::Errc::invalid_argument || e.code == qocnet::Errc::not_found ? 2 : 1;
}

int run_classify(const std::string& file, bool frames, const std::string& format, int per_dgram) {
  auto capture = qocnet::read_capture(file, per_dgram);
  if (!capture) return fail(capture.error());
  auto edge = qocnet::Edge::create();
  if (!edge) return fail(edge.error());
  auto result = qocnet::classify(*edge, *capture);
  if (!result) return fail(result.error());

  const bool csv = format == "csv";
  if (frames) {
    if (csv) std::printf("pts,class\n");
    else std::printf("%8s %14s %6s\n", "frame", "pts", "class");
    for (const auto& f : result->frames) {
      if (csv) std::printf("%lld,%s\n", static_cast<long long>(f.pts), qocnet::to_string(f.cls));
      else std::printf("%8u %14lld %6s\n", f.number, static_cast<long long>(f.pts), qocnet::to_string(f.cls));
    }
  } else {
    if (csv) std::printf("index,class,bytes\n");
    else std::printf("%8s %6s %6s  %s\n", "index", "class", "bytes", "notes");
    for (const auto& d : result->datagrams) {
      if (csv) {
        std::printf("%zu,%s,%zu\n", d.index, qocnet::to_string(d.cls), d.bytes);
        continue;
      }
      std::string notes;
      if (!d.verdict.ts) notes += "not-ts ";
      if (d.verdict.psi) notes += "psi ";
      if (d.verdict.new_frame) notes += "frame-start ";
      if (d.verdict.misaligned) notes += "two-frames ";
      if (d.verdict.pending) notes += "pending ";
      std::printf("%8zu %6s %6zu  %s\n", d.index, qocnet::to_string(d.cls), d.bytes, notes.c_str());
    }
  }
  if (!csv) {
    std::size_t by[4] = {};
    for (const auto& d : result->datagrams) by[static_cast<int>(d.cls)]++;
    std::fprintf(stderr, "%s: %zu datagrams (%s): ref %zu, diff %zu, disp %zu, other %zu; %zu video frames\n",
                 file.c_str(), result->datagrams.size(), capture->kind.c_str(), by[3], by[2], by[1],
                 by[0], result->frames.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qocnetctl: operate a qocnet edge"};
  app.require_subcommand(1);

  std::string file, format = "csv";
  bool frames = false;
  int per_dgram = 7;
  auto* classify = app.add_subcommand(
      "classify", "Classify the datagrams (or video frames) of a .ts file or a pcap/pcapng capture "
                  "with the kernel's edge program (needs root)");
  classify->add_flag("--frames", frames, "One row per video frame (pts,class) instead of per datagram");
  classify->add_option("--format", format, "Output format")->check(CLI::IsMember({"csv", "table"}));
  classify->add_option("--ts-per-datagram", per_dgram,
                       "TS packets per datagram when cutting a .ts file")
      ->check(CLI::Range(1, 7));
  classify->add_option("FILE", file, "MPEG-TS file or pcap/pcapng capture")->required();

  CLI11_PARSE(app, argc, argv);
  if (classify->parsed()) return run_classify(file, frames, format, per_dgram);
  return 2;
}
