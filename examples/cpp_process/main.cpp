// SPDX-License-Identifier: Apache-2.0
// qocnet-cpp-process: a C++ computation process on qocnet::client::Process.
// It registers with qocnetd, receives its copy of an H.264 MPEG-TS stream,
// and measures a QoC: the share of video frames that arrived complete and
// decodable over the last report interval. A frame is
//   complete   when every TS packet of it arrived (no continuity-counter gap
//              on the video PID from its PES start to the next one's);
//   decodable  when it is complete and its reference chain is intact: no
//              reference frame lost or incomplete since the last complete
//              I frame (H.264 frame_num shows a lost reference frame; a
//              frame missing entirely shows as a gap in the decode
//              timestamps and counts as not decodable).
// It reports that share to qocnetd on a timer, prints each policy change,
// and re-registers by itself if qocnetd restarts.
//
//   qocnet-cpp-process --address unix:/run/qocnet/process/qocnet.sock --name detector
//       --stream 10.0.0.1:40000->:5000 --required 0.9 --port 6000 --seconds 30 [--ready FILE]
//
// Output: one line per event ("policy ...", "report ...", "session ..."),
// then "total frames N complete C decodable D qoc Q datagrams G registrations R".
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qocnet_client/process.hpp"
#include "qocnet_client/proto_text.hpp"

namespace {

// --- H.264 bits ---------------------------------------------------------------

// Reads an RBSP (emulation prevention bytes removed) bit by bit.
class Bits {
 public:
  explicit Bits(std::vector<std::uint8_t> rbsp) : b_(std::move(rbsp)) {}
  bool ok() const { return ok_; }
  std::uint32_t u(int n) {
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 1) | bit();
    return v;
  }
  std::uint32_t ue() {
    int zeros = 0;
    while (ok_ && bit() == 0)
      if (++zeros > 31) ok_ = false;
    return ok_ ? ((1u << zeros) - 1 + u(zeros)) : 0;
  }
  std::int32_t se() {
    const std::uint32_t k = ue();
    return (k & 1) ? static_cast<std::int32_t>((k + 1) / 2) : -static_cast<std::int32_t>(k / 2);
  }

 private:
  std::uint32_t bit() {
    if (pos_ >= b_.size() * 8) {
      ok_ = false;
      return 0;
    }
    const std::uint32_t v = (b_[pos_ / 8] >> (7 - pos_ % 8)) & 1;
    ++pos_;
    return v;
  }
  std::vector<std::uint8_t> b_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::vector<std::uint8_t> rbsp(std::span<const std::uint8_t> nal, std::size_t max = 64) {
  std::vector<std::uint8_t> out;
  int zeros = 0;
  for (std::size_t i = 1; i < nal.size() && out.size() < max; ++i) {  // past the NAL header
    if (zeros >= 2 && nal[i] == 3) {
      zeros = 0;
      continue;
    }
    zeros = nal[i] == 0 ? zeros + 1 : 0;
    out.push_back(nal[i]);
  }
  return out;
}

void skip_scaling_list(Bits& b, int size) {
  int last = 8, next = 8;
  for (int j = 0; j < size; ++j) {
    if (next != 0) next = (last + b.se() + 256) % 256;
    last = next == 0 ? last : next;
  }
}

struct Sps {
  int log2_max_frame_num = 0;  // 0: not seen
  bool separate_colour_plane = false;
};

Sps parse_sps(std::span<const std::uint8_t> nal) {
  Bits b(rbsp(nal, 256));
  Sps s;
  const std::uint32_t profile = b.u(8);
  b.u(16);  // constraint flags, level
  b.ue();   // seq_parameter_set_id
  if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 || profile == 83 ||
      profile == 86 || profile == 118 || profile == 128 || profile == 138 || profile == 139 || profile == 134) {
    const std::uint32_t chroma = b.ue();
    if (chroma == 3) s.separate_colour_plane = b.u(1);
    b.ue();
    b.ue();
    b.u(1);
    if (b.u(1))
      for (int i = 0; i < (chroma == 3 ? 12 : 8); ++i)
        if (b.u(1)) skip_scaling_list(b, i < 6 ? 16 : 64);
  }
  const int log2 = static_cast<int>(b.ue()) + 4;
  if (b.ok() && log2 <= 16) s.log2_max_frame_num = log2;
  return s;
}

// --- one video frame as it arrived --------------------------------------------

struct Frame {
  bool complete = true;
  std::int64_t dts = -1;  // 90 kHz; PTS when the PES has no DTS
  std::vector<std::uint8_t> head;  // the PES's first bytes, until a slice header is found
  bool parsed = false;
  bool idr = false, intra = false, reference = false;
  std::uint32_t frame_num = 0;
};

// The QoC measure of one stream.
class FrameQoc {
 public:
  struct Counts {
    std::uint64_t frames = 0, complete = 0, decodable = 0;
  };

  void datagram(std::span<const std::uint8_t> d) {
    for (std::size_t off = 0; off + 188 <= d.size(); off += 188) packet(d.subspan(off, 188));
  }

  // The window's counts, and a fresh window.
  Counts take() {
    const Counts c = window_;
    window_ = {};
    return c;
  }
  const Counts& total() const { return total_; }

 private:
  void packet(std::span<const std::uint8_t> p) {
    if (p[0] != 0x47) return;
    const bool start = p[1] & 0x40;
    const std::uint16_t pid = static_cast<std::uint16_t>(((p[1] & 0x1f) << 8) | p[2]);
    const int afc = (p[3] >> 4) & 3;
    const int cc = p[3] & 0x0f;
    std::size_t off = 4;
    if (afc == 2 || afc == 3) off += 1 + p[4];
    if (afc == 0 || afc == 2 || off >= 188) {
      if (pid == video_pid_ && afc != 0) last_cc_ = cc;  // adaptation only: the counter does not advance
      return;
    }
    const auto payload = p.subspan(off);
    if (pid == 0 && start) return pat(payload);
    if (pid == pmt_pid_ && start) return pmt(payload);
    if (pid != video_pid_) return;
    const bool gap = last_cc_ >= 0 && cc != ((last_cc_ + 1) & 0x0f);
    last_cc_ = cc;
    if (start) {
      if (gap && cur_) cur_->complete = false;  // its tail is missing
      finish();
      cur_ = Frame{};
      pes(payload);
      return;
    }
    if (!cur_) return;  // the start of this frame was lost: the frame is missing
    if (gap) {
      // Packets lost: this frame is incomplete; what follows may belong to a
      // frame whose start was lost too, so nothing more is taken for it.
      cur_->complete = false;
      finish();
      return;
    }
    append(payload);
  }

  void pat(std::span<const std::uint8_t> s) {
    const std::size_t at = 1 + s[0];  // pointer field
    if (at + 12 > s.size()) return;
    const auto t = s.subspan(at);
    const std::size_t len = static_cast<std::size_t>(((t[1] & 0x0f) << 8) | t[2]);
    for (std::size_t i = 8; i + 4 <= std::min<std::size_t>(3 + len - 4, t.size()); i += 4) {
      const int program = (t[i] << 8) | t[i + 1];
      if (program == 0) continue;
      pmt_pid_ = static_cast<std::uint16_t>(((t[i + 2] & 0x1f) << 8) | t[i + 3]);
      return;
    }
  }

  void pmt(std::span<const std::uint8_t> s) {
    const std::size_t at = 1 + s[0];
    if (at + 12 > s.size()) return;
    const auto t = s.subspan(at);
    const std::size_t end = std::min<std::size_t>(3 + (((t[1] & 0x0f) << 8) | t[2]) - 4, t.size());
    std::size_t i = 12 + static_cast<std::size_t>(((t[10] & 0x0f) << 8) | t[11]);
    while (i + 5 <= end) {
      const int type = t[i];
      const std::uint16_t pid = static_cast<std::uint16_t>(((t[i + 1] & 0x1f) << 8) | t[i + 2]);
      if (type == 0x1b) {
        if (pid != video_pid_) last_cc_ = -1;
        video_pid_ = pid;
        return;
      }
      i += 5 + static_cast<std::size_t>(((t[i + 3] & 0x0f) << 8) | t[i + 4]);
    }
  }

  static std::int64_t timestamp(const std::uint8_t* b) {
    return (static_cast<std::int64_t>((b[0] >> 1) & 7) << 30) | (static_cast<std::int64_t>(b[1]) << 22) |
           (static_cast<std::int64_t>(b[2] >> 1) << 15) | (static_cast<std::int64_t>(b[3]) << 7) | (b[4] >> 1);
  }

  void pes(std::span<const std::uint8_t> s) {
    if (s.size() < 9 || s[0] != 0 || s[1] != 0 || s[2] != 1) return;
    const int flags = s[7] >> 6;
    const std::size_t header = 9 + s[8];
    if (flags >= 2 && s.size() >= 14) cur_->dts = timestamp(&s[9]);
    if (flags == 3 && s.size() >= 19) cur_->dts = timestamp(&s[14]);
    if (header < s.size()) append(s.subspan(header));
  }

  void append(std::span<const std::uint8_t> s) {
    if (cur_->parsed || cur_->head.size() > 65536) return;
    cur_->head.insert(cur_->head.end(), s.begin(), s.end());
    parse_nals();
  }

  // Walks the NAL units collected so far: SPS (frame_num's width) and the
  // first slice header (type, reference, frame_num).
  void parse_nals() {
    auto& h = cur_->head;
    std::size_t i = 0;
    std::vector<std::size_t> starts;
    for (; i + 3 < h.size(); ++i)
      if (h[i] == 0 && h[i + 1] == 0 && h[i + 2] == 1) starts.push_back(i + 3);
    for (std::size_t k = 0; k < starts.size(); ++k) {
      const std::size_t b = starts[k];
      const bool last = k + 1 == starts.size();
      const std::size_t e = last ? h.size() : starts[k + 1] - 3;
      const std::span<const std::uint8_t> nal(h.data() + b, e - b);
      if (nal.empty()) continue;
      const int type = nal[0] & 0x1f;
      if (type == 7 && !last) sps_ = parse_sps(nal);
      if ((type == 1 || type == 5) && sps_.log2_max_frame_num > 0 && nal.size() >= 8) {
        Bits bits(rbsp(nal));
        bits.ue();  // first_mb_in_slice
        const std::uint32_t slice_type = bits.ue() % 5;
        bits.ue();  // pic_parameter_set_id
        if (sps_.separate_colour_plane) bits.u(2);
        const std::uint32_t frame_num = bits.u(sps_.log2_max_frame_num);
        if (!bits.ok()) return;  // wait for more bytes
        cur_->parsed = true;
        cur_->idr = type == 5;
        cur_->intra = slice_type == 2 || slice_type == 4;
        cur_->reference = (nal[0] & 0x60) != 0;
        cur_->frame_num = frame_num;
        h.clear();
        h.shrink_to_fit();
        return;
      }
    }
  }

  void count(bool complete, bool decodable) {
    for (Counts* c : {&window_, &total_}) {
      ++c->frames;
      c->complete += complete;
      c->decodable += decodable;
    }
  }

  // Decides the current frame.
  void finish() {
    if (!cur_) return;
    Frame f = std::move(*cur_);
    cur_.reset();
    // Frames missing entirely: a gap in the decode timestamps.
    if (f.dts >= 0 && last_dts_ >= 0) {
      const std::int64_t delta = (f.dts - last_dts_ + (1ll << 33)) % (1ll << 33);
      if (delta > 0 && delta < 90000 * 10) {
        if (interval_ == 0 || delta < interval_) interval_ = delta;
        const std::int64_t missing = (delta + interval_ / 2) / interval_ - 1;
        // (Whether a missing frame was a reference, frame_num tells below.)
        for (std::int64_t m = 0; m < missing && m < 1000; ++m) count(false, false);
      }
    }
    if (f.dts >= 0) last_dts_ = f.dts;
    const bool complete = f.complete && f.parsed;
    if (f.parsed) {
      const std::uint32_t max = 1u << sps_.log2_max_frame_num;
      if (f.idr || f.intra) {
        chain_ok_ = complete;
      } else if (have_ref_ && f.frame_num != (prev_ref_frame_num_ + 1) % max) {
        chain_ok_ = false;  // a reference frame between them was lost
      }
    }
    const bool decodable = complete && chain_ok_;
    if (f.parsed && f.reference) {
      if (!complete) chain_ok_ = false;
      prev_ref_frame_num_ = f.frame_num;
      have_ref_ = true;
    }
    count(complete, decodable);
  }

  std::uint16_t pmt_pid_ = 0xffff, video_pid_ = 0xffff;
  int last_cc_ = -1;
  Sps sps_;
  std::optional<Frame> cur_;
  std::int64_t last_dts_ = -1, interval_ = 0;
  bool chain_ok_ = false, have_ref_ = false;
  std::uint32_t prev_ref_frame_num_ = 0;
  Counts window_, total_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qocnet-cpp-process: a computation process that measures the share of complete, decodable "
               "H.264 frames it receives and reports it to qocnetd"};
  qocnet::client::ProcessOptions o;
  o.name = "cpp-process";
  int port = 0;
  double seconds = 0, interval = 1.0;
  std::string ready;
  app.add_option("--address", o.address, "qocnetd's process socket or TCP address")->capture_default_str();
  app.add_option("--name", o.name, "the process's name on the edge")->capture_default_str();
  app.add_option("--stream", o.streams, "a stream it consumes: SOURCE:SPORT->:DPORT (repeatable)")->required();
  app.add_option("--required", o.required, "the QoC it needs (0: none)")->check(CLI::Range(0.0, 1e9));
  app.add_option("--port", port, "the UDP port it receives on (0: the stream's destination port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--interval", interval, "seconds between reports")->check(CLI::Range(0.01, 3600.0));
  app.add_option("--seconds", seconds, "run this long, then unregister and exit (0: until SIGINT/SIGTERM)")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--ready", ready, "create FILE once registered and receiving");
  CLI11_PARSE(app, argc, argv);
  o.udp_port = static_cast<std::uint16_t>(port);
  o.report_interval = std::chrono::milliseconds(static_cast<long>(interval * 1000));

  boost::asio::io_context io;
  auto created = qocnet::client::Process::create(io, o);
  if (!created) {
    std::fprintf(stderr, "qocnet-cpp-process: %s\n", created.error().to_string().c_str());
    return 2;
  }
  auto& process = *created.value();
  std::map<std::string, FrameQoc> measures;  // by stream, as the source address names it
  for (const auto& s : process.options().streams) measures[qocnet::client::to_string(
      qocnet::client::parse_stream(s).value())];
  // Copies keep the sensor's source address and port: that names the stream.
  auto stream_of = [&](const boost::asio::ip::udp::endpoint& from) -> FrameQoc* {
    for (auto& [text, m] : measures) {
      const auto arrow = text.rfind("->");
      const std::string source = text.substr(0, arrow);
      const std::string ip = from.address().is_v6() ? "[" + from.address().to_string() + "]" : from.address().to_string();
      if (source == ip + ":" + std::to_string(from.port())) return &m;
    }
    return measures.size() == 1 ? &measures.begin()->second : nullptr;
  };
  process.on_datagram([&](std::span<const std::uint8_t> d, const boost::asio::ip::udp::endpoint& from) {
    if (auto* m = stream_of(from)) m->datagram(d);
  });
  process.on_measure([&](const std::string& stream) -> std::optional<double> {
    auto it = measures.find(stream);
    if (it == measures.end()) return std::nullopt;
    const auto c = it->second.take();
    if (c.frames == 0) return std::nullopt;  // nothing arrived: nothing measured
    const double qoc = static_cast<double>(c.decodable) / static_cast<double>(c.frames);
    std::printf("measured %s frames %llu complete %llu decodable %llu qoc %.4f\n", stream.c_str(),
                static_cast<unsigned long long>(c.frames), static_cast<unsigned long long>(c.complete),
                static_cast<unsigned long long>(c.decodable), qoc);
    std::fflush(stdout);
    return qoc;
  });
  process.on_policy([](const qocnet::client::PolicyEvent& e) {
    std::printf("policy %s %s reason %s generation %llu\n", e.stream.c_str(), e.policy_text.c_str(), e.reason.c_str(),
                static_cast<unsigned long long>(e.generation));
    std::fflush(stdout);
  });
  process.on_report([](const qocnet::client::ReportEvent& e) {
    std::printf("report %s measured %.4f action %s policy %s\n", e.stream.c_str(), e.measured,
                qocnet::v1::LoopAction_Name(e.action).c_str(), e.policy_text.c_str());
    std::fflush(stdout);
  });
  process.on_session([](const qocnet::client::SessionEvent& e) {
    std::printf("session %s: %s\n", qocnet::client::to_string(e.kind), e.message.c_str());
    std::fflush(stdout);
  });
  if (auto st = process.start(); !st) {
    std::fprintf(stderr, "qocnet-cpp-process: %s\n", st.error().to_string().c_str());
    return 1;
  }
  if (!ready.empty()) std::ofstream(ready) << "ready\n";

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(io);
  auto finish = [&] {
    signals.cancel();
    deadline.cancel();
    process.stop();
    io.stop();
  };
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) finish();
  });
  if (seconds > 0) {
    deadline.expires_after(std::chrono::milliseconds(static_cast<long>(seconds * 1000)));
    deadline.async_wait([&](boost::system::error_code ec) {
      if (!ec) finish();
    });
  }
  io.run();
  FrameQoc::Counts sum;
  for (const auto& [_, m] : measures) {
    sum.frames += m.total().frames;
    sum.complete += m.total().complete;
    sum.decodable += m.total().decodable;
  }
  std::printf("total frames %llu complete %llu decodable %llu qoc %.4f datagrams %llu registrations %llu\n",
              static_cast<unsigned long long>(sum.frames), static_cast<unsigned long long>(sum.complete),
              static_cast<unsigned long long>(sum.decodable),
              sum.frames ? static_cast<double>(sum.decodable) / static_cast<double>(sum.frames) : 0.0,
              static_cast<unsigned long long>(process.datagrams()),
              static_cast<unsigned long long>(process.registrations()));
  return 0;
}
