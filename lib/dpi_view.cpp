// SPDX-License-Identifier: Apache-2.0
#include "dpi_view.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

namespace qocnet {

namespace {
const std::uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}  // namespace

Result<StreamKey> stream_key(const StreamId& s) {
  StreamKey k;
  in_addr a4{};
  in6_addr a6{};
  if (::inet_pton(AF_INET, s.source.c_str(), &a4) == 1) {
    std::memcpy(k.address.data(), kV4Mapped, 12);
    std::memcpy(&k.address[12], &a4, 4);
  } else if (::inet_pton(AF_INET6, s.source.c_str(), &a6) == 1) {
    std::memcpy(k.address.data(), &a6, 16);
  } else {
    return make_error(Errc::invalid_argument,
                      "stream source '" + s.source.substr(0, 64) + "' is not an IPv4 or IPv6 address",
                      "name the sensor's address, e.g. 10.0.0.1");
  }
  k.source_port = s.source_port;
  k.destination_port = s.destination_port;
  return k;
}

StreamId stream_id_of(const StreamKey& k) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(k.address.data(), kV4Mapped, 12) == 0)
    ::inet_ntop(AF_INET, &k.address[12], buf, sizeof buf);
  else
    ::inet_ntop(AF_INET6, k.address.data(), buf, sizeof buf);
  return StreamId{buf, k.source_port, k.destination_port};
}

std::string to_string(const StreamKey& k) { return to_string(stream_id_of(k)); }

bool same_stream(const StreamId& a, const StreamId& b) {
  auto ka = stream_key(a);
  auto kb = stream_key(b);
  return ka && kb && *ka == *kb;
}

}  // namespace qocnet

namespace qocnet::detail {


qoc_stream_key kernel_key(const StreamKey& key) {
  qoc_stream_key k{};
  std::memcpy(k.saddr, key.address.data(), 16);
  k.sport = htons(key.source_port);
  k.dport = htons(key.destination_port);
  return k;
}

StreamKey stream_key_of(const qoc_stream_key& k) {
  StreamKey key;
  std::memcpy(key.address.data(), k.saddr, 16);
  key.source_port = ntohs(k.sport);
  key.destination_port = ntohs(k.dport);
  return key;
}

Result<qoc_stream_key> stream_key_of(const StreamId& s) {
  auto key = qocnet::stream_key(s);
  if (!key)
    return make_error(Errc::invalid_argument, "stream source '" + s.source + "' is not an IPv4 or IPv6 address",
                      "name the sensor's address, e.g. 10.0.0.1");
  if (s.source_port == 0 || s.destination_port == 0)
    return make_error(Errc::invalid_argument, "stream " + to_string(s) + " has a zero port",
                      "give the sensor's UDP source and destination ports");
  return kernel_key(*key);
}

StreamId stream_id_of(const qoc_stream_key& k) { return qocnet::stream_id_of(stream_key_of(k)); }

std::string key_bytes_of(const qoc_stream_key& k) {
  return std::string(reinterpret_cast<const char*>(&k), sizeof k);
}

StreamStats stream_stats_of(const qoc_stream_key& k, const qoc_stream& v) {
  const StreamId id = stream_id_of(k);
  StreamStats s;
  s.key = stream_key_of(k);
  const bool v6 = id.source.find(':') != std::string::npos;
  s.source = (v6 ? "[" + id.source + "]" : id.source) + ":" + std::to_string(id.source_port);
  s.source_port = id.source_port;
  s.destination_port = id.destination_port;
  s.pmt_pid = v.pmt_pid;
  s.video_pid = v.video_pid;
  s.codec = static_cast<Codec>(v.codec);
  s.frames = v.frames;
  for (int c = 0; c < 4; ++c) {
    s.datagrams[c] = v.dgrams[c];
    s.bytes[c] = v.bytes[c];
  }
  s.misaligned = v.misaligned;
  s.cc_errors = v.cc_errors;
  s.ts_partial = v.ts_partial;
  s.ts_bad_sync = v.ts_bad_sync;
  s.ts_malformed = v.ts_malformed;
  s.ts_unparsed = v.ts_unparsed;
  s.hevc_pps_unknown = v.hevc_pps_unknown;
  return s;
}

DpiCounters sum_dpi_counters(const std::vector<qoc_counters>& per_cpu) {
  std::uint64_t c[QOC_NUM_COUNTERS] = {};
  for (const auto& v : per_cpu)
    for (int i = 0; i < QOC_NUM_COUNTERS; ++i) c[i] += v.c[i];
  DpiCounters d;
  d.seen = c[QOC_CNT_SEEN];
  d.not_udp = c[QOC_CNT_NOT_UDP];
  d.not_ts = c[QOC_CNT_NOT_TS];
  d.ts = c[QOC_CNT_TS];
  for (int i = 0; i < 4; ++i) d.by_class[i] = c[QOC_CNT_CLASS_OTHER + i];
  d.truncated = c[QOC_CNT_TRUNCATED];
  d.vlan_too_deep = c[QOC_CNT_VLAN_DEEP];
  d.ipv6_ext_too_deep = c[QOC_CNT_IPV6_EXT_DEEP];
  d.fragments = c[QOC_CNT_FRAGMENT];
  d.udp_length_bad = c[QOC_CNT_UDP_LEN_BAD];
  d.gso_packets = c[QOC_CNT_GSO];
  d.gso_segments = c[QOC_CNT_GSO_SEGS];
  d.pulled = c[QOC_CNT_PULLED];
  d.stream_table_full = c[QOC_CNT_STREAM_FULL];
  d.replicated = c[QOC_CNT_REPLICATED];
  d.clones = c[QOC_CNT_CLONES];
  d.all_dropped = c[QOC_CNT_ALL_DROPPED];
  d.peer_redirects = c[QOC_CNT_PEER];
  d.targets_cut = c[QOC_CNT_TARGETS_CUT];
  return d;
}

Result<ProgramInfo> program_info_of(const Program& p) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(p.fd(), &info, &len) != 0)
    return make_error(Errc::internal, "cannot read info of program " + p.name(), {}, errno);
  return ProgramInfo{p.name(), info.id, info.verified_insns, info.xlated_prog_len / 8};
}

Result<Verdict> test_run_dpi(const Program& prog, std::span<const std::uint8_t> frame,
                             std::uint32_t ifindex) {
  if (frame.size() < 14)
    return make_error(Errc::invalid_argument,
                      "frame of " + std::to_string(frame.size()) +
                          " bytes is shorter than an Ethernet header (14)",
                      "pass a whole Ethernet frame");
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  __sk_buff out{};
  opts.ctx_out = &out;
  opts.ctx_size_out = sizeof(out);
  opts.repeat = 1;
  if (bpf_prog_test_run_opts(prog.fd(), &opts) != 0) {
    int err = errno;
    return make_error(err == ENODEV ? Errc::not_found : Errc::internal,
                      "test run of " + prog.name() + " on ifindex " + std::to_string(ifindex) +
                          " failed",
                      err == ENODEV ? "use the ifindex of an interface in the program's namespace" : "",
                      err);
  }
  Verdict v;
  v.action = static_cast<int>(opts.retval);
  v.duration_ns = opts.duration;
  v.cls = static_cast<FrameClass>(out.cb[QOC_CB_CLASS] & 3);
  v.frames = out.cb[QOC_CB_FRAMES];
  v.history = static_cast<std::uint16_t>(out.cb[QOC_CB_HISTORY]);
  v.frame_class = v.frames ? v.class_of_frame(v.frames) : FrameClass::other;
  const std::uint32_t f = out.cb[QOC_CB_FLAGS];
  v.ts = f & QOC_F_TS;
  v.video = f & QOC_F_VIDEO;
  v.psi = f & QOC_F_PSI;
  v.new_frame = f & QOC_F_NEW_FRAME;
  v.pending = f & QOC_F_PENDING;
  v.misaligned = f & QOC_F_MISALIGNED;
  v.unparsed = f & QOC_F_UNPARSED;
  v.video_pid = static_cast<std::uint16_t>(out.cb[QOC_CB_VIDEO] & 0xffff);
  v.codec = static_cast<Codec>((out.cb[QOC_CB_VIDEO] >> 16) & 0xff);
  return v;
}

}  // namespace qocnet::detail
