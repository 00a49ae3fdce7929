#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A computation process that decodes its copy of a stream with PyAV and
reports the share of frames that decode as its QoC, through qocnet.Process.

    PYTHONPATH=clients/python /usr/bin/python3 examples/python/pyav_qoc.py \\
        --name decoder --udp-port 6000 --stream '10.0.0.1:40000->:5000' --window 5

Run it where its copies arrive (a container's namespace with a veth toward
the edge) and qocnetd's process socket is reachable. It registers, receives
the MPEG-TS datagrams on --udp-port (av.open('udp://...')), decodes every
video packet, and every --window seconds reports decoded / expected frames
(examples/python/video_qoc.py). When qocnetd restarts, qocnet.Process
registers the process again; when the copies stop, the input is opened
again. Needs python3-av.
"""

from __future__ import annotations

import sys

import av

import qocnet
import video_qoc

AvError = getattr(getattr(av, "error", None), "FFmpegError", None) or av.AVError


def decode(args, proc: qocnet.Process, stop) -> None:
    """One opening of the input: decodes until it fails, goes silent or stop is set."""
    with av.open(video_qoc.url(args), format="mpegts", timeout=(30.0, 10.0)) as container:
        if not container.streams.video:
            print("pyav_qoc: no video stream in the input", flush=True)
            return
        video = container.streams.video[0]
        fps = args.fps or float(video.average_rate or video.guessed_rate or 25)
        window = video_qoc.FrameWindow(args.window, fps)
        print(f"pyav_qoc: decoding {video.codec_context.name} at {fps:g} frame/s", flush=True)
        for packet in container.demux(video):
            if stop.is_set():
                return
            if packet.size == 0:
                continue  # the demuxer's flush packet
            ok = not packet.is_corrupt
            try:
                packet.decode()
            except AvError:
                ok = False
            pts = float(packet.pts * packet.time_base) if packet.pts is not None else None
            window.add(pts, ok)
            video_qoc.report(proc, window, "pyav_qoc")


def main() -> int:
    args = video_qoc.arguments(__doc__.split("\n\n")[0]).parse_args()
    stop = video_qoc.stopper(args.duration)
    try:
        proc = video_qoc.process(args, "pyav_qoc", stop)
    except qocnet.QocError as e:
        print(f"pyav_qoc: {e}", file=sys.stderr)
        return 1
    try:
        while not stop.is_set():
            try:
                decode(args, proc, stop)
            except AvError as e:
                print(f"pyav_qoc: input: {e}; opening it again", flush=True)
                stop.wait(0.5)
    finally:
        proc.stop()
        print(f"pyav_qoc: unregistered {args.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
