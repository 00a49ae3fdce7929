# SPDX-License-Identifier: Apache-2.0
"""What examples/python/pyav_qoc.py and opencv_qoc.py share: their command
line, the qocnet.Process they register, and the QoC they measure.

The QoC measured here is the share of a window's frames that decoded: the
frames the stream's timestamps say were sent over the window (its PTS span
at the stream's frame rate) against those that came out of the decoder
without error. Frames the edge dropped never arrive, and frames whose
references it dropped fail to decode or come out damaged (PyAV flags the
packet corrupt), so the share falls with the loss the policy applies.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Callable, List, Optional, Tuple

import grpc

import qocnet


def arguments(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--address", default=qocnet.DEFAULT_ADDRESS,
                    help="qocnetd's process socket or TCP address (default %(default)s)")
    ap.add_argument("--name", required=True, help="the process's unique name")
    ap.add_argument("--stream", action="append", required=True,
                    help="a stream it consumes, SRC:SPORT->:DPORT (repeatable; the first is decoded)")
    ap.add_argument("--udp-port", type=int, required=True, help="the UDP port its copies arrive on")
    ap.add_argument("--required", type=float, default=0.0, help="the QoC it needs (0: keep everything)")
    ap.add_argument("--window", type=float, default=5.0, help="seconds per measurement (default %(default)s)")
    ap.add_argument("--listen", default="0.0.0.0", help="the local address to receive on (default %(default)s)")
    ap.add_argument("--fps", type=float, default=0.0, help="the stream's frame rate (default: as the stream says)")
    ap.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: until SIGINT/SIGTERM)")
    return ap


def url(args: argparse.Namespace) -> str:
    """ffmpeg's UDP input: receive on --listen:--udp-port; a large FIFO so a
    slow decoder loses no datagram; give up a read after 5 s of silence."""
    return (f"udp://{args.listen}:{args.udp_port}?fifo_size=1000000&overrun_nonfatal=1"
            "&timeout=5000000")


def stopper(duration: float) -> threading.Event:
    """Set on SIGINT/SIGTERM, or after `duration` seconds (0: never)."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if duration > 0:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    return stop


def process(args: argparse.Namespace, tag: str, stop: threading.Event) -> qocnet.Process:
    """The registered process (printing its policies and what befalls its session);
    waits for qocnetd until it answers or `stop` is set."""

    def on_policy(update: qocnet.qoc_pb2.PolicyUpdate) -> None:
        print(f"{tag}: policy [{update.reason}] {qocnet.stream_text(update.policy.stream)} "
              f"{qocnet.policy_text(update.policy.policy)}", flush=True)

    def on_event(text: str) -> None:
        print(f"{tag}: {text}", flush=True)

    proc = qocnet.Process(args.name, args.stream, required=args.required, udp_port=args.udp_port,
                          address=args.address, on_policy=on_policy, on_event=on_event)
    while True:  # until qocnetd answers, or `stop` is set
        try:
            return proc.start(wait=2.0)
        except qocnet.QocError as e:
            if e.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or stop.is_set():
                raise
            print(f"{tag}: waiting for qocnetd ({e})", flush=True)


class FrameWindow:
    """Frames seen and decoded over a window of wall-clock time; the QoC of
    the window when it is over. Timestamps that jump (a sensor restarting
    its stream, a looped file) start a new segment of the window."""

    def __init__(self, seconds: float, fps: float):
        self.seconds = seconds
        self.fps = fps
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.started = now
        self.decoded = 0
        self.received = 0
        self.segments: List[Tuple[float, float]] = []  # (first PTS, last PTS), seconds

    def add(self, pts: Optional[float], decoded: bool) -> None:
        self.received += 1
        self.decoded += decoded
        if pts is None:
            return
        if self.segments:
            low, high = self.segments[-1]
            if low - 1.0 <= pts <= high + 5.0:
                self.segments[-1] = (min(low, pts), max(high, pts))
                return
        self.segments.append((pts, pts))

    def expected(self) -> int:
        return sum(round((high - low) * self.fps) + 1 for low, high in self.segments)

    def due(self) -> bool:
        return time.monotonic() - self.started >= self.seconds

    def take(self) -> Optional[Tuple[float, int, int]]:
        """(QoC, decoded, expected) of the window now over, or None if no
        frame arrived (nothing to say); starts the next window."""
        expected = max(self.expected(), self.received)
        decoded = self.decoded
        self._reset(time.monotonic())
        if expected == 0 or self.fps <= 0:
            return None
        return min(1.0, decoded / expected), decoded, expected


def report(proc: qocnet.Process, window: FrameWindow, tag: str,
           print_line: Callable[[str], None] = lambda s: print(s, flush=True)) -> None:
    """If the window is over: its QoC to qocnetd (through the Process)."""
    if not window.due():
        return
    taken = window.take()
    if taken is None:
        return
    qoc, decoded, expected = taken
    answer = proc.report_measured(qoc)
    if answer is None:
        print_line(f"{tag}: measured {qoc:.3f} ({decoded}/{expected} frames); qocnetd away, not reported")
        return
    action = qocnet.qoc_pb2.LoopAction.Name(answer.action).removeprefix("LOOP_ACTION_").lower()
    print_line(f"{tag}: measured {qoc:.3f} ({decoded}/{expected} frames): {action}, now "
               f"{qocnet.policy_text(answer.policy.policy)}")
