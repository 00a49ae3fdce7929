#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A computation process that reads its copy of a stream with OpenCV and
reports the share of frames that decode as its QoC, through qocnet.Process.

    PYTHONPATH=clients/python /usr/bin/python3 examples/python/opencv_qoc.py \\
        --name reader --udp-port 6000 --stream '10.0.0.1:40000->:5000' --window 5

As examples/python/pyav_qoc.py, with cv2.VideoCapture('udp://...') (its
FFmpeg back end): every frame read counts as decoded, the stream's
timestamps (CAP_PROP_POS_MSEC) say how many were sent. Needs python3-opencv.
"""

from __future__ import annotations

import os
import sys

import cv2

import qocnet
import video_qoc


def read(args, proc: qocnet.Process, stop) -> None:
    """One opening of the input: reads until it fails, goes silent or stop is set."""
    params = []
    for name, ms in (("CAP_PROP_OPEN_TIMEOUT_MSEC", 30000), ("CAP_PROP_READ_TIMEOUT_MSEC", 10000)):
        if hasattr(cv2, name):
            params += [getattr(cv2, name), ms]
    cap = cv2.VideoCapture(video_qoc.url(args), cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            print("opencv_qoc: cannot open the input yet", flush=True)
            stop.wait(1.0)
            return
        fps = args.fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
        if not 0 < fps < 200:
            fps = 25.0
        window = video_qoc.FrameWindow(args.window, fps)
        print(f"opencv_qoc: reading at {fps:g} frame/s", flush=True)
        while not stop.is_set():
            ok, _frame = cap.read()
            if not ok:
                print("opencv_qoc: the input went silent; opening it again", flush=True)
                return
            window.add(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, True)
            video_qoc.report(proc, window, "opencv_qoc")
    finally:
        cap.release()


def main() -> int:
    args = video_qoc.arguments(__doc__.split("\n\n")[0]).parse_args()
    # MPEG-TS over UDP: no probing of the whole input.
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "f;mpegts")
    stop = video_qoc.stopper(args.duration)
    try:
        proc = video_qoc.process(args, "opencv_qoc", stop)
    except qocnet.QocError as e:
        print(f"opencv_qoc: {e}", file=sys.stderr)
        return 1
    try:
        while not stop.is_set():
            read(args, proc, stop)
    finally:
        proc.stop()
        print(f"opencv_qoc: unregistered {args.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
