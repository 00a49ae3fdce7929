#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The demo's live table and summary (scripts/demo runs it).

Every second: qocnetd's statistics (ControlService.WatchStats: per-process
policy, delivered/dropped datagrams per class, effective quality per
stream), each sensor agent's counters (SensorService.GetSensorStatus: what
its uplink program sent and dropped), the sensors' uplink byte counters
(`ip -s link` in their namespaces) and the processes' status files
(received bytes, measured QoC). Midway it sends SIGTERM to the process named
by --leave. After --duration seconds of streaming (and 2 s without traffic)
it stops every process, waits for them to unregister, prints the summary
and, on the last line, the same as one JSON object.

Bandwidths, from measured counters, integrated second by second over the
seconds in which some process consumes the stream (what a sensor sends while
nobody does is reported apart, as "unconsumed"):
  naive        (Eq. 1) the full stream once per process consuming it
  replication  the full stream once (replicated at the edge, no QoC)
  qocnet       what the sensors sent (their effective quality, Eq. 3/4)
"full" is what the sensor's program saw (sent + dropped), "sent" what it let
onto the uplink; the uplink's interface counter is shown beside it.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import analytics  # noqa: F401  (puts clients/python, package qocnet, on sys.path)
import bandwidth
import windows
import qocnet.client as qc
from qocnet.v1 import control_pb2, control_pb2_grpc, sensor_pb2, sensor_pb2_grpc

CLASSES = ("other", "disp", "diff", "ref")  # FrameClass order


def counts(c) -> tuple[list[int], list[int]]:
    d = list(c.datagrams) + [0] * (4 - len(c.datagrams))
    b = list(c.bytes) + [0] * (4 - len(c.bytes))
    return d[:4], b[:4]


def link_tx_bytes(ns: str, dev: str = "up0") -> int | None:
    r = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", dev], capture_output=True, text=True)
    try:
        return int(json.loads(r.stdout)[0]["stats64"]["tx"]["bytes"])
    except (ValueError, KeyError, IndexError):
        return None


def mbps(nbytes: float, seconds: float) -> float:
    return nbytes * 8 / seconds / 1e6 if seconds > 0 else 0.0


class Monitor:
    def __init__(self, args):
        self.args = args
        self.control = control_pb2_grpc.ControlServiceStub(qc.make_channel(args.control))
        self.sensors = {}
        for spec in args.sensor:
            name, address, ns = spec.split("=", 2)
            self.sensors[name] = {"stub": sensor_pb2_grpc.SensorServiceStub(qc.make_channel(address)), "ns": ns}
        self.update = None
        self.lock = threading.Lock()
        self.watch = self.control.WatchStats(control_pb2.WatchStatsRequest(interval_ms=1000))
        threading.Thread(target=self._watch, daemon=True).start()
        # Integrated bandwidths and per-stream history.
        self.streams: dict[str, dict] = {}
        self.targets: dict[tuple[str, str], dict] = {}   # (process, stream) -> last seen
        self.policy_seen: dict[tuple[str, str], list] = {}  # in order of appearance
        self.effective_seen: dict[str, list] = {}  # in order of appearance
        self.prev = {}
        self.history = []  # (t, stream, full_rate, sent_rate, link_rate, processes)
        self.leave_name, self.leave_at, self.left_at = None, None, None
        self.t0 = time.monotonic()
        if args.leave:
            who, at = args.leave.rsplit("@", 1)
            self.leave_name, self.leave_pidfile = who.split("=", 1)
            self.leave_at = float(at)
        self.plain = args.plain or not sys.stdout.isatty()

    def _watch(self):
        try:
            for u in self.watch:
                with self.lock:
                    self.update = u
        except Exception:  # cancelled at the end
            pass

    def statuses(self) -> dict[str, dict]:
        out = {}
        for f in glob.glob(os.path.join(self.args.status_dir, "*.json")):
            try:
                with open(f) as fh:
                    st = json.load(fh)
            except (OSError, ValueError):
                continue
            if isinstance(st, dict) and "role" in st:
                out[st["name"]] = st
        return out

    def sensor_status(self):
        out = {}
        for name, s in self.sensors.items():
            try:
                r = s["stub"].GetSensorStatus(sensor_pb2.GetSensorStatusRequest(), timeout=2)
            except Exception as e:  # noqa: BLE001 - shown in the table
                out[name] = {"error": str(e)}
                continue
            streams = {}
            for ss in r.streams:
                sent_d, sent_b = counts(ss.sent)
                drop_d, drop_b = counts(ss.dropped)
                streams[qc.stream_text(ss.stream)] = {
                    "policy": short_policy(ss.policy), "sent_bytes": sum(sent_b), "dropped_bytes": sum(drop_b),
                    "sent_datagrams": sum(sent_d), "dropped_datagrams": sum(drop_d)}
            out[name] = {"streams": streams, "link_tx_bytes": link_tx_bytes(s["ns"])}
        return out

    def tick(self, t: float, dt: float):
        with self.lock:
            u = self.update
        sens = self.sensor_status()
        procs_of = {}
        if u is not None:
            for r in u.streams:
                key = qc.stream_text(r.stream.stream)
                procs_of[key] = len(r.targets)
                eff = short_policy(r.effective)
                seen = self.effective_seen.setdefault(key, [])
                if not seen or seen[-1] != eff:
                    seen.append(eff)
                st = self.streams.setdefault(key, self._new_stream())
                st["effective"] = eff
                st["misaligned"] = r.stream.misaligned
                for i, tg in enumerate(r.targets):
                    want = short_policy(r.requirements[i].policy) if i < len(r.requirements) else "?"
                    with self.lock:
                        self.record_target(tg.process, key, want, tg, r.requirements[i].required
                                           if i < len(r.requirements) else 0.0)
                    seen = self.policy_seen.setdefault((tg.process, key), [])
                    if not seen or seen[-1] != want:
                        seen.append(want)
        for name, s in sens.items():
            link = s.get("link_tx_bytes")
            for key, ss in s.get("streams", {}).items():
                st = self.streams.setdefault(key, self._new_stream())
                st["sensor"] = name
                st["sensor_policy"] = ss["policy"]
                full = ss["sent_bytes"] + ss["dropped_bytes"]
                # Counters start at 0 with the sensor agent and the fresh veth.
                p_full, p_sent, p_link = self.prev.get(key, (0, 0, 0))
                d_full, d_sent = full - p_full, ss["sent_bytes"] - p_sent
                d_link = (link - p_link) if link is not None and p_link is not None else 0
                n = procs_of.get(key, st.get("processes", 0))
                st["processes"] = n
                bandwidth.account(st, d_full, d_sent, d_link, n)
                st["full"], st["sent"] = full, ss["sent_bytes"]
                st["full_rate"], st["sent_rate"], st["link_rate"] = (mbps(d_full, dt), mbps(d_sent, dt),
                                                                     mbps(d_link, dt))
                self.history.append((t, key, d_full, d_sent, d_link, n))
                self.prev[key] = (full, ss["sent_bytes"], link)
        return sens

    def record_target(self, process: str, key: str, want: str, tg, required: float, final: bool = False):
        """The edge's counters of one (process, stream); counters only grow, so
        an older snapshot never replaces a newer one. `final`: read when
        nothing more can be delivered to it (the streams had stopped, or the
        edge's own count at the moment the process left)."""
        dd, db = counts(tg.delivered)
        xd, xb = counts(tg.dropped)
        old = self.targets.get((process, key))
        if old and sum(old["delivered"]) + sum(old["dropped"]) > sum(dd) + sum(xd):
            return
        self.targets[(process, key)] = {
            "policy": want, "edge_policy": short_policy(tg.policy), "delivered": dd, "dropped": xd,
            "delivered_bytes": sum(db), "dropped_bytes": sum(xb), "required": required, "final": final}

    def read_targets(self, key: str, final: bool, only: str | None = None) -> set:
        """GetTargetStats of one stream into self.targets; the processes the
        edge listed. Processes that left the stream come with the edge's
        count at the moment they left (`departed`), which is final."""
        r = self.control.GetTargetStats(control_pb2.GetTargetStatsRequest(stream=qc.parse_stream(key)),
                                        timeout=5)
        seen = set()
        for tg, done in [(t, final) for t in r.targets] + [(t, True) for t in getattr(r, "departed", [])]:
            if only is not None and tg.process != only:
                continue
            seen.add(tg.process)
            with self.lock:
                old = self.targets.get((tg.process, key), {})
                self.record_target(tg.process, key, old.get("policy", "?"), tg, old.get("required", 0.0), done)
        return seen

    def follow_leaver(self, streams: list[str], timeout: float = 10.0):
        """While the leaving process unregisters, its counters as often as the
        edge answers: the last reading before the edge forgets it. Only a
        reading after the last datagram the edge delivered to it is its
        count; a poll cannot know that (the summary marks such a count as
        not final and the check fails on it)."""
        end = time.monotonic() + timeout
        keys = [qc.stream_text(qc.parse_stream(s)) for s in streams]
        while time.monotonic() < end:
            present = False
            for key in keys:
                try:
                    present |= self.leave_name in self.read_targets(key, False, self.leave_name)
                except qc.grpc.RpcError:
                    present = True  # no answer: not a sign that it left
            if not present:
                return
            time.sleep(0.005)

    @staticmethod
    def _new_stream():
        return {**bandwidth.new_totals(), "full": 0, "sent": 0,
                "processes": 0, "effective": "?", "sensor": "?", "sensor_policy": "?", "misaligned": 0,
                "full_rate": 0.0, "sent_rate": 0.0, "link_rate": 0.0}

    def render(self, t: float, statuses: dict, recv_rate: dict):
        a = self.args
        lines = [f"qocnet demo   t = {t:5.1f} s of {a.duration:g} s"
                 + (f"   {self.leave_name} leaves at {self.leave_at:g} s" if self.leave_at is not None else "")
                 + (f" (left at {self.left_at:.1f} s)" if self.left_at is not None else ""), ""]
        lines.append(f"{'process':<10} {'stream':<8} {'policy':<19} {'Mbit/s':>6}  "
                     f"{'delivered ref/diff/disp/other':>29}  {'dropped ref/diff/disp/other':>27}  "
                     f"{'QoC':>5} {'req':>5}  metric")
        names = {k: v.get("sensor", "?") for k, v in self.streams.items()}
        for name in sorted(statuses):
            st = statuses[name]
            for s in st["streams"]:
                key = qc.stream_text(qc.parse_stream(s))
                tg = self.targets.get((name, key), {})
                d, x = tg.get("delivered", [0] * 4), tg.get("dropped", [0] * 4)
                m = st["measured"].get(key, st["measured"].get("*"))
                req = st["required"]
                mark = "" if m is None else (" ok" if m >= req else " LOW")
                policy = tg.get("policy") or st["policies"].get(key, "?")
                if st["state"] != "running":
                    policy = st["state"]
                lines.append(f"{name:<10} {names.get(key, key)[:8]:<8} {policy:<19} {recv_rate.get(name, 0):6.2f}  "
                             f"{'/'.join(str(d[i]) for i in (3, 2, 1, 0)):>29}  "
                             f"{'/'.join(str(x[i]) for i in (3, 2, 1, 0)):>27}  "
                             f"{'  -  ' if m is None else f'{m:5.2f}'} {req:5.2f}{mark:4} {st['metric']}")
        lines += ["", f"{'stream':<22} {'sensor':<6} {'effective':<19} {'at sensor':<19} {'procs':>5} "
                      f"{'full Mbit/s':>11} {'link Mbit/s':>11} {'misaligned':>10}"]
        for key in sorted(self.streams):
            s = self.streams[key]
            lines.append(f"{key:<22} {s['sensor']:<6} {s['effective']:<19} {s['sensor_policy']:<19} "
                         f"{s['processes']:>5} {s['full_rate']:11.2f} {s['link_rate']:11.2f} {s['misaligned']:>10}")
        text = "\n".join(lines)
        if self.plain:
            print(text + "\n", flush=True)
        else:
            sys.stdout.write("\033[H\033[J" + text + "\n")
            sys.stdout.flush()

    def stop_processes(self, timeout=20.0):
        pids = {}
        for f in glob.glob(os.path.join(self.args.status_dir, "*.pid")):
            name = os.path.basename(f)[:-4]
            try:
                pids[name] = int(open(f).read())
                os.kill(pids[name], signal.SIGTERM)
            except (OSError, ValueError):
                pass
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.statuses()
            if all(st.get(n, {}).get("state") in ("left", "failed") for n in pids):
                break
            time.sleep(0.2)

    def run(self):
        a = self.args
        t0 = self.t0 = time.monotonic()
        last = t0
        prev_recv = {}
        idle = 0
        if not self.plain:
            sys.stdout.write("\033[2J")
        while True:
            time.sleep(max(0.0, 1.0 - (time.monotonic() - last)))
            now = time.monotonic()
            t, dt = now - t0, now - last
            last = now
            if self.leave_at is not None and self.left_at is None and t >= self.leave_at:
                streams = self.statuses().get(self.leave_name, {}).get("streams", [])
                threading.Thread(target=self.follow_leaver, args=(streams,), daemon=True).start()
                try:
                    os.kill(int(open(self.leave_pidfile).read()), signal.SIGTERM)
                except (OSError, ValueError) as e:
                    print(f"demo_monitor: cannot stop {self.leave_name}: {e}", file=sys.stderr)
                self.left_at = t
            self.tick(t, dt)
            statuses = self.statuses()
            recv_rate = {}
            for name, st in statuses.items():
                b = sum(v["bytes"] for v in st.get("received", {}).values())
                recv_rate[name] = mbps(b - prev_recv.get(name, b), dt)
                prev_recv[name] = b
            if not self.plain or int(t) % 10 == 0:
                self.render(t, statuses, recv_rate)
            moving = any(s["full_rate"] > 0 for s in self.streams.values())
            idle = 0 if moving else idle + 1
            if t >= a.duration and idle >= 2:
                break
            if t >= a.duration + 30:
                print("demo_monitor: the streams did not stop 30 s after the end", file=sys.stderr)
                break
        streaming = t - 2
        # The streams are quiet: every count the edge holds now is final.
        for key in list(self.streams):
            try:
                self.read_targets(key, True)
            except qc.grpc.RpcError as e:
                print(f"demo_monitor: final counters of {key}: {e.code().name}", file=sys.stderr)
        self.stop_processes()
        self.watch.cancel()
        return self.summary(self.statuses(), streaming)

    def phase_rates(self, key: str, lo: float, hi: float):
        rows = [h for h in self.history if h[1] == key and lo <= h[0] < hi]
        if not rows:
            return None
        full = sum(r[2] for r in rows)
        sent = sum(r[3] for r in rows)
        link = sum(r[4] for r in rows)
        span = len(rows)  # one row per second
        return {"seconds": span, "full_mbps": round(mbps(full, span), 3), "sent_mbps": round(mbps(sent, span), 3),
                "link_mbps": round(mbps(link, span), 3),
                "sent_share": round(sent / full, 4) if full else None}

    def summary(self, statuses: dict, streaming: float) -> dict:
        tot = {k: sum(s[k] for s in self.streams.values()) for k in bandwidth.KEYS}
        out = {"duration_s": round(streaming, 1), "left": self.leave_name, "left_at_s": self.left_at,
               "bandwidth": {
                   "naive_bytes": tot["naive"], "replication_bytes": tot["replication"],
                   "qocnet_bytes": tot["qocnet"], "link_bytes": tot["link"],
                   "unconsumed_bytes": tot["unconsumed"], "unconsumed_link_bytes": tot["unconsumed_link"],
                   "naive_mbps": round(mbps(tot["naive"], streaming), 3),
                   "replication_mbps": round(mbps(tot["replication"], streaming), 3),
                   "qocnet_mbps": round(mbps(tot["qocnet"], streaming), 3),
                   "reduction_vs_naive": round(1 - tot["qocnet"] / tot["naive"], 4) if tot["naive"] else None,
                   "reduction_vs_replication": (round(1 - tot["qocnet"] / tot["replication"], 4)
                                                if tot["replication"] else None)},
               "streams": {}, "processes": {}}
        for key, s in sorted(self.streams.items()):
            e = {k: s[k] for k in ("sensor", "naive", "replication", "qocnet", "link", "unconsumed",
                                   "unconsumed_link", "misaligned")}
            e["effective_seen"] = self.effective_seen.get(key, [])
            if self.left_at is not None:
                e["before_leave"] = self.phase_rates(key, max(0.0, self.left_at - 20), self.left_at)
                e["after_leave"] = self.phase_rates(key, self.left_at + 3, streaming)
            out["streams"][key] = e
        for name, st in sorted(statuses.items()):
            for s in st["streams"]:
                key = qc.stream_text(qc.parse_stream(s))
                tg = self.targets.get((name, key), {})
                overall = st["overall"].get(key, st["overall"].get("*"))
                src = key.split("->")[0]
                recv = st.get("received", {}).get(src, {"datagrams": 0, "bytes": 0})
                delivered = sum(tg.get("delivered", [0] * 4))
                dropped_b = tg.get("dropped_bytes", 0)
                deliv_b = tg.get("delivered_bytes", 0)
                seen = self.policy_seen.get((name, key), [])
                end = streaming if name != self.leave_name or self.left_at is None else self.left_at
                tl = st.get("timeline") or {}
                w = windows.figures((tl.get("qoc") or {}).get(key, []), (tl.get("rx") or {}).get(src, []),
                                    (tl.get("policy") or {}).get(key, []), self.t0, self.t0 + end,
                                    st["required"], warmup=self.args.warmup, window=self.args.window,
                                    step=tl.get("step", 0.1)) if tl else None
                out["processes"][f"{name} {key}"] = {
                    "process": name, "stream": key, "role": st["role"], "metric": st["metric"],
                    "required": st["required"], "measured": overall,
                    "met": None if overall is None else bool(overall >= st["required"]),
                    "samples": st["samples"].get(key, st["samples"].get("*", 0)),
                    "policies_seen": seen,
                    "max_drop": max([_drop_of(p) for p in seen] or [0.0]),
                    "delivered_datagrams": delivered, "received_datagrams": recv["datagrams"],
                    "delivered_final": bool(tg.get("final")),
                    "share_windows_met": None if w is None else w["share_met"],
                    "bandwidth_over_least": None if w is None else w["over_least"],
                    "windows": w,
                    "edge_dropped_share": round(dropped_b / (dropped_b + deliv_b), 4) if dropped_b + deliv_b else 0,
                    "state": st["state"], "reports": st["reports"], "actions": st["actions"],
                    "continuity": st.get("continuity", {}).get(key), "frames": st.get("frames")}
        return out


def short_policy(policy) -> str:
    """keep, frame_aware(0.33), frame_aware(0.33,tail): the drop rate to two
    decimals, the drop order kept."""
    text = qc.policy_text(policy)
    if "(" not in text:
        return text
    rest = text.split("(", 1)[1].rstrip(")")
    order = rest.split(",", 1)[1] if "," in rest else ""
    return f"{text.split('(')[0]}({policy.drop:.2f}{',' + order if order else ''})"


def policy_path(seen: list) -> str:
    """The policies a process had, in order, shortened when long."""
    if len(seen) <= 3:
        return " -> ".join(seen) or "?"
    return f"{seen[0]} -> ... -> {seen[-1]} ({len(seen) - 1} changes)"


def _drop_of(policy: str) -> float:
    if "(" not in policy:
        return 0.0
    try:
        return float(policy.split("(")[1].rstrip(")"))
    except ValueError:
        return math.nan


def print_summary(r: dict):
    b = r["bandwidth"]
    mb = 1e6
    print("\nqocnet demo: summary")
    print(f"  streamed {r['duration_s']:.0f} s; {r['left']} left at {r['left_at_s'] or 0:.0f} s")
    print("  bandwidth on the sensor links, measured:")
    print(f"    naive (Eq. 1, every process its own stream) {b['naive_bytes'] / mb:8.2f} MB  {b['naive_mbps']:6.2f} Mbit/s")
    print(f"    in-network replication (one full stream)    {b['replication_bytes'] / mb:8.2f} MB  "
          f"{b['replication_mbps']:6.2f} Mbit/s")
    print(f"    qocnet (effective quality at the sensor)    {b['qocnet_bytes'] / mb:8.2f} MB  {b['qocnet_mbps']:6.2f} Mbit/s"
          f"   (uplink counters {b['link_bytes'] / mb:.2f} MB)")
    if b.get("unconsumed_bytes"):
        print(f"    sent while no process consumed the stream   {b['unconsumed_bytes'] / mb:8.2f} MB  (in none of the above)")
    if b["reduction_vs_naive"] is not None:
        print(f"    reduction (Eq. 4): {100 * b['reduction_vs_naive']:.1f} % of naive, "
              f"{100 * b['reduction_vs_replication']:.1f} % of replication")
    for key, s in r["streams"].items():
        line = (f"  {s['sensor']} {key}: effective {policy_path(s['effective_seen'])}; "
                f"misaligned datagrams {s['misaligned']}")
        print(line)
        bl, al = s.get("before_leave"), s.get("after_leave")
        if bl and al:
            print(f"    before {r['left']} left: link {bl['link_mbps']:.2f} Mbit/s, sensor sent {100 * (bl['sent_share'] or 0):.0f} %"
                  f" of the stream; after: {al['link_mbps']:.2f} Mbit/s, {100 * (al['sent_share'] or 0):.0f} %")
    print("  processes:")
    for p in r["processes"].values():
        m = "  -  " if p["measured"] is None else f"{p['measured']:.3f}"
        verdict = "no samples" if p["met"] is None else ("met" if p["met"] else "NOT met")
        final = "" if p.get("delivered_final") else " (not final)"
        print(f"    {p['process']:<9} {p['stream']:<22} {p['metric']:<19} {m} vs {p['required']:.2f}: {verdict:<10}"
              f" received {p['received_datagrams']}/{p['delivered_datagrams']}{final} datagrams, edge dropped "
              f"{100 * p['edge_dropped_share']:.1f} % of bytes, policy {policy_path(p['policies_seen'])}")
        print(f"              {window_text(p.get('windows'))}")


def window_text(w) -> str:
    """The per-window figures of one summary row."""
    if not w:
        return "windows: none logged"
    if not w["windows"]:
        return f"windows: none complete after the {w['warmup_s']:g} s warm-up"
    met = (f"QoC met in {w['met']}/{w['measured']} {w['window_s']:g}-s windows"
           f" ({100 * w['share_met']:.0f} %)" if w["measured"] else "no window measured a QoC")
    if w["measured"] < w["windows"]:
        met += f", {w['windows'] - w['measured']} without samples"
    if w["over_least"] is None:
        least = f"bandwidth over the least: n/a ({w['least_reason']})"
    elif w["least_drop"] == 0 and w["least_reason"]:
        least = "bandwidth over the least: 0 % (keep)"
    else:
        least = (f"bandwidth over the least: {100 * w['over_least']:+.1f} % ({w['mean_mbps']:.3f} Mbit/s; "
                 f"least {w['least_mbps']:.3f} Mbit/s at drop {w['least_drop']:.2f})")
    return f"{met}; {least}"


def wait_ready(address: str, timeout: float = 60.0) -> int:
    """qocnetd opens its socket before its datapath is compiled and answers
    UNAVAILABLE meanwhile: wait for a GetStatus that succeeds."""
    stub = control_pb2_grpc.ControlServiceStub(qc.make_channel(address))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            stub.GetStatus(control_pb2.GetStatusRequest(), timeout=2)
            return 0
        except qc.grpc.RpcError as e:
            if e.code() not in (qc.grpc.StatusCode.UNAVAILABLE, qc.grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"demo: qocnetd: {e.code().name}: {e.details()}", file=sys.stderr)
                return 1
        time.sleep(0.2)
    print(f"demo: qocnetd did not serve within {timeout:g} s", file=sys.stderr)
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--control", required=True, help="qocnetd's address")
    ap.add_argument("--wait-ready", action="store_true", help="only wait (60 s) until qocnetd serves")
    ap.add_argument("--sensor", action="append", default=[], help="NAME=ADDRESS=NETNS (repeatable)")
    ap.add_argument("--status-dir", required=False, help="where the processes write NAME.json and NAME.pid")
    ap.add_argument("--duration", type=float, default=0, help="seconds the sensors stream")
    ap.add_argument("--leave", help="NAME=PIDFILE@SECONDS: stop this process at that time")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds of streaming before the summary's windows start (default %(default)s)")
    ap.add_argument("--window", type=float, default=5.0, help="the summary's window, seconds (default %(default)s)")
    ap.add_argument("--plain", action="store_true", help="print a snapshot every 10 s instead of a live table")
    ap.add_argument("--json", help="also write the summary here")
    args, rest = ap.parse_known_args()
    if args.wait_ready:
        return wait_ready(args.control)
    args = ap.parse_args()
    mon = Monitor(args)
    r = mon.run()
    print_summary(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    print(json.dumps(r, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
