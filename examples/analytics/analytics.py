# SPDX-License-Identifier: Apache-2.0
"""Pieces shared by qocnet's example computation processes (detector.py,
counter.py, feature_monitor.py, recorder.py).

A process receives its copy of a stream on its own UDP socket (the edge
rewrote each copy to the process's MAC, IP and port), decodes it with an
ffmpeg subprocess fed through a pipe, analyses sampled frames with OpenCV,
registers with qocnetd over gRPC with its QoC requirement, reports the QoC
it measures, follows its policy stream and unregisters on SIGTERM.

The measured QoC compares what arrived with the loss-free decode of the same
source (the processes are given the file the sensor streams), frames matched
by PTS; a frame that never arrived is the previous one shown again, as a
viewer or an analyser would see it (tools/analysis/qocnet_eval/metrics.py
holds the metrics and the HOG/SIFT detectors).

Runs on Debian's /usr/bin/python3 (python3-grpcio, python3-opencv, numpy).
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "analysis"))
sys.path.insert(0, str(ROOT / "clients" / "python"))

WIDTH, HEIGHT = 640, 480
TS = 188
_SHOWINFO = re.compile(r"\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS)")


# --------------------------------------------------------------------------
# QoC bookkeeping (no I/O: unit-tested in test/demo/test_analytics.py)

class QocWindow:
    """Measured QoC as a ratio of sums (found / expected) over a sliding
    window of samples, and over the whole run.

    Each sample adds `found` out of `expected` (e.g. reference boxes matched
    out of reference boxes). A window's QoC is sum(found) / sum(expected),
    not a mean of ratios, so a frame with many people weighs more than an
    empty one; samples with expected == 0 count for nothing. `lossless`
    caps the value (the QoC table's metric at zero loss)."""

    def __init__(self, window_s: float = 10.0, lossless: float = 1.0):
        self.window_s = window_s
        self.lossless = lossless
        self._samples: list[tuple[float, float, float]] = []
        self.found_total = 0.0
        self.expected_total = 0.0
        self.count = 0

    def add(self, found: float, expected: float, now: Optional[float] = None):
        if expected < 0 or found < 0:
            raise ValueError(f"sample {found}/{expected}: counts are never negative")
        found = min(found, expected)
        now = time.monotonic() if now is None else now
        self._samples.append((now, found, expected))
        self.found_total += found
        self.expected_total += expected
        self.count += 1

    def _expire(self, now: float):
        cut = now - self.window_s
        while self._samples and self._samples[0][0] < cut:
            self._samples.pop(0)

    def measured(self, now: Optional[float] = None) -> Optional[float]:
        """QoC over the window; None when the window expects nothing."""
        self._expire(time.monotonic() if now is None else now)
        exp = sum(s[2] for s in self._samples)
        if exp <= 0:
            return None
        return min(self.lossless, sum(s[1] for s in self._samples) / exp)

    def overall(self) -> Optional[float]:
        if self.expected_total <= 0:
            return None
        return min(self.lossless, self.found_total / self.expected_total)


class Timeline:
    """What a process measured, received and was given, for the demo's
    per-window figures (windows.py): QoC samples (found, expected) and
    received datagrams and bytes, each summed in buckets of `step` seconds
    of CLOCK_MONOTONIC (one clock in every namespace, so the monitor can cut
    the run's windows), and its policy changes with their times."""

    def __init__(self, step: float = 0.1):
        self.step = step
        self._lock = threading.Lock()
        self._qoc: dict[str, dict[int, list]] = {}
        self._rx: dict[str, dict[int, list]] = {}
        self._policy: dict[str, list] = {}

    def _bucket(self, at: Optional[float]) -> int:
        return int((time.monotonic() if at is None else at) // self.step)

    def sample(self, stream: str, found: float, expected: float, at: Optional[float] = None):
        with self._lock:
            b = self._qoc.setdefault(stream, {}).setdefault(self._bucket(at), [0.0, 0.0])
            b[0] += min(found, expected)
            b[1] += expected

    def received(self, source: str, nbytes: int, at: Optional[float] = None):
        with self._lock:
            b = self._rx.setdefault(source, {}).setdefault(self._bucket(at), [0, 0])
            b[0] += 1
            b[1] += nbytes

    def policy(self, stream: str, drop: float, text: str, at: Optional[float] = None):
        """Logs a policy when it differs from the stream's last one."""
        with self._lock:
            log = self._policy.setdefault(stream, [])
            if not log or log[-1][2] != text:
                log.append([time.monotonic() if at is None else at, drop, text])

    def export(self) -> dict:
        with self._lock:
            return {"step": self.step,
                    "qoc": {k: [[b, *v] for b, v in sorted(d.items())] for k, d in self._qoc.items()},
                    "rx": {k: [[b, *v] for b, v in sorted(d.items())] for k, d in self._rx.items()},
                    "policy": {k: [list(e) for e in v] for k, v in self._policy.items()}}


class Reporter:
    """When to send ReportMeasuredQoc: every `every_s` seconds, and only
    with at least `min_samples` fresh samples since the last report (an
    idle or starved window says nothing, rather than a made-up value)."""

    def __init__(self, every_s: float = 5.0, min_samples: int = 2, start: Optional[float] = None):
        self.every_s = every_s
        self.min_samples = min_samples
        self._next = (time.monotonic() if start is None else start) + every_s
        self._seen_at_last = 0

    def due(self, window: QocWindow, now: Optional[float] = None) -> Optional[float]:
        """The value to report now, or None."""
        now = time.monotonic() if now is None else now
        if now < self._next:
            return None
        self._next = now + self.every_s
        if window.count - self._seen_at_last < self.min_samples:
            return None
        value = window.measured(now)
        if value is None:
            return None
        self._seen_at_last = window.count
        return value


def count_accuracy(n: int, n_ref: int) -> tuple[float, float]:
    """(found, expected) of a people count against the loss-free count:
    min/max of the two, weighted by the larger (1 of 1 when both are 0,
    an empty scene counted right)."""
    if n < 0 or n_ref < 0:
        raise ValueError("counts are never negative")
    big = max(n, n_ref)
    if big == 0:
        return 1.0, 1.0
    return float(min(n, n_ref)), float(big)


class SampleMatcher:
    """Frames of a live decode matched by PTS to the sampled frames of the
    loss-free decode.

    Frames arrive in presentation order. For each sample PTS s (sorted): a
    received frame with PTS s is shown for it; if a later PTS arrives first,
    s was lost and the last frame shown before it is shown again (frozen).
    Samples before the first frame received are skipped (the process joined
    later; that is not loss). emit(pts, frame, frozen) per sample."""

    def __init__(self, sample_pts, emit: Callable):
        self.samples = sorted(set(sample_pts))
        self.emit = emit
        self._i = None  # index of the next sample; None until a frame arrived
        self.last = None
        self.last_pts = None
        self.frames = 0
        self.out_of_order = 0
        self.matched = 0
        self.frozen = 0

    def feed(self, pts: Optional[int], frame):
        if pts is None:
            return
        self.frames += 1
        if self._i is None:
            self._i = bisect.bisect_left(self.samples, pts)
        if self.last_pts is not None and pts <= self.last_pts:
            self.out_of_order += 1  # a duplicate or late frame: not shown
            return
        while self._i < len(self.samples) and self.samples[self._i] < pts:
            if self.last is not None:
                self.frozen += 1
                self.emit(self.samples[self._i], self.last, True)
            self._i += 1
        if self._i < len(self.samples) and self.samples[self._i] == pts:
            self.matched += 1
            self.emit(pts, frame, False)
            self._i += 1
        self.last, self.last_pts = frame, pts


class Continuity:
    """TS continuity of one stream as a recorder sees it: packets received
    and packets missing by the continuity counter, per PID. A gap of n
    packets shows as n mod 16, so `missing` is a lower bound on loss; on a
    loss-free copy it is exactly 0."""

    def __init__(self):
        self.cc: dict[int, int] = {}
        self.packets = 0
        self.missing = 0
        self.gaps = 0
        self.bad = 0

    def feed(self, datagram: bytes):
        for off in range(0, len(datagram) - TS + 1, TS):
            if datagram[off] != 0x47:
                self.bad += 1
                continue
            pid = ((datagram[off + 1] & 0x1F) << 8) | datagram[off + 2]
            if pid == 0x1FFF:
                continue
            self.packets += 1
            afc = (datagram[off + 3] >> 4) & 0x3
            cc = datagram[off + 3] & 0xF
            if not afc & 1:  # no payload: the counter does not advance
                continue
            last = self.cc.get(pid)
            self.cc[pid] = cc
            if last is None or cc == last:  # first packet or a duplicate
                continue
            gap = (cc - last - 1) & 0xF
            if gap:
                self.gaps += 1
                self.missing += gap

    def completeness(self) -> float:
        total = self.packets + self.missing
        return 1.0 if total == 0 else self.packets / total


# --------------------------------------------------------------------------
# Reference decode, live decode, UDP receiver

def ffmpeg_decode_cmd(source: str, select_every: int = 0) -> list[str]:
    vf = f"scale={WIDTH}:{HEIGHT}"
    if select_every > 1:
        vf += f",select=not(mod(n\\,{select_every}))"
    return ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "info", "-copyts",
            *([] if source != "pipe:0" else ["-f", "mpegts",
                                               "-probesize", "100000", "-analyzeduration", "500000"]),
            "-i", source, "-map", "0:v:0", "-fps_mode", "passthrough",
            "-vf", vf + ",showinfo=checksum=0", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"]


def _pts_of(text: str) -> Optional[int]:
    return None if text == "NOPTS" else int(text)


def reference_samples(path: str, every: int) -> dict[int, "np.ndarray"]:
    """Every `every`-th frame (in presentation order) of the loss-free decode
    of `path`, by PTS."""
    import numpy as np
    r = subprocess.run(ffmpeg_decode_cmd(path, every), capture_output=True)
    size = WIDTH * HEIGHT
    pts = [_pts_of(m.group(2)) for m in _SHOWINFO.finditer(r.stderr.decode(errors="replace"))]
    n = len(r.stdout) // size
    if r.returncode != 0 or n != len(pts):
        raise RuntimeError(f"reference decode of {path} failed ({n} frames, {len(pts)} PTS): "
                           f"{r.stderr.decode(errors='replace')[-400:]}")
    buf = np.frombuffer(r.stdout, dtype=np.uint8)
    return {p: buf[i * size:(i + 1) * size].reshape(HEIGHT, WIDTH)
            for i, p in enumerate(pts) if p is not None}


def read_exact(f, size: int) -> Optional[bytes]:
    """`size` bytes from an unbuffered pipe (reads return what is there);
    None at the end of the stream."""
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            return None
        got += n
    return bytes(buf)


class LiveDecoder:
    """ffmpeg decoding MPEG-TS written to its stdin; on_frame(pts, luma)
    for every frame it outputs, in presentation order."""

    def __init__(self, on_frame: Callable):
        self.on_frame = on_frame
        self.proc = subprocess.Popen(ffmpeg_decode_cmd("pipe:0"), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self._pts: "queue.Queue[Optional[int]]" = queue.Queue()
        self.errors = 0
        self._threads = [threading.Thread(target=self._stderr, daemon=True),
                         threading.Thread(target=self._stdout, daemon=True)]
        for t in self._threads:
            t.start()

    def write(self, data: bytes) -> bool:
        try:
            self.proc.stdin.write(data)
            return True
        except (BrokenPipeError, ValueError):
            return False

    def _stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            m = _SHOWINFO.search(line)
            if m:
                self._pts.put(_pts_of(m.group(2)))
            elif "error" in line.lower():
                self.errors += 1
        self._pts.put(None)

    def _stdout(self):
        import numpy as np
        size = WIDTH * HEIGHT
        while True:
            data = read_exact(self.proc.stdout, size)
            if data is None:
                return
            try:
                pts = self._pts.get(timeout=10)
            except queue.Empty:
                pts = None
            self.on_frame(pts, np.frombuffer(data, dtype=np.uint8).reshape(HEIGHT, WIDTH))

    def close(self, timeout: float = 5.0):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()


class UdpReceiver(threading.Thread):
    """Receives the process's copies on ip:port; on_datagram(data, source)
    for each; counts datagrams and bytes per source (IP, port), and logs
    them in `timeline` when given.

    stop() drains the socket before closing it: a process stops it after
    unregistering, when the edge sends it nothing more, and every datagram
    the edge delivered before is then read and counted (closing at once
    would lose those still queued, uncounted)."""

    def __init__(self, ip: str, port: int, on_datagram: Callable, timeline: Optional[Timeline] = None):
        super().__init__(daemon=True, name="udp")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.2)
        self.on_datagram = on_datagram
        self.by_source: dict[str, list[int]] = {}
        self.timeline = timeline
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def _take(self, data: bytes, src: str, sport: int):
        key = f"{src}:{sport}"
        with self.lock:
            c = self.by_source.setdefault(key, [0, 0])
            c[0] += 1
            c[1] += len(data)
        if self.timeline is not None:
            self.timeline.received(key, len(data))
        self.on_datagram(data, key)

    def run(self):
        while not self.stopping.is_set():
            try:
                data, (src, sport) = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self._take(data, src, sport)
        # Drain: what is queued now, and what arrives until the socket has
        # been quiet for `quiet_s` (datagrams the edge sent just before the
        # process left may still be on their way through the veth).
        self.sock.settimeout(self.quiet_s)
        while True:
            try:
                data, (src, sport) = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                return
            self._take(data, src, sport)

    def counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {k: {"datagrams": v[0], "bytes": v[1]} for k, v in self.by_source.items()}

    quiet_s = 0.3

    def stop(self):
        self.stopping.set()
        self.join(10)
        self.sock.close()


# --------------------------------------------------------------------------
# The process: arguments, session with qocnetd, status file, main loop

def arguments(description: str, required: float, every: int) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--name", required=True, help="unique process name")
    ap.add_argument("--address", default="unix:/run/qocnet/process/qocnet.sock",
                    help="qocnetd's process socket (QocService)")
    ap.add_argument("--interface", default="",
                    help="this process's interface toward the edge, only if it has several")
    ap.add_argument("--ip", required=True, help="IPv4 address to receive on")
    ap.add_argument("--udp-port", type=int, required=True, help="UDP port to receive on")
    ap.add_argument("--stream", action="append", required=True, help="SRC:SPORT->:DPORT (repeatable)")
    ap.add_argument("--reference", help="the file the sensor streams (loss-free reference)")
    ap.add_argument("--required", type=float, default=required, help="QoC required (default %(default)s)")
    ap.add_argument("--sample-every", type=int, default=every,
                    help="analyse every k-th frame of the reference (default %(default)s)")
    ap.add_argument("--report-every", type=float, default=5.0, help="seconds between measured-QoC reports")
    ap.add_argument("--window", type=float, default=None,
                    help="seconds of samples in a report (default: --report-every, so that each report is "
                         "one window of the kind the requirement is judged over, and the loop learns the "
                         "spread of those windows)")
    ap.add_argument("--status", help="write a JSON status here every second")
    ap.add_argument("--out", help="directory for the process's output")
    return ap


@dataclass
class Process:
    """One computation process's life: register, receive, report, leave."""
    args: argparse.Namespace
    role: str
    metric: str
    started: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    policies: dict = field(default_factory=dict)
    actions: dict = field(default_factory=dict)
    reports: int = 0
    last_reported: dict = field(default_factory=dict)
    state: str = "starting"
    error: str = ""
    windows: dict = field(default_factory=dict)
    extra: Callable = lambda: {}
    timeline: Timeline = field(default_factory=Timeline)

    def __post_init__(self):
        import qocnet.client as qc
        self.qc = qc
        self.client = qc.connect(self.args.address)
        self.lock = threading.Lock()
        self.receiver: Optional[UdpReceiver] = None
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())

    def log(self, text: str):
        print(f"{self.args.name}: {text}", file=sys.stderr, flush=True)

    def sample(self, stream: Optional[str], found: float, expected: float, at: Optional[float] = None):
        """One QoC sample: into the reporting window (stream None: the
        process's one stream) and into the timeline at time `at` (when the
        sample's frame or datagram arrived; default now)."""
        self.window(stream).add(found, expected)
        self.timeline.sample(stream or self.args.stream[0], found, expected, at)

    def _note_policy(self, stream_id, policy):
        text = self.qc.policy_text(policy)
        self.policies[self.qc.stream_text(stream_id)] = text
        drop = 0.0 if text == "keep" else float(policy.drop)
        self.timeline.policy(self.qc.stream_text(stream_id), drop, text)

    def window(self, stream: Optional[str] = None) -> QocWindow:
        key = stream or "*"
        if key not in self.windows:
            self.windows[key] = QocWindow(self.args.window or self.args.report_every)
        return self.windows[key]

    def register(self):
        deadline = time.monotonic() + 60
        while True:  # qocnetd answers UNAVAILABLE while its datapath compiles
            try:
                policies = self.client.register(self.args.name, self.args.stream, self.args.required,
                                                udp_port=self.args.udp_port, interface=self.args.interface)
                break
            except self.qc.QocError as e:
                if e.code != self.qc.grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline \
                        or self.stop.wait(0.5):
                    raise
        for p in policies:
            with self.lock:
                self._note_policy(p.stream, p.policy)
        self.client.follow_policy(self._update, self._watch_failed)
        self.log(f"registered, required {self.args.required:g}: {self.policies}")

    def _update(self, update):
        with self.lock:
            self._note_policy(update.policy.stream, update.policy.policy)

    def _watch_failed(self, error):
        # NOT_FOUND: the operator removed this process: it leaves.
        self.error = f"policy stream ended: {error}"
        self.log(self.error)
        self.stop.set()

    def report(self, reporters: dict):
        """ReportMeasuredQoc for each window that is due."""
        for key, rep in reporters.items():
            value = rep.due(self.window(None if key == "*" else key))
            if value is None:
                continue
            stream = None if key == "*" else key
            try:
                r = self.client.report_measured(value, stream)
            except self.qc.QocError as e:
                self.log(f"report failed: {e}")
                continue
            action = self.qc.qoc_pb2.LoopAction.Name(r.action).removeprefix("LOOP_ACTION_").lower()
            self.actions[action] = self.actions.get(action, 0) + 1
            self.reports += 1
            self.last_reported[key] = value
            with self.lock:
                self._note_policy(r.policy.stream, r.policy.policy)

    def write_status(self):
        if not self.args.status:
            return
        with self.lock:
            policies = dict(self.policies)
        st = {"name": self.args.name, "role": self.role, "metric": self.metric, "state": self.state,
              "required": self.args.required, "streams": self.args.stream, "policies": policies,
              "measured": {k: w.measured() for k, w in self.windows.items()},
              "overall": {k: w.overall() for k, w in self.windows.items()},
              "samples": {k: w.count for k, w in self.windows.items()},
              "reported": self.last_reported, "reports": self.reports, "actions": self.actions,
              "received": self.receiver.counts() if self.receiver else {},
              "uptime_s": round(time.monotonic() - self.started, 2), "error": self.error, **self.extra()}
        if self.state in ("left", "failed"):  # the last write: the whole timeline
            st["timeline"] = self.timeline.export()
        tmp = self.args.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.replace(tmp, self.args.status)

    def run(self, on_datagram: Callable, reporters: dict, close: Callable = lambda: None) -> int:
        """Receive until SIGTERM (or the policy stream ends), then unregister."""
        self.receiver = UdpReceiver(self.args.ip, self.args.udp_port, on_datagram, self.timeline)
        self.receiver.start()
        code = 0
        try:
            self.register()
            self.state = "running"
            while not self.stop.is_set():
                self.report(reporters)
                self.write_status()
                self.stop.wait(1.0)
        except self.qc.QocError as e:
            self.error = str(e)
            self.log(self.error)
            code = 1
        finally:
            self.state = "leaving"
            try:
                if self.client.token:
                    self.client.unregister()
                    self.log("unregistered")
            except self.qc.QocError as e:
                self.log(f"unregister failed: {e}")
                code = code or 1
            self.receiver.stop()
            close()
            self.state = "left" if code == 0 else "failed"
            self.write_status()
            self.client.close()
        return code


def run_video_process(args: argparse.Namespace, role: str, metric: str, score: Callable) -> int:
    """A decoding analyser on one stream: score(reference, shown, frozen)
    -> (found, expected) on every sampled frame, measured against the
    loss-free decode of args.reference, reported to qocnetd."""
    if len(args.stream) != 1:
        sys.exit(f"{args.name}: a {role} consumes one stream (got {len(args.stream)})")
    if not args.reference:
        sys.exit(f"{args.name}: --reference FILE (the file the sensor streams) is needed to measure QoC")
    t0 = time.monotonic()
    ref = reference_samples(args.reference, args.sample_every)
    proc = Process(args, role, metric)
    proc.log(f"reference: {len(ref)} sampled frames of {args.reference} in {time.monotonic() - t0:.1f} s")
    work: "queue.Queue" = queue.Queue(maxsize=4)
    tally = {"frames": 0, "analysed": 0, "skipped": 0, "frozen": 0}

    def emit(pts, frame, frozen):
        try:
            work.put_nowait((pts, frame, frozen, time.monotonic()))
        except queue.Full:
            tally["skipped"] += 1  # the analysis is behind: this sample is not measured

    matcher = SampleMatcher(ref.keys(), emit)

    def on_frame(pts, frame):
        tally["frames"] += 1
        matcher.feed(pts, frame)

    decoder = LiveDecoder(on_frame)

    def analyse():
        while True:
            item = work.get()
            if item is None:
                return
            pts, frame, frozen, at = item
            found, expected = score(ref[pts], frame, frozen)
            proc.sample(None, found, expected, at)
            tally["analysed"] += 1
            tally["frozen"] += int(frozen)

    worker = threading.Thread(target=analyse, daemon=True)
    worker.start()

    def close():
        decoder.close()
        work.put(None)
        worker.join(30)

    proc.extra = lambda: {"frames": dict(tally, matched=matcher.matched, out_of_order=matcher.out_of_order,
                                         decode_errors=decoder.errors)}
    return proc.run(lambda data, src: decoder.write(data), {"*": Reporter(args.report_every)}, close)


def same(a, b) -> bool:
    """The shown frame is the loss-free one (its analysis is the reference's)."""
    import numpy as np
    return a.shape == b.shape and np.array_equal(a, b)
