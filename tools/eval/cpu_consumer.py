#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""cpu_consumer: the consumers of Fig. 5 and Fig. 7 (scripts/evaluate-cpu).

  cpu_consumer.py --port 5000 [--port 5001 ...] [--decode]

Without --decode (Fig. 7, the light consumer): receives the MPEG-TS datagrams
of its streams on UDP and parses every TS packet, as the front end of an
analysing process does before it hands frames to a decoder: sync byte, PID,
continuity counter (counting discontinuities), adaptation field
(random-access flag), PES start (a new video frame), and it reassembles each
frame's elementary-stream bytes (copying the payloads). It decodes nothing.

With --decode (Fig. 5): every datagram of port i is written to its own ffmpeg
H.264 decoder (`ffmpeg -threads 1 -f mpegts -i pipe:0 -f null -`: every
frame that arrives decoded, pictures discarded); on SIGTERM the decoders get
end of input, finish, and are reaped, so their CPU time counts in this
process's rusage (wait4 of the caller).

One thread; prints "ready" once listening; on SIGTERM it prints its counters
as one JSON line and exits.
"""
import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys

DECODER = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "fatal", "-threads", "1",
           "-f", "mpegts", "-i", "pipe:0", "-map", "0:v", "-f", "null", "-progress", "pipe:1",
           "-stats_period", "3600", "-"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, action="append", required=True)
    ap.add_argument("--decode", action="store_true", help="pipe each port's stream into an ffmpeg decoder")
    args = ap.parse_args()
    if args.decode:
        return decode(args.port)
    socks = []
    for p in args.port:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind(("0.0.0.0", p))
        s.setblocking(False)
        socks.append(s)
    st = {"datagrams": 0, "bytes": 0, "ts_packets": 0, "bad_sync": 0, "cc_errors": 0, "frames": 0,
          "random_access": 0, "es_bytes": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    cc = {}
    frame = bytearray()
    print("ready", flush=True)
    while not stop:
        try:
            ready, _, _ = select.select(socks, [], [], 0.5)
        except InterruptedError:
            continue
        for s in ready:
            while True:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    break
                st["datagrams"] += 1
                st["bytes"] += len(d)
                for o in range(0, len(d) - 187, 188):
                    st["ts_packets"] += 1
                    if d[o] != 0x47:
                        st["bad_sync"] += 1
                        continue
                    b1, b3 = d[o + 1], d[o + 3]
                    pid = ((b1 & 0x1F) << 8) | d[o + 2]
                    afc = (b3 >> 4) & 3
                    key = (s.fileno(), pid)
                    if afc & 1:
                        last = cc.get(key)
                        if last is not None and (last + 1) & 15 != b3 & 15:
                            st["cc_errors"] += 1
                        cc[key] = b3 & 15
                    off = o + 4
                    if afc & 2:
                        if d[off] and d[off + 1] & 0x40:
                            st["random_access"] += 1
                        off += 1 + d[off]
                    if not afc & 1 or off >= o + 188 or pid in (0, 0x11, 0x1000):
                        continue
                    if b1 & 0x40 and d[off:off + 3] == b"\0\0\1":
                        st["frames"] += 1
                        st["es_bytes"] += len(frame)
                        frame = bytearray()
                        off += 9 + d[off + 8]  # PES header
                    frame += d[off:o + 188]
    st["es_bytes"] += len(frame)
    print(json.dumps(st), flush=True)


def decode(ports):
    socks, decs = [], []
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind(("0.0.0.0", p))
        socks.append(s)
        decs.append(subprocess.Popen(DECODER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    st = {"datagrams": [0] * len(ports), "bytes": [0] * len(ports), "frames": [], "decoder_cpu_s": []}
    print("ready", flush=True)
    fds = {s.fileno(): i for i, s in enumerate(socks)}
    while not stop:
        try:
            ready, _, _ = select.select(socks, [], [], 0.5)
        except InterruptedError:
            continue
        for s in ready:
            i = fds[s.fileno()]
            d = s.recv(65536)
            st["datagrams"][i] += 1
            st["bytes"][i] += len(d)
            try:
                decs[i].stdin.write(d)
                decs[i].stdin.flush()
            except BrokenPipeError:
                pass
    for d in decs:
        try:
            d.stdin.close()
        except BrokenPipeError:
            pass
    for d in decs:
        out = d.stdout.read().decode(errors="replace")
        _, _, ru = os.wait4(d.pid, 0)
        fr = [int(x.split("=")[1]) for x in out.split() if x.startswith("frame=")]
        st["frames"].append(fr[-1] if fr else 0)
        st["decoder_cpu_s"].append(ru.ru_utime + ru.ru_stime)
    print(json.dumps(st), flush=True)


if __name__ == "__main__":
    sys.exit(main())
