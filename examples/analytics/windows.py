# SPDX-License-Identifier: Apache-2.0
"""The demo summary's per-process figures over fixed windows (docs/DEMO.md,
"Windows"): the share of 5-second windows after a warm-up in which the
process's measured QoC was at or above its requirement, and its mean
delivered bandwidth over the least bandwidth that met the requirement in
the same run.

Input is what the process logged (analytics.Timeline): its QoC samples
(found, expected) and the bytes it received, each summed in 0.1 s buckets
of CLOCK_MONOTONIC, and its policy changes with their times. No I/O here:
unit-tested in test/demo/test_analytics.py.
"""
from __future__ import annotations

import math
from typing import Optional

EPS = 1e-9


def _policy_over(log: list, lo: float, hi: float) -> tuple[float, str]:
    """The policy in effect for the largest part of [lo, hi): (drop, text).
    `log` is [(t, drop, text)] in time order; before its first entry the
    first entry holds (a process's first policy comes with its
    registration, before any data)."""
    if not log:
        return 0.0, "?"
    share: dict[tuple[float, str], float] = {}
    for i, (t, drop, text) in enumerate(log):
        start = lo if i == 0 else max(lo, t)
        end = hi if i + 1 == len(log) else min(hi, log[i + 1][0])
        if end > start:
            key = (drop, text)
            share[key] = share.get(key, 0.0) + (end - start)
    if not share:  # every change came after hi: the last one before it holds
        before = [e for e in log if e[0] < hi] or log[:1]
        return before[-1][1], before[-1][2]
    return max(share.items(), key=lambda kv: kv[1])[0]


def figures(qoc: list, rx: list, policy: list, start: float, end: float, required: float,
            lossless: float = 1.0, warmup: float = 10.0, window: float = 5.0,
            step: float = 0.1) -> dict:
    """The window figures of one (process, stream).

    qoc:    [[bucket, found, expected]]  (bucket = floor(t / step))
    rx:     [[bucket, datagrams, bytes]]
    policy: [[t, drop, text]]
    start:  when streaming began (monotonic s); windows are
            [start + warmup + i * window, ... + window), whole ones ending
            by `end` (the end of streaming, or when the process left).

    A window's QoC is sum(found) / sum(expected) of its samples (capped at
    `lossless`), as the process measures; a window without samples is
    unmeasured and counts for neither side of the share. The least
    bandwidth: windows grouped by the drop rate applied to the process (the
    policy in effect for most of the window, two decimals); of the groups
    whose mean window QoC meets the requirement, the one with the largest
    drop rate; its mean delivered bandwidth. A keep process (requirement at
    the loss-free value) needs everything: its bandwidth over the least is
    0 by definition."""
    n = max(0, int(math.floor((end - start - warmup) / window + EPS)))
    wins = []
    for i in range(n):
        lo = start + warmup + i * window
        wins.append({"start_s": round(warmup + i * window, 3), "found": 0.0, "expected": 0.0, "bytes": 0,
                     "datagrams": 0, "lo": lo, "hi": lo + window})

    def index(bucket: int) -> Optional[int]:
        t = bucket * step
        i = int(math.floor((t - start - warmup) / window + EPS))
        return i if 0 <= i < n else None

    for b, found, expected in qoc:
        i = index(b)
        if i is not None:
            wins[i]["found"] += min(found, expected)
            wins[i]["expected"] += expected
    for b, dg, nbytes in rx:
        i = index(b)
        if i is not None:
            wins[i]["datagrams"] += dg
            wins[i]["bytes"] += nbytes
    for w in wins:
        w["qoc"] = None if w["expected"] <= 0 else round(min(lossless, w["found"] / w["expected"]), 4)
        w["mbps"] = round(w["bytes"] * 8 / window / 1e6, 4)
        w["drop"], w["policy"] = _policy_over(policy, w.pop("lo"), w.pop("hi"))
        w["drop"] = round(w["drop"], 2)
        w["met"] = None if w["qoc"] is None else bool(w["qoc"] >= required - EPS)
    measured = [w for w in wins if w["qoc"] is not None]
    met = sum(1 for w in measured if w["met"])
    out = {"warmup_s": warmup, "window_s": window, "windows": len(wins), "measured": len(measured),
           "met": met, "share_met": round(met / len(measured), 4) if measured else None,
           "mean_mbps": round(sum(w["bytes"] for w in wins) * 8 / (window * len(wins)) / 1e6, 4) if wins else None}
    groups = {}
    for w in wins:
        g = groups.setdefault(w["drop"], {"drop": w["drop"], "windows": 0, "qocs": [], "bytes": 0})
        g["windows"] += 1
        g["bytes"] += w["bytes"]
        if w["qoc"] is not None:
            g["qocs"].append(w["qoc"])
    glist, raw = [], {}
    for d in sorted(groups):
        g = groups[d]
        raw[d] = g["bytes"] * 8 / (window * g["windows"]) / 1e6
        glist.append({"drop": d, "windows": g["windows"], "measured": len(g["qocs"]),
                      "mean_qoc": round(sum(g["qocs"]) / len(g["qocs"]), 4) if g["qocs"] else None,
                      "mbps": round(raw[d], 4)})
    out["groups"] = glist
    keep = required >= lossless - EPS
    ok = [g for g in glist if g["mean_qoc"] is not None and g["mean_qoc"] >= required - EPS]
    if keep:
        out.update(least_drop=0.0, least_mbps=out["mean_mbps"], over_least=0.0 if wins else None,
                   least_reason="keep: the requirement is the loss-free value, the least is everything")
    elif not ok:
        out.update(least_drop=None, least_mbps=None, over_least=None,
                   least_reason="no drop rate's windows met the requirement on average")
    else:
        best = max(ok, key=lambda g: g["drop"])
        mean = sum(w["bytes"] for w in wins) * 8 / (window * len(wins)) / 1e6
        over = None if not raw[best["drop"]] else round(mean / raw[best["drop"]] - 1, 4)
        out.update(least_drop=best["drop"], least_mbps=best["mbps"], over_least=over,
                   least_reason=None if over is not None else "nothing was delivered at that drop rate")
    out["list"] = wins
    return out
