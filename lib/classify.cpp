#include "qocnet/classify.hpp"

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

namespace qocnet {

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::size_t kTs = 188;

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

Bytes ethernet(std::uint16_t ethertype) {
  Bytes b{0x02, 0x71, 0, 0, 0, 2, 0x02, 0x71, 0, 0, 0, 1};
  put16(b, ethertype);
  return b;
}

// Ethernet/IPv4/UDP around a payload, with a valid IPv4 header checksum.
Bytes wrap_udp4(const std::uint8_t* payload, std::size_t n) {
  Bytes b = ethernet(0x0800);
  const std::size_t ip = b.size();
  const std::uint8_t hdr[20] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  b.insert(b.end(), hdr, hdr + 20);
  const std::uint16_t tot = static_cast<std::uint16_t>(20 + 8 + n);
  b[ip + 2] = static_cast<std::uint8_t>(tot >> 8);
  b[ip + 3] = static_cast<std::uint8_t>(tot);
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < 20; i += 2) sum += (b[ip + i] << 8) | b[ip + i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  b[ip + 10] = static_cast<std::uint8_t>(~sum >> 8);
  b[ip + 11] = static_cast<std::uint8_t>(~sum);
  put16(b, 40000);
  put16(b, 5000);
  put16(b, static_cast<std::uint16_t>(8 + n));
  put16(b, 0);
  b.insert(b.end(), payload, payload + n);
  return b;
}

bool looks_like_ts(const Bytes& data) {
  if (data.size() < kTs || data[0] != 0x47) return false;
  const std::size_t n = std::min<std::size_t>(data.size() / kTs, 8);
  for (std::size_t i = 0; i < n; ++i)
    if (data[i * kTs] != 0x47) return false;
  return true;
}

// Converts one captured packet of `linktype` to an Ethernet frame.
std::optional<Bytes> to_ethernet(int linktype, const std::uint8_t* p, std::size_t n) {
  switch (linktype) {
    case DLT_EN10MB:
      return Bytes(p, p + n);
    case DLT_LINUX_SLL: {  // 16-byte header, protocol at 14
      if (n < 16) return std::nullopt;
      Bytes b = ethernet(static_cast<std::uint16_t>((p[14] << 8) | p[15]));
      b.insert(b.end(), p + 16, p + n);
      return b;
    }
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2: {  // 20-byte header, protocol at 0
      if (n < 20) return std::nullopt;
      Bytes b = ethernet(static_cast<std::uint16_t>((p[0] << 8) | p[1]));
      b.insert(b.end(), p + 20, p + n);
      return b;
    }
#endif
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6: {
      if (n < 1) return std::nullopt;
      Bytes b = ethernet((p[0] >> 4) == 6 ? 0x86dd : 0x0800);
      b.insert(b.end(), p, p + n);
      return b;
    }
    case DLT_NULL: {  // 4-byte address family, host order
      if (n < 4) return std::nullopt;
      std::uint32_t fam;
      std::memcpy(&fam, p, 4);
      Bytes b = ethernet(fam == 2 ? 0x0800 : 0x86dd);
      b.insert(b.end(), p + 4, p + n);
      return b;
    }
    default:
      return std::nullopt;
  }
}

Result<Capture> read_pcap(const fs::path& file) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pc = pcap_open_offline(file.c_str(), err);
  if (!pc)
    return make_error(Errc::invalid_argument,
                      file.string() + " is neither an MPEG-TS file nor a capture libpcap reads: " + err,
                      "pass a .ts file (188-byte packets starting with 0x47) or a pcap/pcapng file");
  const int lt = pcap_datalink(pc);
  const char* ltname = pcap_datalink_val_to_name(lt);
  Capture c;
  c.kind = std::string("pcap (") + (ltname ? ltname : std::to_string(lt).c_str()) + ")";
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  int rc;
  std::size_t index = 0;
  while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
    auto eth = to_ethernet(lt, data, h->caplen);
    if (!eth) {
      pcap_close(pc);
      return make_error(Errc::invalid_argument,
                        file.string() + ": packet " + std::to_string(index) + " of link type " +
                            (ltname ? ltname : std::to_string(lt)) + " cannot be read as Ethernet",
                        "capture on an Ethernet interface (tcpdump -i eth0 -w FILE) or on any "
                        "interface (Linux cooked capture)");
    }
    c.frames.push_back(std::move(*eth));
    ++index;
  }
  std::string perr = rc == -1 ? pcap_geterr(pc) : "";
  pcap_close(pc);
  if (rc == -1)
    return make_error(Errc::invalid_argument,
                      file.string() + " is cut short or damaged after packet " +
                          std::to_string(index) + ": " + perr,
                      "check the capture (capinfos FILE); packets before that point were read");
  return c;
}

// PTS of each PES start on `pid` in one Ethernet/IPv4/UDP datagram (user-space
// TS reading for frame numbering only; the classes come from the kernel).
std::vector<std::int64_t> pes_pts_in(const Bytes& frame, std::uint16_t pid) {
  std::vector<std::int64_t> out;
  // Find the UDP payload the simple way: IPv4/IPv6 after Ethernet (+VLANs).
  std::size_t off = 12;
  std::uint16_t type = 0;
  for (int i = 0; i < 3 && off + 2 <= frame.size(); ++i) {
    type = static_cast<std::uint16_t>((frame[off] << 8) | frame[off + 1]);
    off += 2;
    if (type != 0x8100 && type != 0x88a8) break;
    off += 2;
  }
  if (type == 0x0800 && off + 20 <= frame.size())
    off += (frame[off] & 0x0f) * 4 + 8;
  else if (type == 0x86dd && off + 40 <= frame.size() && frame[off + 6] == 17)
    off += 40 + 8;
  else
    return out;
  for (std::size_t p = off; p + kTs <= frame.size(); p += kTs) {
    const std::uint8_t* t = &frame[p];
    if (t[0] != 0x47) break;
    const std::uint16_t tpid = static_cast<std::uint16_t>(((t[1] & 0x1f) << 8) | t[2]);
    if (tpid != pid || !(t[1] & 0x40) || !(t[3] & 0x10)) continue;
    std::size_t q = 4;
    if (t[3] & 0x20) q += 1 + t[4];
    if (q + 14 > kTs || t[q] != 0 || t[q + 1] != 0 || t[q + 2] != 1) {
      out.push_back(-1);
      continue;
    }
    if (!(t[q + 7] & 0x80)) {
      out.push_back(-1);
      continue;
    }
    const std::uint8_t* s = &t[q + 9];
    const std::int64_t pts = (static_cast<std::int64_t>(s[0] & 0x0e) << 29) | (s[1] << 22) |
                             ((s[2] & 0xfe) << 14) | (s[3] << 7) | (s[4] >> 1);
    out.push_back(pts);
  }
  return out;
}

}  // namespace

Result<Capture> read_capture(const fs::path& file, int ts_per_datagram) {
  if (ts_per_datagram < 1 || ts_per_datagram > 7)
    return make_error(Errc::invalid_argument,
                      "ts_per_datagram is " + std::to_string(ts_per_datagram) + ", not 1..7",
                      "UDP datagrams of MPEG-TS carry 1 to 7 TS packets (7 x 188 = 1316 bytes)");
  std::ifstream f(file, std::ios::binary);
  if (!f)
    return make_error(Errc::not_found, "cannot open " + file.string(),
                      "check the path and that it is readable", errno);
  Bytes data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!looks_like_ts(data)) return read_pcap(file);
  Capture c;
  c.kind = "ts";
  const std::size_t chunk = kTs * static_cast<std::size_t>(ts_per_datagram);
  const std::size_t whole = data.size() / kTs * kTs;
  for (std::size_t off = 0; off < whole; off += chunk)
    c.frames.push_back(wrap_udp4(&data[off], std::min(chunk, whole - off)));
  return c;
}

Result<Classification> classify(Edge& edge, const Capture& capture) {
  QOCNET_TRY(edge.reset_streams());
  Classification out;
  std::map<std::uint32_t, FrameRow> frames;  // by frame number
  std::uint16_t video_pid = 0;
  for (std::size_t i = 0; i < capture.frames.size(); ++i) {
    const auto& fr = capture.frames[i];
    if (fr.size() < 14) {
      out.datagrams.push_back({i, FrameClass::other, fr.size(), {}});
      continue;
    }
    QOCNET_ASSIGN(v, edge.test_run(fr, 1));
    out.datagrams.push_back({i, v.cls, fr.size(), v});
    if (!v.video_pid) continue;
    if (!video_pid) video_pid = v.video_pid;
    if (v.video_pid != video_pid) continue;  // a second video stream: not followed
    if (v.new_frame) {
      // The frames that started in this datagram are the last k numbers.
      const auto pts = pes_pts_in(fr, video_pid);
      const std::uint32_t k = static_cast<std::uint32_t>(pts.size());
      for (std::uint32_t j = 0; j < k && j < v.frames; ++j) {
        const std::uint32_t n = v.frames - k + 1 + j;
        frames[n].pts = pts[j];
        frames[n].number = n;
      }
    }
    // Latest word on each of the last 8 frames: the final one once decided.
    for (std::uint32_t n = v.frames >= 8 ? v.frames - 7 : 1; n <= v.frames; ++n)
      if (v.knows_frame(n) && frames.count(n)) frames[n].cls = v.class_of_frame(n);
  }
  for (auto& [n, row] : frames) out.frames.push_back(row);
  return out;
}

}  // namespace qocnet
