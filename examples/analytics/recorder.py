#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Recorder: writes every stream it receives to a .ts file, untouched. It
needs everything (requirement 1.0 = keep). QoC = completeness: TS packets
received / (received + missing by the continuity counter), per stream; on a
loss-free copy exactly 1.0 (a gap of n packets shows as n mod 16, so under
loss this is an upper bound).

  recorder.py --name recorder --ip 10.0.0.2 --udp-port 6000 \\
      --stream 10.0.1.2:40001->:5000 --stream 10.0.2.2:40002->:5000 --out DIR --status rec.json
"""
import os
import sys
import threading

import analytics


def main() -> int:
    args = analytics.arguments(__doc__.split("\n\n")[0], required=1.0, every=0).parse_args()
    out = args.out or "."
    os.makedirs(out, exist_ok=True)
    proc = analytics.Process(args, "recorder", "TS completeness")
    # Copies keep the sensor's source address: one file and one continuity
    # check per source.
    sources = {}
    for s in args.stream:
        sid = proc.qc.parse_stream(s)
        sources[f"{sid.source}:{sid.source_port}"] = proc.qc.stream_text(sid)
    files, checks, lock = {}, {}, threading.Lock()
    tally = {"foreign": 0}

    def on_datagram(data, src):
        stream = sources.get(src)
        if stream is None:
            tally["foreign"] += 1
            return
        with lock:
            if stream not in files:
                name = src.replace(":", "_") + ".ts"
                files[stream] = open(os.path.join(out, f"{args.name}.{name}"), "wb")
                checks[stream] = analytics.Continuity()
            files[stream].write(data)
            before = (checks[stream].packets, checks[stream].missing)
            checks[stream].feed(data)
            got = checks[stream].packets - before[0]
            lost = checks[stream].missing - before[1]
        proc.sample(stream, got, got + lost)

    def close():
        with lock:
            for f in files.values():
                f.close()

    def extra():
        with lock:
            return {"continuity": {s: {"packets": c.packets, "missing": c.missing, "gaps": c.gaps,
                                       "completeness": c.completeness()} for s, c in checks.items()},
                    "files": {s: f.name for s, f in files.items()}, "foreign": tally["foreign"]}

    proc.extra = extra
    reporters = {s: analytics.Reporter(args.report_every, min_samples=10) for s in sources.values()}
    return proc.run(on_datagram, reporters, close)


if __name__ == "__main__":
    sys.exit(main())
