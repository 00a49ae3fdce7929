#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of fuzz_bpf_parse (fuzz/corpus/fuzz_bpf_parse/):
crafted frames (IPv4, IPv4 options, 802.1Q and QinQ, IPv6 with extension
headers, fragments, a short UDP length) carrying MPEG-TS with PAT, PMT
(H.264 and HEVC) and PES starts of each frame class, and, when ffmpeg is
installed, datagrams cut from a real H.264 TS stream it encodes. Input format:
see the comment at the top of fuzz/fuzz_bpf_parse.c.
  fuzz/make_bpf_parse_seeds.py [OUTDIR]"""
import os
import struct
import subprocess
import sys
import tempfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_bpf_parse")

MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def ts(pid, payload, pusi=False, cc=0, af=None):
    """One 188-byte TS packet; af: adaptation field bytes after its length."""
    hdr = bytes([0x47, (0x40 if pusi else 0) | (pid >> 8), pid & 0xFF])
    if af is not None:
        room = 188 - 4 - 1 - len(af) - len(payload)
        afb = bytes([len(af) + room]) + af + b"\xff" * room
        return hdr + bytes([0x30 | cc]) + afb + payload
    body = payload + b"\xff" * (184 - len(payload))
    return hdr + bytes([0x10 | cc]) + body[:184]


def psi(table_id, body):
    sec = bytes([table_id]) + struct.pack(">H", 0xB000 | (len(body) + 4)) + body + b"\0\0\0\0"
    return b"\x00" + sec  # pointer_field 0


PAT = ts(0, psi(0x00, b"\x00\x01\xc1\x00\x00" + b"\x00\x01\xf0\x00"), pusi=True)


def pmt(stream_type, pid=0x100):
    body = b"\x00\x01\xc1\x00\x00" + b"\xe1\x00" + b"\xf0\x00" + bytes([stream_type]) + \
        struct.pack(">H", 0xE000 | pid) + b"\xf0\x00"
    return ts(0x1000, psi(0x02, body), pusi=True)


def pes(es, pid=0x100, cc=0, rai=False):
    head = b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05\x21\x00\x01\x00\x01"
    return ts(pid, head + es, pusi=True, cc=cc, af=b"\x40" if rai else None)


def cont(pid=0x100, cc=1):
    return ts(pid, b"\xaa" * 184, cc=cc)


NULL = ts(0x1FFF, b"")


def udp4(payload, opts=b"", frag=0, udp_len=None, proto=17):
    ulen = 8 + len(payload) if udp_len is None else udp_len
    udp = struct.pack(">HHHH", 5000, 1234, ulen, 0) + payload
    ihl = 5 + len(opts) // 4
    ip = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(opts) + len(udp), 1, frag, 64,
                     proto, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + opts
    return ip + udp


def eth(l3, ethertype=0x0800, vlans=()):
    if vlans:
        # each tag (TCI 5) carries the next TPID; the last the real ethertype
        types = list(vlans[1:]) + [ethertype]
        tags = b"".join(struct.pack(">HH", 5, t) for t in types)
        return MAC + struct.pack(">H", vlans[0]) + tags + l3
    return MAC + struct.pack(">H", ethertype) + l3


def udp6(payload, ext=b"", first_next=17):
    udp = struct.pack(">HHHH", 5000, 1234, 8 + len(payload), 0) + payload
    ip6 = struct.pack(">IHBB16s16s", 0x60000000, len(ext) + len(udp), first_next, 64,
                      b"\xfd" + b"\0" * 14 + b"\1", b"\xfd" + b"\0" * 14 + b"\2")
    return ip6 + ext + udp


def record(frame, linear=0, gso=0):
    return struct.pack(">HBB", len(frame), linear, gso) + frame


def seed(name, frames, options=0):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([options]) + b"".join(record(*fr) if isinstance(fr, tuple) else record(fr)
                                            for fr in frames))


H264_IDR = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67\x42\x00\x1e\x00\x00\x01\x65\x88\x84"
H264_P = b"\x00\x00\x01\x41\x9a\x21\x6c"   # nal_ref_idc 2, slice type P
H264_I = b"\x00\x00\x01\x41\x88\x84\x21"   # non-IDR I slice
H264_B = b"\x00\x00\x01\x01\x9e\x42\x11"   # nal_ref_idc 0: disposable
HEVC_IDR = b"\x00\x00\x01\x26\x01\xaf"     # IDR_W_RADL (19)
HEVC_TRAIL_N = b"\x00\x00\x01\x00\x01\xd0"  # TRAIL_N (0): disposable
HEVC_TRAIL_R = b"\x00\x00\x01\x02\x01\xd0"  # TRAIL_R (1)
# A PPS (34) with num_extra_slice_header_bits 2, and TRAIL_R pictures whose
# first slice segment has 2 reserved bits, then slice_type I (ref) or B.
HEVC_PPS = b"\x00\x00\x01\x44\x01\xc5\xc1\x72\x24"
HEVC_TRAIL_R_I = b"\x00\x00\x01\x02\x01\xf7\x88\x84"
HEVC_TRAIL_R_B = b"\x00\x00\x01\x02\x01\xd8\x88\x84"


def main():
    os.makedirs(OUT, exist_ok=True)
    psi_dgram = PAT + pmt(0x1B) + NULL
    seed("h264_gop", [
        eth(udp4(psi_dgram)),
        eth(udp4(pes(H264_IDR, cc=0, rai=True) + cont(cc=1) + cont(cc=2) + NULL)),
        eth(udp4(cont(cc=3) + pes(H264_P, cc=4) + cont(cc=5))),
        eth(udp4(pes(H264_B, cc=6) + cont(cc=8))),        # continuity jump
        eth(udp4(pes(H264_I, cc=9) + cont(cc=10) + cont(cc=11) + cont(cc=12) + cont(cc=13) +
                 cont(cc=14) + cont(cc=15) + cont(cc=0))),  # 8 packets: one unparsed
    ])
    seed("hevc_gop", [
        eth(udp4(PAT + pmt(0x24) + pes(HEVC_IDR, cc=0))),
        eth(udp4(pes(HEVC_TRAIL_R, cc=1) + cont(cc=2))),
        eth(udp4(pes(HEVC_TRAIL_N, cc=3))),
    ])
    seed("hevc_intra", [
        eth(udp4(PAT + pmt(0x24) + pes(HEVC_TRAIL_R_I, cc=0))),  # no PPS seen yet
        eth(udp4(pes(HEVC_PPS + HEVC_TRAIL_R_I, cc=1))),
        eth(udp4(pes(HEVC_TRAIL_R_B, cc=2) + cont(cc=3))),
    ])
    seed("vlan_ipv4_options", [
        eth(udp4(psi_dgram), vlans=(0x8100,)),
        eth(udp4(pes(H264_IDR), opts=b"\x01\x01\x01\x00"), vlans=(0x88a8, 0x8100)),
        eth(udp4(NULL), vlans=(0x8100, 0x8100, 0x8100)),   # too deep
        eth(udp4(NULL, frag=0x2001)),                      # a fragment
        eth(udp4(NULL, udp_len=4)),                        # UDP length below 8
        eth(udp4(NULL, udp_len=900)),                      # UDP length past the frame
        eth(udp4(b"\x00" * 20)),                           # not TS
        eth(b"\x00" * 28, ethertype=0x0806),               # ARP
    ])
    hop = bytes([60, 0]) + b"\x01\x04\0\0\0\0"          # hop-by-hop -> dstopts
    dst = bytes([44, 0]) + b"\x01\x04\0\0\0\0"          # dstopts -> fragment
    frag_first = bytes([17, 0, 0, 0]) + b"\0\0\0\1"     # offset 0, M=0: whole
    seed("ipv6_ext", [
        eth(udp6(psi_dgram), ethertype=0x86DD),
        eth(udp6(pes(H264_IDR), ext=hop + dst + frag_first, first_next=0), ethertype=0x86DD),
        eth(udp6(NULL, ext=bytes([17, 0, 0, 9]) + b"\0\0\0\1", first_next=44),
            ethertype=0x86DD),                           # a later fragment
    ])
    seed("nonlinear_gso", [
        (eth(udp4(psi_dgram + pes(H264_IDR))), 4, 3),     # 64 linear bytes, 3 segments
        (eth(udp4(pes(H264_P, cc=1))), 2, 0),
    ])
    seed("no_slow_program", [eth(udp4(psi_dgram)), eth(udp4(pes(H264_IDR)))], options=1)
    seed("partial_and_bad_sync", [
        eth(udp4(psi_dgram + b"\x47\x01\x00")),
        eth(udp4(pes(H264_IDR) + b"\x48" + b"\0" * 187)),
    ])
    # A real stream: ffmpeg's H.264 in TS, datagrams of 7 packets.
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tsf = os.path.join(tmp, "s.ts")
            subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                            "testsrc=size=96x64:rate=10", "-t", "2", "-c:v", "libx264",
                            "-g", "10", "-bf", "2", "-f", "mpegts", tsf], check=True)
            data = open(tsf, "rb").read()
            dgrams = [data[i:i + 1316] for i in range(0, len(data), 1316)]
            seed("ffmpeg_h264_start", [eth(udp4(d)) for d in dgrams[:4]])
            seed("ffmpeg_h264_mid", [eth(udp4(dgrams[0]))] +
                 [eth(udp4(d)) for d in dgrams[len(dgrams) // 2:len(dgrams) // 2 + 4]])
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"make_bpf_parse_seeds: no ffmpeg seeds ({e})", file=sys.stderr)


if __name__ == "__main__":
    main()
