"""CSV, plots and docs/EVALUATION.md from the evaluation's per-run rows."""
from __future__ import annotations

import csv
import math
import os
import statistics
from collections import defaultdict

import numpy as np

POLICIES = ["uniform", "differential", "frame_aware"]
COLORS = {"uniform": "tab:red", "differential": "tab:blue", "frame_aware": "tab:green"}
TABLE_LOSSES = [0.005, 0.01, 0.02, 0.05]
PAPER_TABLE1 = {"uniform": [0.95, 0.84, 0.46, 0.10], "differential": [0.99, 0.96, 0.74, 0.40]}
PSNR_CAP = 99.0  # stands for +inf (every frame identical) in interpolation
METRICS = ["psnr", "hog_recall", "sift_share"]
FIELDS = ["clip", "cut", "policy", "p", "run", "bandwidth", "mbps", "datagram_loss", "partial",
          "frames", "frames_lost", "frames_identical", "mse", "psnr", "hog_boxes", "hog_recall",
          "sift_features", "sift_share", "sampled_frames", "digest"]


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


def plots(agg, out, clips):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(ax, clip, metric, title, ylabel):
        for pol in POLICIES:
            for cut, style in (("aligned", "-"), ("every7", "--")):
                pts = [p for p in curve(agg, clip, cut, pol, metric) if p[0] < 0.9999]
                if not pts:
                    continue
                xs, ys, sd = zip(*pts)
                ax.errorbar(xs, ys, yerr=sd, fmt=style + "o", ms=3, capsize=2, color=COLORS[pol],
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


def targets(agg):
    """The issue's targets for frame_aware (frame-aligned)."""
    T = []

    def c(clip, m):
        return curve(agg, clip, "aligned", "frame_aware", m)

    def at5(clip, m):
        a = agg.get((clip, "aligned", "frame_aware", 0.05))
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


def write_all(rows, meta, out, doc, info):
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
    plots(agg, out, clips)
    tg = targets(agg)
    with open(os.path.join(out, "targets.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "target", "measured", "met"])
        for clip, what, v, ok in tg:
            w.writerow([clip, what, "" if v is None else f"{v:.4f}", "" if ok is None else ok])
    if doc:
        from . import evaldoc
        text = evaldoc.render(agg, rows, meta, tg, info, os.path.relpath(out, os.path.dirname(doc)))
        try:  # Fig. 5 / Fig. 7 from scripts/evaluate-cpu's cpu.json, when present
            from . import cpudoc
            text = cpudoc.merge_saved(text, out, doc)
        except Exception as e:  # noqa: BLE001 -- the CPU section must not break this page
            print(f"report: CPU section left out ({e})")
        with open(doc, "w") as f:
            f.write(text)
