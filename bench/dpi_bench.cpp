// SPDX-License-Identifier: Apache-2.0
// qocnet_dpi_bench — per-datagram cost of the edge program's DPI (needs root).
//
// Every figure is the kernel's own: BPF_PROG_TEST_RUN (bpf_prog_test_run_opts)
// runs a TC program `--repeat` times on one Ethernet/IPv4/UDP datagram and
// reports the mean ns per run (opts.duration). Each round measures every
// variant once, in turn (the starting variant rotates from round to round);
// reported is each variant's median over `--rounds` rounds, and its
// difference to and ratio over the nop's median. Variants:
//
//   nop                 2 instructions: r0 = TC_ACT_OK; exit
//   dpi mid-frame       qoc_edge_in (with qoc_ts_slow in qoc_progs[0], as
//                       Edge::create installs it) on 7 video TS packets from
//                       the middle of a frame whose class is known
//   dpi frame-start     qoc_edge_in on a PES start (H.264 AUD + P slice) and
//                       6 packets after it: a tail call into qoc_ts_slow and
//                       the frame scanner, every repetition
//   paper baseline      Ethernet/IPv4/UDP, then only the first TS packet's
//                       header: PID == 0x100 and random_access_indicator
//   dpi mid-frame+PSI   PAT, PMT and 5 mid-frame video packets
//   dpi frame-start+PSI PAT, PMT, a PES start and 4 packets after it
//
// All TS payloads are 7 x 188 = 1316 bytes; nop and the baseline run on the
// dpi mid-frame datagram. Each DPI variant has its own stream (source port),
// primed before the measurements. Target: dpi mid-frame <= nop + 15 ns
// (difference of medians), printed as PASS/MISS.
//
// Prints a table, and a single JSON object as the last line of stdout; with
// --jsonl, the results as JSON lines of scripts/bench's format instead of
// that object. See docs/BENCHMARKS.md.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../test/support/ts.hpp"
#include "compiler.hpp"
#include "fd.hpp"
#include "qoc_abi.h"
#include "bench_util.hpp"

using namespace qocnet::bench;

namespace {

namespace fs = std::filesystem;
using qocnet::detail::CompiledObject;
using qocnet::detail::CompileRequest;
using qocnet::detail::UniqueFd;
using qocnet::test::Bytes;
using qocnet::test::kVideoPid;
using qocnet::test::ts_datagram;
using qocnet::test::TsPacket;
using T = qocnet::test::TsBuilder;

constexpr double kTargetNs = 15.0;    // dpi mid-frame may cost at most nop + this
constexpr std::uint32_t kIfindex = 1;  // ctx ifindex: lo of the current namespace
bool g_verify = true;                  // --no-verify clears it

// --------------------------------------------------------------- options --

struct Options {
  long repeat = 200000;
  int rounds = 9;
  int cpu = -1;  // -1: not pinned
  bool psi = true;
  bool verify = true;
  bool jsonl = false;
};

// Parses the command line into `o`: -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& o) {
  CLI::App app{"Per-datagram cost of qocnet's edge DPI against a nop and a header-only baseline, "
               "by BPF_PROG_TEST_RUN (docs/BENCHMARKS.md).",
               "qocnet_dpi_bench"};
  app.footer("Needs root. Prints a table, and one JSON object as the last line.");
  option_defaults(app);
  app.add_option("--repeat", o.repeat, "BPF_PROG_TEST_RUN repetitions per measurement")
      ->type_name("N")
      ->transform(integer_in(100000, 100000000))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds, "rounds, each measuring every variant once")
      ->type_name("N")
      ->transform(integer_in(9, 1000))
      ->capture_default_str();
  app.add_option("--cpu", o.cpu, "pin the bench to CPU C (default: not pinned)")
      ->type_name("C")
      ->transform(integer_in(0, CPU_SETSIZE - 1));
  bool no_psi = false, no_verify = false;
  app.add_flag("--no-psi", no_psi, "skip the two variants whose datagram holds PAT + PMT");
  app.add_flag("--no-verify", no_verify,
               "do not check the verdicts (for a modified bpf_src/ copy given in "
               "QOCNET_BPF_SRC_DIR, to attribute cost; the figures then describe whatever that "
               "copy does)");
  app.add_flag("--jsonl", o.jsonl,
               "end with the results as JSON lines (scripts/bench's format) instead of one JSON "
               "object");
  if (const int status = parse_command_line(app, argc, argv); status >= 0) return status;
  o.psi = !no_psi;
  o.verify = !no_verify;
  return -1;
}

// -------------------------------------------------------------- programs --

// BPF_PROG_TEST_RUN of `fd` on `frame`, `repeat` times, with ctx ifindex 1.
struct TestRun {
  std::uint32_t retval = 0;
  std::uint32_t duration_ns = 0;  // the kernel's mean per run
  __sk_buff ctx{};                // after the last run
};

TestRun test_run(int fd, const Bytes& frame, std::uint32_t repeat) {
  __sk_buff in{};
  in.ifindex = kIfindex;
  TestRun r;
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.ctx_in = &in;
  opts.ctx_size_in = sizeof(in);
  opts.ctx_out = &r.ctx;
  opts.ctx_size_out = sizeof(r.ctx);
  opts.repeat = repeat;
  if (bpf_prog_test_run_opts(fd, &opts) != 0)
    throw BenchError(std::string("bpf_prog_test_run_opts: ") + std::strerror(errno));
  r.retval = opts.retval;
  r.duration_ns = opts.duration;
  return r;
}

// r0 = TC_ACT_OK; exit.
UniqueFd load_nop() {
  bpf_insn insns[2]{};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = TC_ACT_OK;
  insns[1].code = BPF_JMP | BPF_EXIT;
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "qoc_nop", "GPL", insns, 2, nullptr);
  if (fd < 0) throw BenchError(std::string("load the nop program: ") + std::strerror(errno));
  return UniqueFd(fd);
}

// A program like the one published with the paper: headers up to UDP, then
// only the first TS packet's header of the payload. It leaves what it found
// in cb[0] (0: not the video PID, 1: video, 2: video with
// random_access_indicator) so the compiler keeps the checks.
constexpr const char* kBaselineSource = R"(/* qocnet_dpi_bench: the paper-style baseline. */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/udp.h>

#define VIDEO_PID 0x100

int qoc_baseline(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	__u8 *ts = (void *)(udp + 1);
	if ((void *)(ts + 6) > data_end || ts[0] != 0x47)
		return TC_ACT_OK;
	__u16 pid = ((ts[1] & 0x1f) << 8) | ts[2];
	if (pid != VIDEO_PID)
		return TC_ACT_OK;
	/* adaptation field present, non-empty, random_access_indicator set */
	int rai = (ts[3] & 0x20) && ts[4] > 0 && (ts[5] & 0x40);
	skb->cb[0] = rai ? 2 : 1;
	return TC_ACT_OK;
}
)";

// Removes a directory tree when it goes out of scope.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/qocnet-dpibench-XXXXXX";
    if (!::mkdtemp(tmpl)) throw BenchError(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

CompiledObject compile_baseline() {
  TempDir dir;
  {
    std::ofstream f(dir.path() / "baseline.c");
    f << kBaselineSource;
    if (!f) throw BenchError("cannot write " + (dir.path() / "baseline.c").string());
  }
  CompileRequest req;
  req.entry = "baseline.c";
  req.programs = {"qoc_baseline"};
  req.src_dir = dir.path();
  return need(qocnet::detail::compile_bpf(req), "compile the baseline program");
}

// The edge program, as Edge::create builds it: qoc_ts_slow in qoc_progs[0].
CompiledObject compile_edge(const fs::path& src_dir) {
  CompileRequest req;
  req.entry = "edge_ingress.c";
  req.programs = {"qoc_edge_in", "qoc_ts_slow"};
  req.src_dir = src_dir;
  CompiledObject obj = need(qocnet::detail::compile_bpf(req), "compile the edge program");
  auto it = obj.maps.find("qoc_progs");
  if (it == obj.maps.end()) throw BenchError("the compiled edge program has no map qoc_progs");
  const __u32 slot = 0;
  const int slow_fd = obj.programs.at("qoc_ts_slow").fd();
  if (bpf_map_update_elem(it->second.fd(), &slot, &slow_fd, BPF_ANY) != 0)
    throw BenchError(std::string("install qoc_ts_slow in qoc_progs[0]: ") + std::strerror(errno));
  return obj;
}

// The program's size after the verifier's rewrites (0 if unknown).
std::uint32_t xlated_insns(int fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.xlated_prog_len / 8;
}

// -------------------------------------------------------------- variants --

struct Variant {
  const char* key;    // JSON
  const char* label;  // table
  int fd = -1;
  Bytes frame;
  std::string programs;  // what runs, for the table
  std::uint32_t insns = 0;
  std::vector<double> ns;  // one per round
  double med = NAN, lo = NAN, hi = NAN;
};

TsPacket mid(std::uint8_t cc) { return T::packet(kVideoPid, false, cc); }

// What the edge program left in cb[] for one datagram.
struct EdgeCb {
  std::uint32_t cls, flags, video;
};
EdgeCb edge_cb(const TestRun& r) {
  return {r.ctx.cb[QOC_CB_CLASS], r.ctx.cb[QOC_CB_FLAGS], r.ctx.cb[QOC_CB_VIDEO]};
}

// Runs `frame` once through the edge program and checks the verdict.
void expect_edge(int fd, const Bytes& frame, const char* what, std::uint32_t cls,
                 std::uint32_t flags_set, std::uint32_t flags_clear) {
  const TestRun r = test_run(fd, frame, 1);
  if (!g_verify) return;
  const EdgeCb cb = edge_cb(r);
  if (r.retval != TC_ACT_OK || cb.cls != cls || (cb.flags & flags_set) != flags_set ||
      (cb.flags & flags_clear) != 0 || (cb.video & 0xffff) != kVideoPid)
    throw BenchError(std::string(what) + ": unexpected verdict (retval " +
                     std::to_string(r.retval) + ", class " + std::to_string(cb.cls) +
                     ", flags 0x" + [&] {
                       char b[16];
                       std::snprintf(b, sizeof b, "%x", cb.flags);
                       return std::string(b);
                     }() + ", video 0x" + std::to_string(cb.video) + ")");
}

constexpr std::uint32_t kFlagsAll = QOC_F_TS | QOC_F_VIDEO | QOC_F_PSI | QOC_F_NEW_FRAME |
                                    QOC_F_PENDING | QOC_F_MISALIGNED;

// The checks a variant's datagram must pass, before and after the rounds.
struct Expect {
  std::uint32_t cls, set;
};

void check_variant(const Variant& v, int nop_fd, int baseline_fd, const Expect* e) {
  if (!g_verify) return;
  if (v.fd == nop_fd) {
    const TestRun r = test_run(v.fd, v.frame, 1);
    if (r.retval != TC_ACT_OK) throw BenchError("nop: retval " + std::to_string(r.retval));
  } else if (v.fd == baseline_fd) {
    const TestRun r = test_run(v.fd, v.frame, 1);
    if (r.retval != TC_ACT_OK || r.ctx.cb[0] != 1)
      throw BenchError("paper baseline: retval " + std::to_string(r.retval) + ", cb[0] " +
                       std::to_string(r.ctx.cb[0]) + " (want TC_ACT_OK, 1 = video PID, no RAI)");
  } else if (e) {
    expect_edge(v.fd, v.frame, v.label, e->cls, e->set, kFlagsAll & ~e->set);
  }
}

// ------------------------------------------------------------------ JSON --

std::string to_json(const Machine& m, const Options& o, const std::vector<Variant>& vs,
                    double nop, double mid_minus_nop, bool pass, const std::string& src) {
  std::ostringstream j;
  j << "{\"bench\":\"qocnet_dpi_bench\",\"machine\":{\"nproc\":" << m.nproc
    << ",\"kernel\":" << json_str(m.kernel) << ",\"cpu\":" << json_str(m.cpu)
    << ",\"loadavg_at_start\":" << json_str(m.loadavg) << "}";
  j << ",\"params\":{\"repeat\":" << o.repeat << ",\"rounds\":" << o.rounds
    << ",\"ctx_ifindex\":" << kIfindex << ",\"pinned_cpu\":" << (o.cpu < 0 ? "null" : std::to_string(o.cpu))
    << ",\"payload_bytes\":1316,\"bpf_src\":" << json_str(src)
    << ",\"verdicts_checked\":" << (o.verify ? "true" : "false") << "}";
  j << ",\"variants\":{";
  for (std::size_t i = 0; i < vs.size(); ++i) {
    const auto& v = vs[i];
    j << (i ? "," : "") << json_str(v.key) << ":{\"label\":" << json_str(v.label)
      << ",\"frame_bytes\":" << v.frame.size() << ",\"xlated_insns\":" << v.insns
      << ",\"rounds_ns\":[";
    for (std::size_t k = 0; k < v.ns.size(); ++k) j << (k ? "," : "") << num(v.ns[k], 0);
    j << "],\"median_ns\":" << num(v.med, 1) << ",\"min_ns\":" << num(v.lo, 0)
      << ",\"max_ns\":" << num(v.hi, 0) << ",\"minus_nop_ns\":" << num(v.med - nop, 1)
      << ",\"ratio_to_nop\":" << num(nop > 0 ? v.med / nop : NAN, 3) << "}";
  }
  j << "},\"target\":{\"what\":\"median(dpi_mid_frame) - median(nop)\",\"limit_ns\":"
    << num(kTargetNs, 1) << ",\"value_ns\":" << num(mid_minus_nop, 1)
    << ",\"result\":" << json_str(pass ? "PASS" : "MISS") << "}}";
  return j.str();
}

// The results as JSON lines (bench_util.hpp), bench "dpi": each variant's
// median, compared with the nop's; the DPI's cost over the nop and over the
// paper's baseline.
void print_jsonl(const std::vector<Variant>& vs, double mid_minus_nop) {
  JsonLines out;
  for (const auto& v : vs) out.add("dpi", std::string(v.key) + ".median_ns", v.med, "ns", 1);
  out.add("dpi", "dpi_mid_frame.minus_nop_ns", mid_minus_nop, "ns", 1);
  for (const auto& v : vs)
    if (std::string(v.key) != "nop") out.compare("dpi", std::string(v.key) + ".median_ns", "nop.median_ns");
  out.compare("dpi", "dpi_mid_frame.median_ns", "paper_baseline.median_ns");
  out.print(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int status = parse(argc, argv, o); status >= 0) return status;
  g_verify = o.verify;
  if (!require_root("qocnet_dpi_bench",
                    "it compiles and loads eBPF programs and runs them with BPF_PROG_TEST_RUN",
                    argv[0]))
    return 1;
  if (o.cpu >= 0 && !pin_to_cpu("qocnet_dpi_bench", o.cpu)) return 1;
  const Machine m = machine();
  std::printf("qocnet_dpi_bench: %u CPUs (%s), kernel %s, load %s\n", m.nproc, m.cpu.c_str(),
              m.kernel.c_str(), m.loadavg.c_str());
  std::fflush(stdout);

  try {
    UniqueFd nop = load_nop();
    // From $QOCNET_BPF_SRC_DIR if set (e.g. a scratch copy of bpf_src/, to
    // attribute cost), else from the sources built into the library.
    CompiledObject edge = compile_edge({});
    CompiledObject base = compile_baseline();
    const int edge_fd = edge.programs.at("qoc_edge_in").fd();
    const int slow_fd = edge.programs.at("qoc_ts_slow").fd();
    const int base_fd = base.programs.at("qoc_baseline").fd();
    std::printf("edge program from %s (compiled in %.2f s); baseline compiled in %.2f s\n",
                edge.source_origin.c_str(), edge.compile_seconds, base.compile_seconds);

    // One stream (source port) per DPI variant, PAT/PMT learnt first.
    constexpr std::uint16_t kPortMid = 40000, kPortStart = 40001, kPortPsiMid = 40002,
                            kPortPsiStart = 40003;
    for (std::uint16_t port : {kPortMid, kPortStart, kPortPsiMid, kPortPsiStart})
      expect_edge(edge_fd, ts_datagram(port, {T::pat(), T::pmt()}), "priming PAT+PMT",
                  QOC_CLASS_REF, QOC_F_TS | QOC_F_PSI, QOC_F_VIDEO | QOC_F_NEW_FRAME);
    // A P frame's start on the mid-frame streams: their frame class is then known.
    const auto p_slice = T::h264_au(2, 1, 5);
    expect_edge(edge_fd,
                ts_datagram(kPortMid, {T::pes_start(p_slice, 0), mid(1), mid(2), mid(3), mid(4),
                                       mid(5), mid(6)}),
                "priming a frame start", QOC_CLASS_DIFF, QOC_F_TS | QOC_F_VIDEO | QOC_F_NEW_FRAME,
                QOC_F_PENDING);
    expect_edge(edge_fd, ts_datagram(kPortPsiMid, {T::pes_start(p_slice, 0), mid(1)}),
                "priming a frame start (PSI stream)", QOC_CLASS_DIFF,
                QOC_F_TS | QOC_F_VIDEO | QOC_F_NEW_FRAME, QOC_F_PENDING);

    const Bytes dg_mid =
        ts_datagram(kPortMid, {mid(7), mid(8), mid(9), mid(10), mid(11), mid(12), mid(13)});
    const Bytes dg_start = ts_datagram(
        kPortStart, {T::pes_start(p_slice, 0), mid(1), mid(2), mid(3), mid(4), mid(5), mid(6)});
    const Bytes dg_psi_mid =
        ts_datagram(kPortPsiMid, {T::pat(), T::pmt(), mid(2), mid(3), mid(4), mid(5), mid(6)});
    const Bytes dg_psi_start = ts_datagram(
        kPortPsiStart, {T::pat(), T::pmt(), T::pes_start(p_slice, 0), mid(1), mid(2), mid(3), mid(4)});

    const std::uint32_t edge_insns = xlated_insns(edge_fd);
    const std::uint32_t slow_insns = xlated_insns(slow_fd);
    std::vector<Variant> vs;
    auto add = [&](const char* key, const char* label, int fd, const Bytes& f, std::string progs,
                   std::uint32_t insns) {
      Variant v;
      v.key = key;
      v.label = label;
      v.fd = fd;
      v.frame = f;
      v.programs = std::move(progs);
      v.insns = insns;
      vs.push_back(std::move(v));
    };
    add("nop", "nop", nop.get(), dg_mid, "nop", xlated_insns(nop.get()));
    add("dpi_mid_frame", "dpi mid-frame", edge_fd, dg_mid, "qoc_edge_in", edge_insns);
    add("dpi_frame_start", "dpi frame-start", edge_fd, dg_start, "qoc_edge_in -> qoc_ts_slow",
        edge_insns);
    add("paper_baseline", "paper baseline", base_fd, dg_mid, "qoc_baseline",
        xlated_insns(base_fd));
    if (o.psi) {
      add("dpi_mid_frame_psi", "dpi mid-frame+PSI", edge_fd, dg_psi_mid,
          "qoc_edge_in -> qoc_ts_slow x2", edge_insns);
      add("dpi_frame_start_psi", "dpi frame-start+PSI", edge_fd, dg_psi_start,
          "qoc_edge_in -> qoc_ts_slow x3", edge_insns);
    }
    // What each edge variant's datagram must yield: class and the flags set
    // (every other flag clear).
    auto expect_of = [&](const Variant& v) -> std::optional<Expect> {
      const std::string k = v.key;
      if (k == "dpi_mid_frame") return Expect{QOC_CLASS_DIFF, QOC_F_TS | QOC_F_VIDEO};
      if (k == "dpi_frame_start")
        return Expect{QOC_CLASS_DIFF, QOC_F_TS | QOC_F_VIDEO | QOC_F_NEW_FRAME};
      if (k == "dpi_mid_frame_psi") return Expect{QOC_CLASS_DIFF, QOC_F_TS | QOC_F_VIDEO | QOC_F_PSI};
      if (k == "dpi_frame_start_psi")
        return Expect{QOC_CLASS_DIFF, QOC_F_TS | QOC_F_VIDEO | QOC_F_PSI | QOC_F_NEW_FRAME};
      return std::nullopt;
    };
    auto check_all = [&](const char* when) {
      for (const auto& v : vs) {
        auto e = expect_of(v);
        try {
          check_variant(v, nop.get(), base_fd, e ? &*e : nullptr);
        } catch (const BenchError& err) {
          throw BenchError(std::string(when) + ": " + err.what());
        }
      }
    };
    check_all("before the rounds");
    if (!o.verify) std::printf("--no-verify: verdicts NOT checked\n");
    std::printf("edge programs: qoc_edge_in %u insns, qoc_ts_slow %u insns (xlated)\n", edge_insns,
                slow_insns);

    const auto repeat = static_cast<std::uint32_t>(o.repeat);
    // Warm-up: every variant once, untimed.
    for (const auto& v : vs) (void)test_run(v.fd, v.frame, std::max<std::uint32_t>(repeat / 10, 1));

    std::printf("\n%d rounds x %zu variants, %u repetitions per measurement (ns per run, kernel "
                "mean):\n  %-6s",
                o.rounds, vs.size(), repeat, "round");
    for (const auto& v : vs) std::printf(" %20s", v.label);
    std::printf("\n");
    std::fflush(stdout);
    const std::size_t n = vs.size();
    for (int r = 0; r < o.rounds; ++r) {
      std::vector<double> row(n, NAN);
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (static_cast<std::size_t>(r) + k) % n;  // rotating start
        const TestRun t = test_run(vs[i].fd, vs[i].frame, repeat);
        row[i] = t.duration_ns;
        vs[i].ns.push_back(t.duration_ns);
      }
      std::printf("  %-6d", r + 1);
      for (double x : row) std::printf(" %20.0f", x);
      std::printf("\n");
      std::fflush(stdout);
    }
    check_all("after the rounds");

    for (auto& v : vs) {
      v.med = median(v.ns);
      v.lo = *std::min_element(v.ns.begin(), v.ns.end());
      v.hi = *std::max_element(v.ns.begin(), v.ns.end());
    }
    auto med_of = [&](const std::string& key) -> double {
      for (const auto& v : vs)
        if (key == v.key) return v.med;
      return NAN;
    };
    const double nop_med = med_of("nop"), mid_med = med_of("dpi_mid_frame");
    std::printf("\n  %-20s %9s %6s %6s %12s %9s %7s  %s\n", "variant", "median_ns", "min", "max",
                "minus_nop_ns", "x_nop", "insns", "programs run");
    for (const auto& v : vs)
      std::printf("  %-20s %9.1f %6.0f %6.0f %12.1f %9.2f %7u  %s\n", v.label, v.med, v.lo, v.hi,
                  v.med - nop_med, nop_med > 0 ? v.med / nop_med : NAN, v.insns,
                  v.programs.c_str());
    const double mid_minus_nop = mid_med - nop_med;
    const bool pass = mid_minus_nop <= kTargetNs;
    std::printf("  dpi mid-frame - paper baseline: %.1f ns\n", mid_med - med_of("paper_baseline"));
    std::printf("  target dpi mid-frame <= nop + %.0f ns: %.1f ns -> %s\n", kTargetNs,
                mid_minus_nop, pass ? "PASS" : "MISS");
    std::printf("  (datagram: Ethernet/IPv4/UDP, 1316-byte TS payload, %zu bytes; ctx ifindex %u;"
                " each repetition advances the stream's continuity counter, so the mid-frame\n"
                "   variants count one cc error per repetition, and frame-start variants start a"
                " new frame each time)\n",
                dg_mid.size(), kIfindex);
    if (o.jsonl) {
      std::printf("\n");
      print_jsonl(vs, mid_minus_nop);
    } else {
      std::printf("\n%s\n", to_json(m, o, vs, nop_med, mid_minus_nop, pass, edge.source_origin).c_str());
    }
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qocnet_dpi_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
