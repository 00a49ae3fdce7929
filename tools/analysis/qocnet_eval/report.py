# SPDX-License-Identifier: Apache-2.0
"""CSV, plots and docs/EVALUATION.md from the evaluation's per-run rows."""
from __future__ import annotations

import csv
import math
import os
import statistics
from collections import defaultdict

import numpy as np

POLICIES = ["uniform", "differential", "frame_aware"]
# frame_aware's drop orders besides `disp` first (plain "frame_aware(p)"):
# "frame_aware(p,tail)" runs are kept as policy "frame_aware/tail".
ORDERS = ["tail", "thin"]
COLORS = {"uniform": "tab:red", "differential": "tab:blue", "frame_aware": "tab:green",
          "frame_aware/tail": "tab:purple", "frame_aware/thin": "tab:orange", "bound": "black"}
TABLE_LOSSES = [0.005, 0.01, 0.02, 0.05]
PAPER_TABLE1 = {"uniform": [0.95, 0.84, 0.46, 0.10], "differential": [0.99, 0.96, 0.74, 0.40]}
PSNR_CAP = 99.0  # stands for +inf (every frame identical) in interpolation
METRICS = ["psnr", "hog_recall", "sift_share"]
FIELDS = ["clip", "cut", "policy", "p", "run", "bandwidth", "mbps", "datagram_loss", "partial",
          "frames", "frames_lost", "frames_identical", "mse", "psnr", "hog_boxes", "hog_recall",
          "sift_features", "sift_share", "sampled_frames", "digest"]


def policy_kinds(keys):
    """The policies present (rows' or aggregate keys' policy names), in the
    page's order: uniform, differential, frame_aware, then its orders."""
    present = set(keys)
    order = POLICIES + [f"frame_aware/{o}" for o in ORDERS]
    return [k for k in order if k in present] + sorted(present - set(order) - {"keep"})


def fa_kinds(keys):
    """frame_aware and its orders, as present."""
    return [k for k in policy_kinds(keys) if k.split("/")[0] == "frame_aware"]


BOUND_FIELDS = ["clip", "at", "bandwidth", "mse", "psnr", "hog_recall", "sift_share", "frames_lost",
                "dropped_I", "dropped_P", "dropped_B"]
GAP_FIELDS = ["clip", "policy", "p", "bandwidth", "bound_bandwidth"] + [
    x for m in METRICS for x in (m, "bound_" + m, "gap_" + m)]


def _num(v):
    return v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else None


def _mean_sd(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None
    if any(math.isinf(v) for v in vals):
        return math.inf, 0.0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate(rows):
    """(clip, cut, policy, p) -> {n, bandwidth, mbps, <metric>: (mean, sd)}."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["clip"], r["cut"], r["policy"], r["p"])].append(r)
    agg = {}
    for k, rs in groups.items():
        a = {"n": len(rs)}
        for m in ["bandwidth", "mbps", "datagram_loss", "partial", "frames_lost"] + METRICS:
            a[m] = _mean_sd([_num(r.get(m)) for r in rs])
        agg[k] = a
    return agg


def curve(agg, clip, cut, policy, metric):
    """[(bandwidth, mean, sd)] sorted by bandwidth, with keep at (1, lossless)."""
    pts = []
    for (c, k, pol, p), a in agg.items():
        if c != clip or k != cut or pol not in (policy, "keep") or a[metric][0] is None:
            continue
        pts.append((a["bandwidth"][0], a[metric][0], a[metric][1]))
    return sorted(pts)


def at_bandwidth(pts, b):
    if not pts:
        return None
    xs = [p[0] for p in pts]
    ys = [min(p[1], PSNR_CAP) for p in pts]
    # A point at most 0.03 beyond the measured range takes the nearest end
    # (drop rates are met within about that).
    if b < xs[0] - 0.03 or b > xs[-1] + 0.03:
        return None
    return float(np.interp(b, xs, ys))


def bandwidth_for(pts, level):
    """(b, bounded): the lowest bandwidth b from which the curve stays >=
    level up to full bandwidth (linear between points); bounded is False
    when even the lowest measured point meets it (the true b is lower).
    (None, True) if not even full bandwidth meets it."""
    pts = sorted(pts, reverse=True)
    if not pts or min(pts[0][1], PSNR_CAP) < level:
        return None, True
    prev = pts[0]
    for x, y, _ in pts[1:]:
        y = min(y, PSNR_CAP)
        if y < level:
            px, py = prev[0], min(prev[1], PSNR_CAP)
            return x + (px - x) * (level - y) / (py - y), True
        prev = (x, y, 0)
    return pts[-1][0], False


def fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{nd}f}"


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("inf" if isinstance(r.get(k), float) and math.isinf(r[k]) else r.get(k, ""))
                        for k in fields})


def plots(agg, out, clips, bound=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = policy_kinds(k[2] for k in agg)

    def draw(ax, clip, metric, title, ylabel):
        b = (bound or {}).get(clip)
        if b:
            # As the policies' curves: up to just below full bandwidth (PSNR is infinite there).
            pts = sorted((p["bandwidth"], p[metric]) for p in b["points"]
                         if p.get(metric) is not None and p["bandwidth"] < 0.9999)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, [min(y, PSNR_CAP) for y in ys], "-", lw=1.2, color=COLORS["bound"],
                        label="offline bound (frame-aligned)")
        for pol in kinds:
            for cut, style in (("aligned", "-"), ("every7", "--")):
                pts = [p for p in curve(agg, clip, cut, pol, metric) if p[0] < 0.9999]
                if not pts:
                    continue
                xs, ys, sd = zip(*pts)
                ax.errorbar(xs, ys, yerr=sd, fmt=style + "o", ms=3, capsize=2, color=COLORS.get(pol, "gray"),
                            alpha=1.0 if cut == "aligned" else 0.6,
                            label=f"{pol} ({'frame-aligned' if cut == 'aligned' else '7-packet'})")
        ax.set_title(title)
        ax.set_xlabel("delivered bandwidth (fraction of the full stream)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)

    fig, axes = plt.subplots(1, len(clips), figsize=(6 * len(clips), 4.5))
    for ax, clip in zip(np.atleast_1d(axes), clips):
        draw(ax, clip, "psnr", f"Fig. 3 — PSNR vs bandwidth, {clip}", "PSNR (dB, mean luma MSE)")
        ax.axhline(25, color="gray", lw=0.8, ls=":")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fig3_psnr_vs_bandwidth.png"), dpi=110)
    plt.close(fig)

    panels = [("vtest", "hog_recall", "HOG people recall"), ("vtest", "sift_share", "SIFT share"),
              ("box", "sift_share", "SIFT share")]
    panels = [p for p in panels if p[0] in clips]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    for ax, (clip, m, label) in zip(np.atleast_1d(axes), panels):
        draw(ax, clip, m, f"Fig. 4 — {label} vs bandwidth, {clip}", label)
        ax.set_ylim(0, 1.05)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fig4_detection_vs_bandwidth.png"), dpi=110)
    plt.close(fig)


def targets(agg, kind="frame_aware"):
    """The issue's targets for frame_aware or one of its orders (frame-aligned)."""
    T = []

    def c(clip, m):
        return curve(agg, clip, "aligned", kind, m)

    def at5(clip, m):
        a = agg.get((clip, "aligned", kind, 0.05))
        return a[m][0] if a else None

    for clip, m, level, what in [("vtest", "psnr", 25, "PSNR at 0.76 of full bandwidth ≥ 25 dB"),
                                 ("vtest", "hog_recall", 0.85, "HOG recall at 0.76 ≥ 0.85"),
                                 ("vtest", "sift_share", 0.90, "SIFT share at 0.76 ≥ 0.90"),
                                 ("box", "psnr", 29, "PSNR at 0.76 ≥ 29 dB"),
                                 ("box", "sift_share", 0.85, "SIFT share at 0.76 ≥ 0.85")]:
        v = at_bandwidth(c(clip, m), 0.76)
        T.append((clip, what, v, None if v is None else v >= level))
    for clip, limit in [("vtest", 0.75), ("box", 0.60)]:
        v, bounded = bandwidth_for(c(clip, "psnr"), 25)
        ok = None if v is None else (v <= limit if bounded or v <= limit else None)
        T.append((clip, f"25 dB at ≤ {limit:.2f} of full bandwidth", v, ok))
    for clip, m, what in [("vtest", "hog_recall", "HOG recall at 5 % loss ≥ 0.97"),
                          ("vtest", "sift_share", "SIFT share at 5 % loss ≥ 0.97"),
                          ("box", "sift_share", "SIFT share at 5 % loss ≥ 0.97")]:
        v = at5(clip, m)
        T.append((clip, what, v, None if v is None else v >= 0.97))
    return T


def gaps(agg, bound):
    """Bound minus online at every frame-aligned point of frame_aware and its
    orders: the bound measured at the point's own delivered bandwidth."""
    from . import bound as bnd
    out = []
    kinds = fa_kinds(k[2] for k in agg)
    clips = [c for c in ("vtest", "box") if c in (bound or {})] + sorted(set(bound or {}) - {"vtest", "box"})
    for (clip, cut, pol, p), a in sorted(agg.items(), key=lambda kv: (
            clips.index(kv[0][0]) if kv[0][0] in clips else 99, kinds.index(kv[0][2]) if kv[0][2] in kinds else 99,
            kv[0][3])):
        if cut != "aligned" or pol not in kinds or clip not in (bound or {}):
            continue
        bw = a["bandwidth"][0]
        bp = bnd.at(bound[clip], bw)
        d = {"clip": clip, "policy": pol, "p": p, "bandwidth": bw,
             "bound_bandwidth": None if bp is None else bp["bandwidth"]}
        for m in METRICS:
            on = a[m][0]
            bv = None if bp is None else bp.get(m)
            d[m] = on
            d["bound_" + m] = bv
            if on is None or bv is None:
                d["gap_" + m] = None
            else:
                d["gap_" + m] = min(bv, PSNR_CAP) - min(on, PSNR_CAP) if m == "psnr" else bv - on
        out.append(d)
    return out


def write_all(rows, meta, out, doc, info, bound=None):
    os.makedirs(out, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["clip"], r["cut"], r["policy"], r["p"], r["run"]))
    write_csv(os.path.join(out, "runs.csv"), rows, FIELDS)
    agg = aggregate(rows)
    flat = []
    for (clip, cut, pol, p), a in sorted(agg.items()):
        d = {"clip": clip, "cut": cut, "policy": pol, "p": p, "runs": a["n"]}
        for m in ["bandwidth", "mbps", "datagram_loss", "frames_lost"] + METRICS:
            d[m], d[m + "_sd"] = a[m]
        flat.append(d)
    cols = ["clip", "cut", "policy", "p", "runs"] + [x for m in ["bandwidth", "mbps", "datagram_loss",
                                                                  "frames_lost"] + METRICS
                                                     for x in (m, m + "_sd")]
    write_csv(os.path.join(out, "curves.csv"), flat, cols)
    t1 = [d for d in flat if d["cut"] == "aligned" and d["p"] in TABLE_LOSSES]
    write_csv(os.path.join(out, "table1.csv"), t1, cols)
    clips = sorted({r["clip"] for r in rows}, key=lambda c: ["vtest", "box"].index(c) if c in ("vtest", "box") else 9)
    plots(agg, out, clips, bound)
    kinds = fa_kinds(k[2] for k in agg) or ["frame_aware"]
    tg = {k: targets(agg, k) for k in kinds}
    with open(os.path.join(out, "targets.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "target", "policy", "measured", "met"])
        for k in kinds:
            for clip, what, v, ok in tg[k]:
                w.writerow([clip, what, k, "" if v is None else f"{v:.4f}", "" if ok is None else ok])
    gp = gaps(agg, bound)
    if bound:
        brows = [{"clip": c, "at": p["at"], **{k: p.get(k) for k in BOUND_FIELDS[2:]}}
                 for c in clips if c in bound for p in bound[c]["points"]]
        write_csv(os.path.join(out, "bound.csv"), brows, BOUND_FIELDS)
        write_csv(os.path.join(out, "gap.csv"), gp, GAP_FIELDS)
        blind = [{"clip": c, "at": p["at"], **{k: p.get(k) for k in BOUND_FIELDS[2:]}}
                 for c in clips if c in bound for p in bound[c].get("blind") or []]
        if blind:
            write_csv(os.path.join(out, "blind.csv"), blind, BOUND_FIELDS)
    if doc:
        from . import evaldoc
        text = evaldoc.render(agg, rows, meta, tg, info, os.path.relpath(out, os.path.dirname(doc)), bound, gp)
        try:  # Fig. 5 / Fig. 7 from scripts/evaluate-cpu's cpu.json, when present
            from . import cpudoc
            text = cpudoc.merge_saved(text, out, doc)
        except Exception as e:  # noqa: BLE001 -- the CPU section must not break this page
            print(f"report: CPU section left out ({e})")
        with open(doc, "w") as f:
            f.write(text)
