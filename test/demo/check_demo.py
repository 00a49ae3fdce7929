# SPDX-License-Identifier: Apache-2.0
"""The short demo end to end (root): scripts/demo --short --no-build with a
given build directory, then checks of its last line, the summary as JSON:

* every process received exactly what the edge delivered to it, compared
  with the edge's final count (read after the streams stopped, or the count
  the edge kept when the process left): equal, not close; a count that is
  not final (a poll before the process left) fails, as it proves nothing;
  and the edge dropped no more of its bytes than its policies allow;
* the process that needs everything (keep) lost nothing: no bytes dropped
  at the edge, no continuity gap in what it recorded;
* the bandwidth figures add up: per-stream sums are the totals, naive >=
  replication >= qocnet, Eq. 4's reduction is 1 - qocnet / naive, and the
  sensors' uplink counters agree with what their programs sent;
* when the strictest process left, the sensor sent less of its stream;
* no datagram mixed two frames (ffmpeg -flush_packets 1), every analysing
  process measured its QoC;
* each process's window figures are there and follow from its windows: the
  share of windows whose QoC met the requirement, and the bandwidth over
  the least (recomputed here from the windows the summary lists; 0 for
  keep). Their values are not judged.

  sudo /usr/bin/python3 test/demo/check_demo.py --build build
Exit 77 (skipped) without root, unless $CI is set: then it fails.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="build directory with qocnetd, qocnet-sensor, Python stubs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            print("check_demo: FAILED: not root under CI (the demo needs BPF and namespaces)")
            return 1
        print("check_demo: SKIPPED: needs root (BPF programs, network namespaces)")
        return 77
    env = dict(os.environ, QOCNET_BUILD_DIR=os.path.abspath(args.build), QOCNET_DEMO_PLAIN="1")
    r = subprocess.run([os.path.join(ROOT, "scripts", "demo"), "--short", "--no-build"], env=env,
                       capture_output=True, text=True, timeout=540)
    sys.stdout.write(r.stdout[-6000:])
    sys.stderr.write(r.stderr[-4000:])
    if r.returncode != 0:
        print(f"check_demo: FAILED: scripts/demo --short exited {r.returncode}")
        return 1
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    try:
        s = json.loads(lines[-1])
    except (IndexError, ValueError) as e:
        print(f"check_demo: FAILED: the last line is not the summary's JSON: {e}")
        return 1
    failures = check(s)
    for f in failures:
        print(f"check_demo: FAILED: {f}")
    if not failures:
        print("check_demo: ok")
    return 1 if failures else 0


def close(a, b, rel=1e-3, absolute=1.0):
    return abs(a - b) <= max(absolute, rel * max(abs(a), abs(b)))


def check(s: dict) -> list:
    bad = []
    b = s["bandwidth"]
    streams, procs = s["streams"], s["processes"]
    if not streams or not procs:
        return ["no streams or no processes in the summary"]
    for k in ("naive", "replication", "qocnet", "link"):
        total = sum(v[k] for v in streams.values())
        if not close(total, b[f"{k}_bytes"]):
            bad.append(f"{k}: streams sum to {total}, total says {b[k + '_bytes']}")
    if not (b["naive_bytes"] >= b["replication_bytes"] >= b["qocnet_bytes"] > 0):
        bad.append(f"expected naive >= replication >= qocnet > 0: {b}")
    if not close(b["reduction_vs_naive"], 1 - b["qocnet_bytes"] / b["naive_bytes"], absolute=1e-3):
        bad.append(f"reduction {b['reduction_vs_naive']} is not 1 - qocnet/naive")
    if not close(b["link_bytes"], b["qocnet_bytes"], rel=0.02, absolute=5000):
        bad.append(f"uplink counters {b['link_bytes']} B disagree with the sensors' programs "
                   f"({b['qocnet_bytes']} B sent)")
    for key, st in streams.items():
        if st["misaligned"]:
            bad.append(f"{key}: {st['misaligned']} datagrams mixed two frames")
        bl, al = st.get("before_leave"), st.get("after_leave")
        if s["left"] and bl and al and bl["sent_share"] is not None and al["sent_share"] is not None:
            if al["sent_share"] > bl["sent_share"] - 0.05:
                bad.append(f"{key}: the sensor sent {al['sent_share']:.2f} of the stream after "
                           f"{s['left']} left, {bl['sent_share']:.2f} before: no drop")
    for name, p in procs.items():
        d, r = p["delivered_datagrams"], p["received_datagrams"]
        if d == 0:
            bad.append(f"{name}: the edge delivered nothing")
        if not p.get("delivered_final"):
            bad.append(f"{name}: the edge's count {d} is a reading taken while it could still deliver "
                       f"(received {r}): not its final count, so nothing to compare exactly (the edge "
                       f"gave no final count of it: GetTargetStatsResponse.departed, docs/DEMO.md Accounting)")
        elif d != r:
            bad.append(f"{name}: received {r} datagrams, the edge delivered {d}")
        bad += check_windows(name, p)
        if p["edge_dropped_share"] > p["max_drop"] + 0.05:
            bad.append(f"{name}: the edge dropped {p['edge_dropped_share']:.3f} of its bytes, "
                       f"its policies allow {p['max_drop']}")
        if p["policies_seen"] == ["keep"]:
            if p["edge_dropped_share"] != 0:
                bad.append(f"{name}: keep, yet the edge dropped {p['edge_dropped_share']}")
            c = p.get("continuity")
            if c is not None and c["missing"]:
                bad.append(f"{name}: keep, yet {c['missing']} TS packets are missing ({c['gaps']} gaps)")
        if p["state"] != "left":
            bad.append(f"{name}: ended '{p['state']}', not unregistered")
        if p["measured"] is None or not p["samples"]:
            bad.append(f"{name}: measured no QoC")
    return bad


def check_windows(name: str, p: dict) -> list:
    """The window figures are present and follow from the listed windows."""
    w = p.get("windows")
    if not w:
        return [f"{name}: no window figures (the process logged no timeline)"]
    bad = []
    wins = w["list"]
    if not wins:
        return [f"{name}: no complete window after the {w['warmup_s']} s warm-up"]
    measured = [x for x in wins if x["qoc"] is not None]
    if not measured:
        bad.append(f"{name}: no window measured a QoC")
    met = sum(1 for x in measured if x["qoc"] >= p["required"] - 1e-9)
    if (w["measured"], w["met"]) != (len(measured), met):
        bad.append(f"{name}: {w['met']}/{w['measured']} windows met, the list says {met}/{len(measured)}")
    share = round(met / len(measured), 4) if measured else None
    if p.get("share_windows_met") != share:
        bad.append(f"{name}: share of windows met {p.get('share_windows_met')}, the windows give {share}")
    if sum(x["bytes"] for x in wins) <= 0:
        bad.append(f"{name}: no bytes in its windows")
    over = p.get("bandwidth_over_least")
    if p["required"] >= 1.0:
        if over != 0.0:
            bad.append(f"{name}: keep, yet the bandwidth over the least is {over}, not 0")
        return bad
    mean = sum(x["bytes"] for x in wins) * 8 / (w["window_s"] * len(wins)) / 1e6
    groups = {}
    for x in wins:
        groups.setdefault(x["drop"], []).append(x)
    ok = []
    for d, g in groups.items():
        q = [x["qoc"] for x in g if x["qoc"] is not None]
        if q and sum(q) / len(q) >= p["required"] - 1e-9:
            ok.append(d)
    if not ok:
        if over is not None:
            bad.append(f"{name}: no drop rate met the requirement on average, yet over the least is {over}")
        elif not w.get("least_reason"):
            bad.append(f"{name}: no bandwidth over the least and no reason given")
        return bad
    least = sum(x["bytes"] for x in groups[max(ok)]) * 8 / (w["window_s"] * len(groups[max(ok)])) / 1e6
    if w["least_drop"] != max(ok):
        bad.append(f"{name}: least drop rate {w['least_drop']}, the windows give {max(ok)}")
    expect = None if least <= 0 else mean / least - 1
    if expect is None or over is None or abs(over - expect) > 1e-3:
        bad.append(f"{name}: bandwidth over the least {over}, the windows give {expect}")
    return bad


if __name__ == "__main__":
    sys.exit(main())
