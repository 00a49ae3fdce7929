# SPDX-License-Identifier: Apache-2.0
"""Cut an MPEG-TS file into UDP datagrams and write them as a pcap capture.

Two cuts:

* ``every7``: ffmpeg's default UDP output, 7 TS packets per datagram
  whatever the frames (small frames share datagrams with their neighbours).
* ``aligned``: what ffmpeg sends with ``-pkt_size 1316 -flush_packets 1``:
  the muxer's output is flushed after each frame it writes, so a datagram
  never holds packets of two video frames. A new datagram starts where the
  muxer starts writing a frame: at the PSI/SI packets (PAT, PMT, SDT) it
  writes just before a video PES start, or at the PES start itself; within a
  frame datagrams hold at most 7 TS packets.

The capture (Ethernet/IPv4/UDP, 10.0.0.1:40000 -> 10.0.0.2:5000, as
``qocnetctl classify`` uses for .ts files) can be classified by
``qocnetctl classify`` and replayed by ``qocnet-eval-replay``.
"""
from __future__ import annotations

import struct
from typing import Iterable

TS = 188
PER_DGRAM = 7


def ts_packets(data: bytes) -> list[bytes]:
    if len(data) % TS:
        raise ValueError(f"TS size {len(data)} is not a multiple of 188")
    pkts = [data[i:i + TS] for i in range(0, len(data), TS)]
    for n, p in enumerate(pkts):
        if p[0] != 0x47:
            raise ValueError(f"TS packet {n} lacks the 0x47 sync byte")
    return pkts


def pid_of(p: bytes) -> int:
    return ((p[1] & 0x1F) << 8) | p[2]


def pusi(p: bytes) -> bool:
    return bool(p[1] & 0x40)


def video_pid(pkts: list[bytes]) -> int:
    """The first video PID named in the PMT (H.264 0x1b or HEVC 0x24)."""
    pmt_pids: set[int] = set()
    for p in pkts:
        pid = pid_of(p)
        if not pusi(p):
            continue
        off = 4
        if p[3] & 0x20:
            off += 1 + p[4]
        if off >= TS:
            continue
        off += 1 + p[off]  # pointer field
        sec = p[off:]
        if pid == 0 and sec and sec[0] == 0x00:
            n = ((sec[1] & 0x0F) << 8 | sec[2]) - 9
            for i in range(0, n, 4):
                prog = struct.unpack(">H", sec[8 + i:10 + i])[0]
                if prog != 0:
                    pmt_pids.add(struct.unpack(">H", sec[10 + i:12 + i])[0] & 0x1FFF)
        elif pid in pmt_pids and sec and sec[0] == 0x02:
            length = (sec[1] & 0x0F) << 8 | sec[2]
            info = (sec[10] & 0x0F) << 8 | sec[11]
            i, end = 12 + info, 3 + length - 4
            while i + 5 <= end:
                st, epid = sec[i], ((sec[i + 1] & 0x1F) << 8) | sec[i + 2]
                if st in (0x1B, 0x24):
                    return epid
                i += 5 + ((sec[i + 3] & 0x0F) << 8 | sec[i + 4])
    raise ValueError("no H.264/HEVC stream in the PMT")


def cut_every7(data: bytes) -> list[bytes]:
    pkts = ts_packets(data)
    return [b"".join(pkts[i:i + PER_DGRAM]) for i in range(0, len(pkts), PER_DGRAM)]


def cut_aligned(data: bytes) -> list[bytes]:
    pkts = ts_packets(data)
    vpid = video_pid(pkts)
    # Start of each muxer write: a video PES start, pulled back over the
    # non-video packets written right before it (PSI/SI, null packets).
    starts = set()
    for i, p in enumerate(pkts):
        if pid_of(p) == vpid and pusi(p):
            j = i
            while j > 0 and pid_of(pkts[j - 1]) != vpid:
                j -= 1
            starts.add(j)
    out: list[bytes] = []
    cur: list[bytes] = []
    for i, p in enumerate(pkts):
        if (i in starts and cur) or len(cur) == PER_DGRAM:
            out.append(b"".join(cur))
            cur = []
        cur.append(p)
    if cur:
        out.append(b"".join(cur))
    return out


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f">{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame_of(payload: bytes, src=(10, 0, 0, 1), dst=(10, 0, 0, 2), sport=40000, dport=5000) -> bytes:
    udp_len = 8 + len(payload)
    ip = struct.pack(">BBHHHBBH4B4B", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, *src, *dst)
    ip = ip[:10] + struct.pack(">H", _csum(ip)) + ip[12:]
    udp = struct.pack(">HHHH", sport, dport, udp_len, 0)
    eth = bytes.fromhex("020000000002" "020000000001") + b"\x08\x00"
    return eth + ip + udp + payload


def write_pcap(path: str, payloads: Iterable[bytes]) -> int:
    n = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, pl in enumerate(payloads):
            fr = frame_of(pl)
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)
            n += 1
    return n


def read_pcap_payloads(path: str) -> list[bytes]:
    """UDP payloads of an Ethernet/IPv4 pcap written by write_pcap."""
    out = []
    with open(path, "rb") as f:
        hdr = f.read(24)
        if struct.unpack("<I", hdr[:4])[0] != 0xA1B2C3D4:
            raise ValueError(f"{path}: not a little-endian pcap")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                break
            incl = struct.unpack("<IIII", rec)[2]
            fr = f.read(incl)
            out.append(fr[14 + 20 + 8:])
    return out
