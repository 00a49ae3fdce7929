// SPDX-License-Identifier: Apache-2.0
#include "qocnet/classify.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>

namespace qocnet {

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::size_t kTs = 188;
constexpr std::size_t kTsPerRun = 7;      // QOC_TS_MAX_PACKETS: what one run inspects
constexpr std::size_t kMaxNotes = 32;
constexpr std::size_t kMaxStreams = 4096;  // followed for --frames at once
constexpr std::size_t kMaxInterfaces = 65536;

// Link types as pcap and pcapng files store them (LINKTYPE_*).
enum : std::uint32_t {
  kLinkNull = 0,
  kLinkEthernet = 1,
  kLinkRawDlt12 = 12,  // DLT_RAW as some writers stored it
  kLinkRawDlt14 = 14,
  kLinkRaw = 101,
  kLinkLoop = 108,
  kLinkSll = 113,
  kLinkIpv4 = 228,
  kLinkIpv6 = 229,
  kLinkSll2 = 276,
};

const char* link_name(std::uint32_t lt) {
  switch (lt) {
    case kLinkNull: return "NULL";
    case kLinkEthernet: return "EN10MB";
    case kLinkRawDlt12:
    case kLinkRawDlt14:
    case kLinkRaw: return "RAW";
    case kLinkLoop: return "LOOP";
    case kLinkSll: return "LINUX_SLL";
    case kLinkIpv4: return "IPV4";
    case kLinkIpv6: return "IPV6";
    case kLinkSll2: return "LINUX_SLL2";
    default: return nullptr;
  }
}

std::string link_text(std::uint32_t lt) {
  const char* n = link_name(lt);
  return n ? n : "link type " + std::to_string(lt);
}

std::string hex_bytes(std::span<const std::uint8_t> b) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    s += (i ? " " : "") + std::string(buf);
  }
  return s;
}

std::uint16_t rd16(const std::uint8_t* p, bool be) {
  return be ? static_cast<std::uint16_t>((p[0] << 8) | p[1])
            : static_cast<std::uint16_t>((p[1] << 8) | p[0]);
}
std::uint32_t rd32(const std::uint8_t* p, bool be) {
  return be ? (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3]
            : (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) | p[0];
}

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}

// Sequential reading of a file descriptor (through a 64 KiB buffer) or of
// memory, with a look-ahead for recognising the format.
class ByteReader {
 public:
  ByteReader() = default;
  ByteReader(int fd, std::string name) : fd_(fd), name_(std::move(name)), buf_(kBuf) {}
  ByteReader(std::span<const std::uint8_t> mem, std::string name) : mem_(mem), name_(std::move(name)) {}
  ByteReader(ByteReader&& o) noexcept { *this = std::move(o); }
  ByteReader& operator=(ByteReader&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
      mem_ = o.mem_;
      name_ = std::move(o.name_);
      buf_ = std::move(o.buf_);
      pos_ = o.pos_;
      end_ = o.end_;
      offset_ = o.offset_;
    }
    return *this;
  }
  ~ByteReader() { close(); }

  // Up to n bytes ahead, not consumed (n <= 64 KiB).
  Result<std::span<const std::uint8_t>> peek(std::size_t n) {
    if (fd_ < 0) {
      const std::size_t have = std::min(n, mem_.size() - pos_);
      return mem_.subspan(pos_, have);
    }
    while (end_ - pos_ < n) {
      QOCNET_ASSIGN(got, fill());
      if (got == 0) break;
    }
    return std::span<const std::uint8_t>(buf_.data() + pos_, std::min(n, end_ - pos_));
  }

  // Reads n bytes into dst (nullptr: skips them); returns how many there
  // were (fewer only at the end of the input).
  Result<std::size_t> read(std::uint8_t* dst, std::size_t n) {
    std::size_t done = 0;
    if (fd_ < 0) {
      done = std::min(n, mem_.size() - pos_);
      if (dst && done) std::memcpy(dst, mem_.data() + pos_, done);
      pos_ += done;
      offset_ += done;
      return done;
    }
    while (done < n) {
      if (pos_ == end_) {
        QOCNET_ASSIGN(got, fill());
        if (got == 0) break;
      }
      const std::size_t k = std::min(n - done, end_ - pos_);
      if (dst) std::memcpy(dst + done, buf_.data() + pos_, k);
      pos_ += k;
      done += k;
    }
    offset_ += done;
    return done;
  }

  std::uint64_t offset() const { return offset_; }
  const std::string& name() const { return name_; }

 private:
  static constexpr std::size_t kBuf = 65536;
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  Result<std::size_t> fill() {
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (end_ == buf_.size()) return std::size_t{0};
    for (;;) {
      const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (n >= 0) {
        end_ += static_cast<std::size_t>(n);
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      const int err = errno;
      return make_error(Errc::invalid_argument,
                        "cannot read " + name_ + " at byte " + std::to_string(offset_) + ": " +
                            std::strerror(err),
                        "check the file and the disk it is on (an I/O error, or not a regular file)",
                        err);
    }
  }

  int fd_ = -1;
  std::span<const std::uint8_t> mem_;
  std::string name_;
  Bytes buf_;
  std::size_t pos_ = 0, end_ = 0;
  std::uint64_t offset_ = 0;
};

const std::uint8_t kMacA[6] = {0x02, 0x71, 0, 0, 0, 2};
const std::uint8_t kMacB[6] = {0x02, 0x71, 0, 0, 0, 1};

// An Ethernet header (of type `ethertype`) followed by p[0..n).
void ethernet_around(Bytes& out, std::uint16_t ethertype, const std::uint8_t* p, std::size_t n) {
  out.resize(14 + n);
  std::memcpy(out.data(), kMacA, 6);
  std::memcpy(out.data() + 6, kMacB, 6);
  put16(out, 12, ethertype);
  if (n) std::memcpy(out.data() + 14, p, n);
}

// Ethernet/IPv4/UDP around a payload, with a valid IPv4 header checksum.
void wrap_udp4(Bytes& out, const std::uint8_t* payload, std::size_t n) {
  out.assign(14 + 28 + n, 0);
  std::memcpy(out.data(), kMacA, 6);
  std::memcpy(out.data() + 6, kMacB, 6);
  put16(out, 12, 0x0800);
  const std::uint8_t hdr[20] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  std::memcpy(out.data() + 14, hdr, 20);
  put16(out, 16, static_cast<std::uint16_t>(20 + 8 + n));
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < 20; i += 2) sum += (out[14 + i] << 8) | out[14 + i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(out, 24, static_cast<std::uint16_t>(~sum));
  put16(out, 34, 40000);
  put16(out, 36, 5000);
  put16(out, 38, static_cast<std::uint16_t>(8 + n));
  std::memcpy(out.data() + 42, payload, n);
}

// The address family of a BSD loopback header (DLT_NULL: host order of the
// capturing machine; DLT_LOOP: network order), read in either byte order:
// 4 (IPv4), 6 (IPv6) or 0.
int loopback_family(const std::uint8_t* p) {
  auto family = [](std::uint32_t f) {
    if (f == 2) return 4;                                        // AF_INET everywhere
    if (f == 10 || f == 24 || f == 28 || f == 30) return 6;      // AF_INET6: Linux, *BSD, macOS
    return 0;
  };
  if (int f = family(rd32(p, false))) return f;
  return family(rd32(p, true));
}

}  // namespace

struct FrameSource::Impl {
  enum class Format { ts, pcap, pcapng };
  ByteReader in;
  std::string name, kind;
  std::vector<std::string> notes;
  Format format = Format::ts;
  std::size_t ts_chunk = 7 * kTs;
  bool be = false;             // pcap/pcapng: the section's byte order
  std::uint32_t linktype = 0;  // pcap
  std::vector<std::uint32_t> interfaces;  // pcapng: link type per interface
  std::uint64_t records = 0;   // records (or TS datagrams) handed out or skipped
  std::map<std::uint32_t, std::uint64_t> skipped_links;  // pcapng: records skipped per link type
  std::uint64_t snapped = 0;   // records captured shorter than the packet was (snap length)
  Bytes rec;                   // a record's bytes
  bool done = false;

  void note(std::string s) {
    if (notes.size() < kMaxNotes) notes.push_back(std::move(s));
  }

  Error damaged(const std::string& what) const {
    return make_error(Errc::invalid_argument,
                      name + " is damaged at byte " + std::to_string(in.offset()) + " (record " +
                          std::to_string(records) + "): " + what,
                      "the records before it were read; check the file (capinfos " + name +
                          "), or cut it there and read the rest separately");
  }
  Error cut_short(const std::string& what, std::size_t got, std::size_t want) const {
    return make_error(Errc::invalid_argument,
                      name + " is cut short: " + what + " has " + std::to_string(got) + " of " +
                          std::to_string(want) + " bytes (record " + std::to_string(records) + ")",
                      "the records before it were read; a capture stopped mid-write loses its "
                      "last record: copy it again, or let the capturing tool finish (tcpdump -c N)");
  }

  // Turns one record of link type `lt` into an Ethernet frame in `frame`.
  // A record too short for its link header becomes an empty frame (it is
  // reported as `other`, not run).
  void to_ethernet(std::uint32_t lt, const std::uint8_t* p, std::size_t n, Bytes& frame) {
    auto too_short = [&](std::size_t need) {
      note("record " + std::to_string(records) + ": " + std::to_string(n) + " bytes, shorter than its " +
           link_text(lt) + " header (" + std::to_string(need) + "); reported as other");
      frame.clear();
    };
    switch (lt) {
      case kLinkEthernet:
        frame.assign(p, p + n);
        return;
      case kLinkSll:  // 16-byte header, protocol at 14
        if (n < 16) return too_short(16);
        return ethernet_around(frame, rd16(p + 14, true), p + 16, n - 16);
      case kLinkSll2:  // 20-byte header, protocol at 0
        if (n < 20) return too_short(20);
        return ethernet_around(frame, rd16(p, true), p + 20, n - 20);
      case kLinkRawDlt12:
      case kLinkRawDlt14:
      case kLinkRaw:
      case kLinkIpv4:
      case kLinkIpv6:
        if (n < 1) return too_short(1);
        return ethernet_around(frame, (p[0] >> 4) == 6 ? 0x86dd : 0x0800, p, n);
      case kLinkNull:
      case kLinkLoop: {
        if (n < 4) return too_short(4);
        const int fam = loopback_family(p);
        // Another family: an EtherType the parser does not take (other).
        return ethernet_around(frame, fam == 4 ? 0x0800 : fam == 6 ? 0x86dd : 0x88b5, p + 4, n - 4);
      }
      default:
        frame.clear();
        return;
    }
  }

  Result<bool> next_ts(Bytes& frame) {
    rec.resize(ts_chunk);
    QOCNET_ASSIGN(got, in.read(rec.data(), ts_chunk));
    const std::size_t whole = got / kTs * kTs;
    if (got != whole)
      note(std::to_string(got - whole) + " bytes at the end are not a whole TS packet (188 bytes): "
           "not classified");
    if (whole == 0) return false;
    wrap_udp4(frame, rec.data(), whole);
    ++records;
    return true;
  }

  Result<bool> next_pcap(Bytes& frame) {
    std::uint8_t h[16];
    QOCNET_ASSIGN(got, in.read(h, 16));
    if (got == 0) return false;
    if (got < 16) return cut_short("the last record header", got, 16);
    const std::uint32_t caplen = rd32(h + 8, be);
    if (caplen < rd32(h + 12, be)) ++snapped;
    if (caplen > kMaxCaptureRecord)
      return damaged("a record of " + std::to_string(caplen) + " bytes, more than a capture record holds (" +
                     std::to_string(kMaxCaptureRecord) + ")");
    rec.resize(caplen);
    QOCNET_ASSIGN(n, in.read(rec.data(), caplen));
    if (n < caplen) return cut_short("the last record", n, caplen);
    to_ethernet(linktype, rec.data(), caplen, frame);
    ++records;
    return true;
  }

  // A pcapng Section Header Block: its byte order, then its options skipped.
  Status section_header() {
    std::uint8_t h[12];
    QOCNET_ASSIGN(got, in.read(h, 12));
    if (got < 12) return cut_short("the section header block", got, 12);
    const std::uint32_t bom = rd32(h + 8, false);
    if (bom == 0x1A2B3C4D) be = false;
    else if (bom == 0x4D3C2B1A) be = true;
    else return damaged("a section header without the byte-order magic 1A2B3C4D");
    const std::uint32_t len = rd32(h + 4, be);
    if (len < 28 || len % 4) return damaged("a section header block of " + std::to_string(len) + " bytes");
    QOCNET_ASSIGN(skipped, in.read(nullptr, len - 12));
    if (skipped < len - 12) return cut_short("the section header block", 12 + skipped, len);
    interfaces.clear();
    return {};
  }

  Result<bool> next_pcapng(Bytes& frame) {
    for (;;) {
      QOCNET_ASSIGN(head, in.peek(8));
      if (head.empty()) return false;
      if (head.size() < 8) return cut_short("the last block header", head.size(), 8);
      if (rd32(head.data(), false) == 0x0A0D0D0A) {
        QOCNET_TRY(section_header());
        continue;
      }
      const std::uint32_t type = rd32(head.data(), be);
      const std::uint32_t len = rd32(head.data() + 4, be);
      if (len < 12 || len % 4)
        return damaged("a block (type " + std::to_string(type) + ") of " + std::to_string(len) + " bytes");
      const bool packet = type == 6 || type == 3 || type == 2;
      if (!packet && type != 1) {  // statistics, name resolution, custom, ...: skipped
        QOCNET_ASSIGN(skipped, in.read(nullptr, len));
        if (skipped < len) return cut_short("the last block", skipped, len);
        continue;
      }
      if (len > kMaxCaptureRecord + 64)
        return damaged("a block of " + std::to_string(len) + " bytes, more than a capture record holds (" +
                       std::to_string(kMaxCaptureRecord) + ")");
      rec.resize(len);
      QOCNET_ASSIGN(got, in.read(rec.data(), len));
      if (got < len) return cut_short("the last block", got, len);
      if (rd32(rec.data() + len - 4, be) != len)
        return damaged("a block whose trailing length differs from its leading length " + std::to_string(len));
      const std::uint8_t* body = rec.data() + 8;
      const std::size_t body_len = len - 12;
      if (type == 1) {  // Interface Description Block
        if (body_len < 8) return damaged("an interface description block of " + std::to_string(len) + " bytes");
        if (interfaces.size() >= kMaxInterfaces)
          return damaged("more than " + std::to_string(kMaxInterfaces) + " interfaces in one section");
        interfaces.push_back(rd16(body, be));
        continue;
      }
      std::uint32_t iface = 0;
      std::size_t data_off = 0, caplen = 0;
      if (type == 6) {  // Enhanced Packet Block
        if (body_len < 20) return damaged("an enhanced packet block of " + std::to_string(len) + " bytes");
        iface = rd32(body, be);
        caplen = rd32(body + 12, be);
        if (caplen < rd32(body + 16, be)) ++snapped;
        data_off = 20;
      } else if (type == 3) {  // Simple Packet Block: captured = min(original, block)
        if (body_len < 4) return damaged("a simple packet block of " + std::to_string(len) + " bytes");
        caplen = std::min<std::size_t>(rd32(body, be), body_len - 4);
        if (caplen < rd32(body, be)) ++snapped;
        data_off = 4;
      } else {  // Packet Block (obsolete)
        if (body_len < 20) return damaged("a packet block of " + std::to_string(len) + " bytes");
        iface = rd16(body, be);
        caplen = rd32(body + 12, be);
        data_off = 20;
      }
      if (caplen > body_len - data_off)
        return damaged("a packet of " + std::to_string(caplen) + " bytes in a block of " + std::to_string(len));
      if (iface >= interfaces.size())
        return damaged("a packet of interface " + std::to_string(iface) + ", which no interface block described");
      const std::uint32_t lt = interfaces[iface];
      ++records;
      if (!link_name(lt)) {
        skipped_links[lt]++;
        continue;
      }
      to_ethernet(lt, body + data_off, caplen, frame);
      return true;
    }
  }

  Result<bool> next(Bytes& frame) {
    if (done) return false;
    Result<bool> r = format == Format::ts ? next_ts(frame)
                     : format == Format::pcap ? next_pcap(frame)
                                              : next_pcapng(frame);
    if (!r || !*r) {
      done = true;
      for (const auto& [lt, n] : skipped_links)
        note(std::to_string(n) + " packets of " + link_text(lt) +
             " interfaces skipped: only Ethernet, Linux cooked, raw IP and loopback are read");
      skipped_links.clear();
      if (snapped)
        note(std::to_string(snapped) + " packets were captured shorter than they were (the capture's "
             "snap length): a datagram cut so is other, its UDP length runs past the bytes captured; "
             "capture whole packets (tcpdump -s 0)");
      snapped = 0;
    }
    return r;
  }

  // Recognises the format from the first bytes.
  Status sniff(int ts_per_datagram) {
    QOCNET_ASSIGN(head, in.peek(8 * kTs));
    if (head.empty())
      return make_error(Errc::invalid_argument, name + " is empty",
                        "pass a .ts file or a pcap/pcapng capture that holds packets");
    const std::uint32_t magic = head.size() >= 4 ? rd32(head.data(), true) : 0;
    const bool pcap_le = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
    const bool pcap_be = magic == 0xa1b2c3d4 || magic == 0xa1b23c4d;
    if (pcap_le || pcap_be) {
      format = Format::pcap;
      be = pcap_be;
      std::uint8_t h[24];
      QOCNET_ASSIGN(got, in.read(h, 24));
      if (got < 24) return cut_short("the pcap file header", got, 24);
      const std::uint16_t major = rd16(h + 4, be);
      if (major != 2)
        return make_error(Errc::invalid_argument,
                          name + " is a pcap file of version " + std::to_string(major) + ", not 2",
                          "convert it: editcap -F pcap " + name + " out.pcap");
      linktype = rd32(h + 20, be) & 0x0fffffff;  // the top bits say how many FCS bytes
      if (!link_name(linktype))
        return make_error(Errc::invalid_argument,
                          name + ": packets of " + link_text(linktype) + " cannot be read as Ethernet",
                          "capture on an Ethernet interface (tcpdump -i eth0 -w FILE) or on any "
                          "interface (Linux cooked capture: tcpdump -i any -w FILE)");
      kind = std::string("pcap (") + link_name(linktype) +
             (magic == 0x4d3cb2a1 || magic == 0xa1b23c4d ? ", ns" : "") + ")";
      return {};
    }
    if (magic == 0x0a0d0d0a) {
      format = Format::pcapng;
      kind = "pcapng";
      return {};
    }
    if (head[0] == 0x47) {
      if (head.size() < kTs)
        return make_error(Errc::invalid_argument,
                          name + " starts with 0x47 but holds " + std::to_string(head.size()) +
                              " bytes, less than one TS packet (188)",
                          "pass a whole .ts file (188-byte packets)");
      for (std::size_t i = 1; i < head.size() / kTs; ++i)
        if (head[i * kTs] != 0x47)
          return make_error(Errc::invalid_argument,
                            name + " starts with 0x47 but byte " + std::to_string(i * kTs) + " is " +
                                hex_bytes(head.subspan(i * kTs, 1)) +
                                ", not the sync byte of a 188-byte TS packet",
                            "pass plain MPEG-TS (188-byte packets); convert M2TS (192-byte) or "
                            "204-byte packets first: ffmpeg -i IN -c copy -f mpegts OUT.ts");
      format = Format::ts;
      kind = "ts";
      ts_chunk = kTs * static_cast<std::size_t>(ts_per_datagram);
      return {};
    }
    return make_error(Errc::invalid_argument,
                      name + " is neither an MPEG-TS file nor a capture (pcap/pcapng); it starts with " +
                          hex_bytes(head.first(std::min<std::size_t>(head.size(), 4))),
                      "pass a .ts file (188-byte packets starting with 0x47) or a pcap/pcapng "
                      "capture (tcpdump -w FILE)");
  }
};

FrameSource::FrameSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FrameSource::FrameSource(FrameSource&&) noexcept = default;
FrameSource& FrameSource::operator=(FrameSource&&) noexcept = default;
FrameSource::~FrameSource() = default;

namespace {

Status check_per_datagram(int ts_per_datagram) {
  if (ts_per_datagram < 1 || ts_per_datagram > 7)
    return make_error(Errc::invalid_argument,
                      "ts_per_datagram is " + std::to_string(ts_per_datagram) + ", not 1..7",
                      "UDP datagrams of MPEG-TS carry 1 to 7 TS packets (7 x 188 = 1316 bytes)");
  return {};
}

}  // namespace

Result<FrameSource> FrameSource::open(const fs::path& file, int ts_per_datagram) {
  QOCNET_TRY(check_per_datagram(ts_per_datagram));
  const std::string name = file.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      return make_error(Errc::not_found, "cannot open " + name + ": no such file",
                        "check the path", err);
    if (err == EACCES || err == EPERM)
      return make_error(Errc::invalid_argument, "cannot read " + name + ": permission denied",
                        "make it readable for this user (chmod a+r), or run as a user that may read it",
                        err);
    return make_error(Errc::invalid_argument, "cannot open " + name + ": " + std::strerror(err),
                      "check the path and that it is a readable file", err);
  }
  auto impl = std::make_unique<Impl>();
  impl->in = ByteReader(fd, name);  // owns fd from here
  struct stat st{};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
    return make_error(Errc::invalid_argument, name + " is a directory",
                      "pass one .ts file or pcap/pcapng capture inside it");
  impl->name = name;
  QOCNET_TRY(impl->sniff(ts_per_datagram));
  return FrameSource(std::move(impl));
}

Result<FrameSource> FrameSource::from_memory(std::span<const std::uint8_t> bytes, std::string name,
                                             int ts_per_datagram) {
  QOCNET_TRY(check_per_datagram(ts_per_datagram));
  auto impl = std::make_unique<Impl>();
  impl->in = ByteReader(bytes, name);
  impl->name = std::move(name);
  QOCNET_TRY(impl->sniff(ts_per_datagram));
  return FrameSource(std::move(impl));
}

Result<bool> FrameSource::next(std::vector<std::uint8_t>& frame) { return impl_->next(frame); }
const std::string& FrameSource::kind() const { return impl_->kind; }
const std::vector<std::string>& FrameSource::notes() const { return impl_->notes; }

Result<Capture> read_capture(const fs::path& file, int ts_per_datagram) {
  QOCNET_ASSIGN(src, FrameSource::open(file, ts_per_datagram));
  Capture c;
  c.kind = src.kind();
  Bytes frame;
  for (;;) {
    QOCNET_ASSIGN(more, src.next(frame));
    if (!more) break;
    c.frames.push_back(frame);
  }
  return c;
}

std::size_t max_test_run_frame() {
  // bpf_test_init(): PAGE_SIZE - NET_SKB_PAD(64) - SKB_DATA_ALIGN(skb_shared_info) (320).
  const long page = ::sysconf(_SC_PAGESIZE);
  return static_cast<std::size_t>(page > 0 ? page : 4096) - 64 - 320;
}

namespace {

// What the kernel's parser (bpf_src/qoc_parse.h) finds in a frame: the same
// rules (2 VLAN tags, IPv4 options, 4 IPv6 extension headers, no fragments,
// a UDP length the frame holds).
struct Udp {
  std::size_t l3 = 0, l4 = 0, payload = 0, payload_len = 0;
  bool ipv6 = false;
  std::array<std::uint8_t, 16> saddr{};
  std::uint16_t sport = 0, dport = 0;

  std::string key() const {
    std::string k(reinterpret_cast<const char*>(saddr.data()), 16);
    k.push_back(static_cast<char>(sport >> 8));
    k.push_back(static_cast<char>(sport));
    k.push_back(static_cast<char>(dport >> 8));
    k.push_back(static_cast<char>(dport));
    return k;
  }
  std::string stream() const {
    char buf[INET6_ADDRSTRLEN] = {};
    StreamId id;
    if (ipv6) ::inet_ntop(AF_INET6, saddr.data(), buf, sizeof buf);
    else ::inet_ntop(AF_INET, saddr.data() + 12, buf, sizeof buf);
    id.source = buf;
    id.source_port = sport;
    id.destination_port = dport;
    return to_string(id);
  }
};

std::optional<Udp> parse_udp(std::span<const std::uint8_t> f) {
  const std::size_t n = f.size();
  std::size_t off = 14;
  if (n < 14) return std::nullopt;
  std::uint16_t proto = rd16(&f[12], true);
  for (int i = 0; i < 2 && (proto == 0x8100 || proto == 0x88a8); ++i) {
    if (off + 4 > n) return std::nullopt;
    proto = rd16(&f[off + 2], true);
    off += 4;
  }
  Udp u;
  u.l3 = off;
  std::uint8_t next = 0;
  if (proto == 0x0800) {
    if (off + 20 > n) return std::nullopt;
    const std::size_t hlen = (f[off] & 0x0f) * 4u;
    if ((f[off] >> 4) != 4 || hlen < 20 || off + hlen > n) return std::nullopt;
    if (rd16(&f[off + 6], true) & 0x3fff) return std::nullopt;  // a fragment
    std::memset(u.saddr.data(), 0, 10);
    u.saddr[10] = u.saddr[11] = 0xff;
    std::memcpy(u.saddr.data() + 12, &f[off + 12], 4);
    next = f[off + 9];
    off += hlen;
  } else if (proto == 0x86dd) {
    if (off + 40 > n) return std::nullopt;
    u.ipv6 = true;
    std::memcpy(u.saddr.data(), &f[off + 8], 16);
    next = f[off + 6];
    off += 40;
    int ext = 0;
    for (; ext < 4; ++ext) {
      if (next == 0 || next == 43 || next == 60) {
        if (off + 2 > n) return std::nullopt;
        const std::size_t len = (f[off + 1] + 1u) * 8u;
        next = f[off];
        off += len;
      } else if (next == 44) {
        if (off + 8 > n) return std::nullopt;
        if (rd16(&f[off + 2], true) & 0xfff9) return std::nullopt;  // a fragment
        next = f[off];
        off += 8;
      } else {
        break;
      }
    }
    if (ext == 4 && (next == 0 || next == 43 || next == 60 || next == 44)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (next != 17 || off > n || off + 8 > n) return std::nullopt;
  const std::size_t ulen = rd16(&f[off + 4], true);
  if (ulen < 8 || ulen - 8 > n - off - 8) return std::nullopt;
  u.l4 = off;
  u.sport = rd16(&f[off], true);
  u.dport = rd16(&f[off + 2], true);
  u.payload = off + 8;
  u.payload_len = ulen - 8;
  return u;
}

// PTS of each PES start on `pid` among the TS packets one run inspects (the
// first 7, up to a bad sync byte), -1 for a PES without one.
std::vector<std::int64_t> pes_pts_in(std::span<const std::uint8_t> frame, const Udp& u, std::uint16_t pid) {
  std::vector<std::int64_t> out;
  const std::size_t end = u.payload + u.payload_len;
  std::size_t k = 0;
  for (std::size_t p = u.payload; p + kTs <= end && k < kTsPerRun; p += kTs, ++k) {
    const std::uint8_t* t = &frame[p];
    if (t[0] != 0x47) break;
    const std::uint16_t tpid = static_cast<std::uint16_t>(((t[1] & 0x1f) << 8) | t[2]);
    if (tpid != pid || !(t[1] & 0x40) || !(t[3] & 0x10)) continue;
    std::size_t q = 4;
    if (t[3] & 0x20) {
      if (t[4] > 183) continue;  // the kernel skips the packet (ts_malformed)
      q += 1 + t[4];
    }
    if (q + 14 > kTs || t[q] != 0 || t[q + 1] != 0 || t[q + 2] != 1 || !(t[q + 7] & 0x80)) {
      out.push_back(-1);
      continue;
    }
    const std::uint8_t* s = &t[q + 9];
    out.push_back((static_cast<std::int64_t>(s[0] & 0x0e) << 29) | (s[1] << 22) | ((s[2] & 0xfe) << 14) |
                  (s[3] << 7) | (s[4] >> 1));
  }
  return out;
}

// One of a frame's runs: the bytes and where its UDP payload is.
struct Run {
  std::span<const std::uint8_t> bytes;
  Udp udp;
};

// Frames of one stream whose class may still change, per stream.
struct Track {
  std::string stream;
  std::uint16_t pid = 0;
  std::uint32_t frames = 0;
  std::map<std::uint32_t, FrameRow> open;  // by frame number; at most the last 8 + 7
  std::uint64_t last_use = 0;
};

class Classifier {
 public:
  Classifier(const VerdictFn& verdict, const ClassifySink& sink)
      : verdict_(verdict), sink_(sink), limit_(max_test_run_frame()) {}

  Status add(std::size_t index, std::span<const std::uint8_t> frame) {
    DatagramRow row;
    row.index = index;
    row.bytes = frame.size();
    row.runs = 0;
    if (frame.size() < 14) return report(row);
    const auto udp = parse_udp(frame);
    if (udp) row.stream = udp->stream();
    if (frame.size() <= limit_) {
      QOCNET_ASSIGN(v, verdict_(frame));
      row.verdict = v;
      row.cls = v.cls;
      row.runs = 1;
      if (udp) follow(Run{frame, *udp}, v);
      return report(row);
    }
    // Over the test-run limit: only UDP carrying TS is worth cutting (the
    // kernel's parser makes anything else `other` from its headers).
    if (!udp || udp->payload_len == 0 || frame[udp->payload] != 0x47) return report(row);
    const std::size_t hdr = udp->payload;
    if (hdr + kTs > limit_) return report(row);
    const std::size_t per = std::min(kTsPerRun, (limit_ - hdr) / kTs);
    const std::size_t end = udp->payload + udp->payload_len;
    bool any_video = false;
    FrameClass video_cls = FrameClass::other, plain_cls = FrameClass::other;
    for (std::size_t p = udp->payload; p < end;) {
      std::size_t len = std::min(per * kTs, end - p);
      if (end - p - len < kTs) len = end - p;  // a trailing partial packet rides with the last part
      if (hdr + len > limit_) len = per * kTs;
      build_part(frame, *udp, p, len);
      QOCNET_ASSIGN(v, verdict_(part_));
      Udp pu = *udp;
      pu.payload_len = len;
      follow(Run{part_, pu}, v);
      if (v.video) {
        if (!any_video || v.cls > video_cls) video_cls = v.cls;
        any_video = true;
      }
      plain_cls = std::max(plain_cls, v.cls);
      Verdict& r = row.verdict;
      r.action = v.action;
      r.duration_ns += v.duration_ns;
      r.ts = r.ts || v.ts;
      r.misaligned = r.misaligned || v.misaligned || (v.new_frame && r.video);
      r.video = r.video || v.video;
      r.psi = r.psi || v.psi;
      r.new_frame = r.new_frame || v.new_frame;
      r.pending = v.pending;
      r.frames = v.frames;
      r.frame_class = v.frame_class;
      r.history = v.history;
      r.video_pid = v.video_pid;
      r.codec = v.codec;
      ++row.runs;
      p += len;
    }
    // The row is what the kernel gives a datagram holding packets beyond the
    // 7 it inspects (docs/DPI.md, GSO): ref once its stream has a video PID.
    // The parts' own classes still fed the frame rows above.
    row.parts_cls = any_video ? video_cls : plain_cls;
    row.cls = row.verdict.video_pid ? FrameClass::ref : row.parts_cls;
    row.verdict.cls = row.cls;
    row.verdict.unparsed = true;
    return report(row);
  }

  // Every frame still open is final now.
  void finish() {
    for (auto& [key, t] : tracks_) flush(t, UINT32_MAX);
    tracks_.clear();
  }

 private:
  Status report(const DatagramRow& row) {
    if (sink_.datagram) sink_.datagram(row);
    return {};
  }

  // The frame's headers around payload bytes [p, p + len), lengths fixed.
  void build_part(std::span<const std::uint8_t> f, const Udp& u, std::size_t p, std::size_t len) {
    part_.assign(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(u.payload));
    part_.insert(part_.end(), f.begin() + static_cast<std::ptrdiff_t>(p),
                 f.begin() + static_cast<std::ptrdiff_t>(p + len));
    put16(part_, u.l4 + 4, static_cast<std::uint16_t>(8 + len));
    put16(part_, u.l4 + 6, 0);  // no UDP checksum (the program does not check it)
    if (u.ipv6) {
      put16(part_, u.l3 + 4, static_cast<std::uint16_t>(u.l4 - u.l3 - 40 + 8 + len));
    } else {
      put16(part_, u.l3 + 2, static_cast<std::uint16_t>(u.l4 - u.l3 + 8 + len));
      put16(part_, u.l3 + 10, 0);
      std::uint32_t sum = 0;
      for (std::size_t i = 0; i < u.l4 - u.l3; i += 2) sum += (part_[u.l3 + i] << 8) | part_[u.l3 + i + 1];
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      put16(part_, u.l3 + 10, static_cast<std::uint16_t>(~sum));
    }
  }

  void emit(const FrameRow& r) {
    if (sink_.frame) sink_.frame(r);
  }

  // Frames of `t` numbered below `below` are final: out they go.
  void flush(Track& t, std::uint32_t below) {
    while (!t.open.empty() && t.open.begin()->first < below) {
      emit(t.open.begin()->second);
      t.open.erase(t.open.begin());
    }
  }

  // Numbers the frames that started in a run and keeps the latest word on
  // each of the stream's last 8 (the final one once they leave the window).
  void follow(const Run& run, const Verdict& v) {
    if (!sink_.frame || !v.video_pid) return;
    const std::string key = run.udp.key();
    auto it = tracks_.find(key);
    if (it == tracks_.end()) {
      if (tracks_.size() >= kMaxStreams) evict_oldest();
      it = tracks_.emplace(key, Track{}).first;
      it->second.stream = run.udp.stream();
    }
    Track& t = it->second;
    t.last_use = ++clock_;
    if (t.pid != v.video_pid || v.frames < t.frames) {  // the kernel restarted the stream's frames
      flush(t, UINT32_MAX);
      t.pid = v.video_pid;
      t.frames = 0;
    }
    if (v.frames > t.frames) {
      const std::uint32_t started = v.frames - t.frames;
      const auto pts = pes_pts_in(run.bytes, run.udp, t.pid);
      for (std::uint32_t j = 0; j < started; ++j) {
        FrameRow r;
        r.number = t.frames + 1 + j;
        r.stream = t.stream;
        r.cls = FrameClass::ref;
        // The last `started` PES starts of the run are these frames.
        const std::size_t from_end = started - j;
        if (from_end <= pts.size()) r.pts = pts[pts.size() - from_end];
        t.open[r.number] = std::move(r);
      }
      t.frames = v.frames;
    }
    for (auto& [n, r] : t.open)
      if (v.knows_frame(n)) r.cls = v.class_of_frame(n);
    flush(t, v.frames >= 8 ? v.frames - 7 : 0);
  }

  void evict_oldest() {
    auto oldest = tracks_.begin();
    for (auto i = tracks_.begin(); i != tracks_.end(); ++i)
      if (i->second.last_use < oldest->second.last_use) oldest = i;
    flush(oldest->second, UINT32_MAX);
    tracks_.erase(oldest);
  }

  const VerdictFn& verdict_;
  const ClassifySink& sink_;
  const std::size_t limit_;
  std::map<std::string, Track> tracks_;
  std::uint64_t clock_ = 0;
  Bytes part_;
};

}  // namespace

Status classify_stream(FrameSource& source, const VerdictFn& verdict, const ClassifySink& sink) {
  Classifier c(verdict, sink);
  Bytes frame;
  for (std::size_t index = 0;; ++index) {
    auto more = source.next(frame);
    if (!more || !*more) {
      c.finish();  // what was read is reported before any error
      if (!more) return std::move(more).error();
      return {};
    }
    QOCNET_TRY(c.add(index, frame));
  }
}

Status classify_stream(FrameSource& source, Edge& edge, const ClassifySink& sink) {
  QOCNET_TRY(edge.reset_streams());
  const VerdictFn run = [&edge](std::span<const std::uint8_t> f) { return edge.test_run(f, 1); };
  return classify_stream(source, run, sink);
}

Result<Classification> classify(Edge& edge, const Capture& capture) {
  QOCNET_TRY(edge.reset_streams());
  Classification out;
  const VerdictFn run = [&edge](std::span<const std::uint8_t> f) { return edge.test_run(f, 1); };
  const ClassifySink sink{[&](const DatagramRow& r) { out.datagrams.push_back(r); },
                          [&](const FrameRow& r) { out.frames.push_back(r); }};
  Classifier c(run, sink);
  for (std::size_t i = 0; i < capture.frames.size(); ++i) QOCNET_TRY(c.add(i, capture.frames[i]));
  c.finish();
  return out;
}

}  // namespace qocnet
