# SPDX-License-Identifier: Apache-2.0
"""Decode an MPEG-TS file (possibly with lost datagrams) to luma frames with
their PTS, using ffmpeg's H.264 decoder as a receiving process would.

One ffmpeg run: every decoded frame passes once (-fps_mode passthrough: no
frame duplicated or dropped to fit a rate) through `showinfo`, which logs its
PTS in order, and leaves as 8-bit luma (gray) raw video on stdout.
"""
from __future__ import annotations

import re
import subprocess

import numpy as np

_INFO = re.compile(rb"\] n:\s*(\d+) pts:\s*(\S+)")


def decode_luma(path, width=640, height=480):
    """(frames, pts): a list of height x width uint8 arrays and their PTS
    (90 kHz ticks; None where the decoder gave none), in output order."""
    cmd = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "info", "-copyts", "-i", path, "-map", "0:v:0",
           "-fps_mode", "passthrough", "-vf", f"scale={width}:{height},showinfo=checksum=0",
           "-pix_fmt", "gray", "-f", "rawvideo", "-"]
    r = subprocess.run(cmd, capture_output=True)
    size = width * height
    n = len(r.stdout) // size
    pts = []
    for m in _INFO.finditer(r.stderr):
        v = m.group(2)
        pts.append(int(v) if v.lstrip(b"-").isdigit() else None)
    if r.returncode != 0 and n == 0:
        # Nothing decodable at all (e.g. every key frame lost): no frames.
        return [], []
    if len(pts) != n:
        raise RuntimeError(f"{path}: ffmpeg gave {n} frames but logged {len(pts)} PTS")
    buf = np.frombuffer(r.stdout, dtype=np.uint8, count=n * size)
    frames = [buf[i * size:(i + 1) * size].reshape(height, width) for i in range(n)]
    return frames, pts
