# SPDX-License-Identifier: Apache-2.0
"""Fig. 5 and Fig. 7 (CPU) of scripts/evaluate-cpu: CSV, PNG and the section
of docs/EVALUATION.md between the markers below (scripts/evaluate's renderer
puts the section back from cpu.json when it rewrites the page)."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import statistics

BEGIN = "<!-- evaluate-cpu: begin (written by scripts/evaluate-cpu; kept by scripts/evaluate) -->"
END = "<!-- evaluate-cpu: end -->"
PAPER7 = {12: 28, 50: 55, 100: 65}
COLORS = {"differential": "tab:orange", "frame_aware": "tab:green", "keep": "tab:gray"}


def _ms(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.4f}" if isinstance(r.get(k), float) else r.get(k, "")) for k in fields})


def _fit(pts):
    """Least-squares line through (x, y): (slope, intercept)."""
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        return None, None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sxx
    return b, my - b * mx


# --- Fig. 5 -------------------------------------------------------------------

def agg5(rows):
    keys = sorted({(r["policy"], r["mode"], r["drop_target"]) for r in rows})
    out = []
    for k in keys:
        rs = [r for r in rows if (r["policy"], r["mode"], r["drop_target"]) == k]
        d = {"policy": k[0], "mode": k[1], "drop_target": k[2], "runs": len(rs)}
        for m in ("drop_bytes", "cpu", "c0_cpu", "c1_cpu", "c0_drop_bytes", "c1_drop_bytes", "c0_frames",
                  "c1_frames", "machine_busy"):
            d[m], d[m + "_sd"] = _ms([r.get(m) for r in rs])
        out.append(d)
    return out


def slopes5(rows):
    """Per policy and mode: CPU points per 10 % total drop (both consumers, % of one core)."""
    res = []
    base = [r for r in rows if r["policy"] == "keep"]
    for pol in sorted({r["policy"] for r in rows} - {"keep"}):
        for mode in ("one", "split"):
            pts = [(r["drop_bytes"], r["cpu"]) for r in base + [r for r in rows
                                                              if r["policy"] == pol and r["mode"] == mode]]
            b, a = _fit(pts)
            if b is None:
                continue
            res.append({"policy": pol, "mode": mode, "per10": b * 0.1, "at0": a,
                        "per10_rel": b * 0.1 / a * 100 if a else None, "points": len(pts)})
    return res


def plot5(ag, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pols = sorted({d["policy"] for d in ag} - {"keep"})
    base = [d for d in ag if d["policy"] == "keep"]
    fig, axes = plt.subplots(1, len(pols), figsize=(6 * len(pols), 4.5), squeeze=False)
    for ax, pol in zip(axes[0], pols):
        for mode, style, label in (("one", "o-", "(a) all drops at consumer 0"), ("split", "s-", "(b) split")):
            pts = sorted(base + [d for d in ag if d["policy"] == pol and d["mode"] == mode],
                         key=lambda d: d["drop_bytes"])
            ax.errorbar([d["drop_bytes"] * 100 for d in pts], [d["cpu"] for d in pts],
                        yerr=[d["cpu_sd"] for d in pts], fmt=style, capsize=3, label=label + ": both consumers")
            if mode == "one":
                ax.errorbar([d["drop_bytes"] * 100 for d in pts], [d["c0_cpu"] for d in pts],
                            yerr=[d["c0_cpu_sd"] for d in pts], fmt="o:", ms=3, capsize=2, alpha=0.6,
                            label="(a) consumer 0 (the dropping one)")
                ax.errorbar([d["drop_bytes"] * 100 for d in pts], [d["c1_cpu"] for d in pts],
                            yerr=[d["c1_cpu_sd"] for d in pts], fmt="^:", ms=3, capsize=2, alpha=0.6,
                            label="(a) consumer 1 (keep)")
        ax.set_title(f"Fig. 5 — decoding CPU vs total drop, {pol}")
        ax.set_xlabel("total drop rate (% of the bytes of both streams to both consumers)")
        ax.set_ylabel("CPU (% of one core)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fig5_cpu_vs_drop.png"), dpi=110)
    plt.close(fig)


# --- Fig. 7 -------------------------------------------------------------------

def agg7(rows):
    out = []
    for k in sorted({(r["n"], r["drop_target"]) for r in rows}):
        rs = [r for r in rows if (r["n"], r["drop_target"]) == k]
        d = {"n": k[0], "drop_target": k[1], "runs": len(rs), "streams": rs[0]["streams"]}
        for m in ("total_machine", "total_cpu", "consumers_cpu", "softirq_net", "sensor_cpu", "drop_bytes",
                  "drop_datagrams", "machine_busy", "late_max_ms"):
            d[m], d[m + "_sd"] = _ms([r.get(m) for r in rs])
        out.append(d)
    return out


def plot7(ag, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    drops = sorted({d["drop_target"] for d in ag})
    for p in drops:
        pts = sorted([d for d in ag if d["drop_target"] == p], key=lambda d: d["n"])
        xs = [d["n"] for d in pts]
        line = axes[0].errorbar(xs, [d["total_machine"] for d in pts], yerr=[d["total_machine_sd"] for d in pts],
                                fmt="o-", capsize=3, label=f"drop {p * 100:.0f} %")
        c = line[0].get_color()
        axes[1].errorbar(xs, [d["consumers_cpu"] for d in pts], yerr=[d["consumers_cpu_sd"] for d in pts],
                         fmt="o-", color=c, capsize=3, label=f"consumers, drop {p * 100:.0f} %")
        axes[1].errorbar(xs, [d["softirq_net"] for d in pts], yerr=[d["softirq_net_sd"] for d in pts],
                         fmt="s--", color=c, capsize=3, alpha=0.7, label=f"softirq, drop {p * 100:.0f} %")
    axes[0].set_title("Fig. 7 — total CPU vs consumer namespaces (differential)")
    axes[0].set_ylabel("consumers + softirq (% of the 2-core machine)")
    axes[1].set_title("Fig. 7 — the two parts")
    axes[1].set_ylabel("% of one core")
    for ax in axes:
        ax.set_xlabel("consumer namespaces")
        ax.set_xticks(sorted({d["n"] for d in ag}))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fig7_cpu_vs_consumers.png"), dpi=110)
    plt.close(fig)


# --- outputs ------------------------------------------------------------------

F5 = ["policy", "mode", "drop_target", "rep", "drop_bytes", "cpu", "c0_policy", "c0_drop_bytes", "c0_cpu",
      "c0_s0_cpu", "c0_s1_cpu", "c0_frames", "c1_policy", "c1_drop_bytes", "c1_cpu", "c1_s0_cpu", "c1_s1_cpu",
      "c1_frames", "window_s", "late_max_ms", "machine_busy"]
F7 = ["n", "drop_target", "rep", "streams", "drop_bytes", "drop_datagrams", "total_machine", "total_cpu",
      "consumers_cpu", "softirq_net", "sensor_cpu", "consumers_cpu_s", "softirq_s", "softirq_net_s",
      "sensor_cpu_s", "window_s", "span_s", "late_max_ms", "machine_busy"]


def write_all(data, out, doc):
    os.makedirs(out, exist_ok=True)
    if data.get("fig5"):
        _csv(os.path.join(out, "cpu_fig5_runs.csv"), data["fig5"], F5)
        ag = agg5(data["fig5"])
        _csv(os.path.join(out, "cpu_fig5.csv"), ag, list(ag[0].keys()))
        plot5(ag, out)
    if data.get("fig7"):
        _csv(os.path.join(out, "cpu_fig7_runs.csv"), data["fig7"], F7)
        ag = agg7(data["fig7"])
        _csv(os.path.join(out, "cpu_fig7.csv"), ag, list(ag[0].keys()))
        plot7(ag, out)
    if doc:
        with open(doc) as f:
            text = f.read()
        with open(doc, "w") as f:
            f.write(merge(text, section(data, os.path.relpath(out, os.path.dirname(doc))), data))


def merge_saved(text, out, doc):
    """For scripts/evaluate's renderer: put the CPU section back from out/cpu.json."""
    path = os.path.join(out, "cpu.json")
    if not os.path.exists(path):
        return text
    with open(path) as f:
        data = json.load(f)
    return merge(text, section(data, os.path.relpath(out, os.path.dirname(doc))), data)


def merge(text, sec, data):
    block = BEGIN + "\n" + sec.rstrip() + "\n" + END + "\n"
    if BEGIN in text and END in text:
        a = text.index(BEGIN)
        b = text.index(END) + len(END)
        text = text[:a] + block.rstrip("\n") + text[b:]
    elif "## Not reproduced yet" in text:
        i = text.index("## Not reproduced yet")
        text = text[:i] + block + "\n" + text[i:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    if data.get("fig5") and data.get("fig7"):  # the renderer's "not reproduced" line for them
        text = re.sub(r"\n- Fig\. 5 \(CPU[^\n]*\n", "\n", text)
    return text


def _f(v, nd=1):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def section(data, figdir):
    L = []
    w = L.append
    cmd = data["command"]
    w("## Fig. 5 and Fig. 7 — CPU\n")
    secs = data.get("seconds", 0)
    w(f"Measured on this machine by `{cmd}` ({data['mode']} mode, {data['date']}, {secs / 60:.1f} min; "
      f"`{cmd} --report-only` re-renders CSV, plots and this section from "
      f"[`cpu.json`]({figdir}/cpu.json)). The machine has {data['ncpu']} cores shared with other users' jobs "
      "(1-minute load average at the start and end of the figures' runs: "
      + ", ".join(f"{x[0]:.1f}" for k in ("load5", "load7") for x in data.get(k, [])) +
      "), so CPU times are noisy: every point is repeated in a shuffled order and shown as mean ± standard "
      "deviation over the runs. Absolute numbers are not the paper's (its testbed: VMs and containers on a "
      "server); compare trends. CPU is CPU time per second of stream (100 % = one core busy).\n")
    f5 = data.get("fig5")
    if f5:
        plan = data["plan"]
        ag = agg5(f5)
        w("### Fig. 5 — CPU of two decoding processes vs total drop rate\n")
        w(f"![Fig. 5]({figdir}/fig5_cpu_vs_drop.png)\n")
        w(f"Command: `{cmd} --fig 5` → [`fig5_cpu_vs_drop.png`]({figdir}/fig5_cpu_vs_drop.png), "
          f"[`cpu_fig5.csv`]({figdir}/cpu_fig5.csv) (mean, sd), [`cpu_fig5_runs.csv`]({figdir}/cpu_fig5_runs.csv) "
          "(every run).\n")
        w("Setup: a sensor namespace replays the frame-aligned captures of vtest (10 fps, 0.85 Mbit/s) and box "
          "(29.97 fps, 1.11 Mbit/s) in real time (each frame's datagrams spread over its frame interval) "
          f"for the first {plan['window5']:g} s, through a qocnet Edge (`tools/eval/cpu.cpp`, "
          "`qocnet-eval-cpu`) that clones both streams to two consumer namespaces. Each consumer is one "
          "process (`tools/eval/cpu_consumer.py --decode`) that receives both streams and writes each into "
          "its own ffmpeg H.264 decoder (`ffmpeg -threads 1 -f mpegts -i pipe:0 -f null -`: every frame that "
          "arrives is decoded, the pictures discarded). A consumer's CPU is the user + system time of the "
          "receiver and its two decoders (wait4), from the first datagram (after ffmpeg's start-up) until "
          "they have decoded everything; per-decoder times are in the CSV. "
          "Total drop D = dropped bytes / all bytes of the four "
          "copies (kernel counters). (a) all drops at consumer 0: policy p = 2D on both its streams, consumer 1 "
          "`keep`; (b) split: p = D at both. D = 0 is `keep` everywhere.\n")
        w("| policy | mode | target D | measured D | consumer 0 | consumer 1 | both | frames decoded 0 / 1 | runs |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for d in ag:
            w(f"| {d['policy']} | {d['mode']} | {d['drop_target']:g} | {_f(d['drop_bytes'], 3)} | "
              f"{_f(d['c0_cpu'])} ± {_f(d['c0_cpu_sd'])} | {_f(d['c1_cpu'])} ± {_f(d['c1_cpu_sd'])} | "
              f"{_f(d['cpu'])} ± {_f(d['cpu_sd'])} | {_f(d['c0_frames'], 0)} / {_f(d['c1_frames'], 0)} | "
              f"{d['runs']} |")
        w("")
        sl = slopes5(f5)
        w("Least-squares slope of both consumers' CPU over the measured total drop (all runs, D = 0 included):\n")
        w("| policy | mode | CPU at no drop (fit) | change per 10 % drop | relative to no drop | paper |")
        w("| --- | --- | --- | --- | --- | --- |")
        for s in sl:
            paper = "−3 % (one VM drops)" if s["mode"] == "one" else "−5 % (split)"
            w(f"| {s['policy']} | {'(a) one drops' if s['mode'] == 'one' else '(b) split'} | "
              f"{_f(s['at0'])} % | {s['per10']:+.2f} points | {_f(s['per10_rel'])} % | {paper} |")
        w("")
        w(_fig5_reading(ag, sl))
    f7 = data.get("fig7")
    if f7:
        plan = data["plan"]
        ag = agg7(f7)
        idle = data.get("fig7_idle", [])
        chk = data.get("fig7_check", {})
        w("### Fig. 7 — total CPU vs number of consumer namespaces\n")
        w(f"![Fig. 7]({figdir}/fig7_cpu_vs_consumers.png)\n")
        w(f"Command: `{cmd} --fig 7` → [`fig7_cpu_vs_consumers.png`]({figdir}/fig7_cpu_vs_consumers.png), "
          f"[`cpu_fig7.csv`]({figdir}/cpu_fig7.csv), [`cpu_fig7_runs.csv`]({figdir}/cpu_fig7_runs.csv).\n")
        nmax = max(d["n"] for d in ag)
        w("Setup and what differs from the paper:\n")
        if all("edges" in r for r in f7):  # scripts/evaluate-cpu since issue 14: the paper's setting
            edges = max(r["edges"] for r in f7)
            w(f"- **The paper's setting: two streams, {'one edge' if edges == 1 else f'{edges} edges'}.** "
              "vtest and box, each replayed in real time from the start from its own sensor socket, "
              "through one Edge; N consumer namespaces split evenly between the two streams (consumer c "
              f"takes stream c mod 2): {nmax} consumers = {math.ceil(nmax / 2)} clone targets per stream. "
              "All consumers are under `differential(p)` (p = 0: `keep`).")
        else:  # results taken before: the datapath held 8 targets per stream, 64 processes per edge
            w(f"- **Several streams, two edges.** The datapath then cloned one stream to at most 8 targets "
              "(`QOC_MAX_TARGETS`) and one edge knew at most 64 processes (`QOC_MAX_PROCS`; the testbed's "
              f"topology also held 64), so N consumers got ⌈N/8⌉ streams of 8 consumers each (the last one "
              f"fewer): {nmax} consumers = {math.ceil(nmax / 8)} streams (vtest and box alternating, each "
              "replayed in real time from the start, from its own sensor socket) on two Edges of 56 and 44 "
              "consumer namespaces, each with its own sensor namespace. All consumers are under "
              "`differential(p)` (p = 0: `keep`). `scripts/evaluate-cpu` now runs the paper's setting "
              "(2 streams, one edge, consumers split evenly) and stops with an error naming the limit "
              "where the datapath cannot hold it; these results predate that.")
        keep = [r for r in data.get("fig5") or [] if r["policy"] == "keep"]
        if keep:
            dv = statistics.fmean(r[f"c{c}_s0_cpu"] for r in keep for c in (0, 1))
            db = statistics.fmean(r[f"c{c}_s1_cpu"] for r in keep for c in (0, 1))
            cost = (f"A decoder costs {dv:.1f} % of a core per vtest stream and {db:.1f} % per box stream here "
                    f"(Fig. 5, no drop), so {nmax} decoders would need about {nmax * (dv + db) / 2:.0f} % of a "
                    f"core, more than the machine's {data['ncpu']} cores. ")
        else:
            cost = "Decoders for all consumers would need more than the machine's cores. "
        w("- **A lighter consumer.** " + cost + "Each consumer is "
          "`tools/eval/cpu_consumer.py`: one Python process that receives its stream's datagrams and parses "
          "every TS packet (sync, PID, continuity counter, adaptation field, PES start) and reassembles each "
          "frame's elementary-stream bytes — the front end of an analysing process, without the decoder. "
          "Its cost follows the datagrams it receives, as a decoder's follows the frames.")
        bg = statistics.fmean(x["softirq_rate"] for x in idle) * 100 if idle else 0
        bgsd = statistics.stdev(x["softirq_rate"] * 100 for x in idle) if len(idle) > 1 else 0
        w(f"- **Total CPU** = the active consumers' CPU time (`/proc/<pid>/task/*/schedstat`) + the machine's "
          "softirq time (`/proc/stat`: the edge's TC program, cloning, veth and UDP delivery run there) minus "
          f"the softirq of idle windows measured between the runs ({bg:.2f} ± {bgsd:.2f} % of a core, "
          f"{len(idle)} windows: other users' traffic), over a {plan['window7']:g} s window. Shown as % of the "
          "2-core machine, as the paper's utilization. The sensor's sending thread is not counted "
          "(a camera is another machine); its CPU is in the CSV (`sensor_cpu`).")
        if chk:
            ok = chk.get("sockets_received") == chk.get("kernel_delivered")
            w(f"- Check: the consumers received {chk.get('sockets_received')} datagrams, the kernel counted "
              f"{chk.get('kernel_delivered')} delivered ({'equal' if ok else 'different: socket drops'}); "
              f"{chk.get('frames')} frames parsed, {chk.get('bad_sync')} bad sync bytes.")
        w("")
        drops = sorted({d["drop_target"] for d in ag})
        ns = sorted({d["n"] for d in ag})
        w("Total CPU, % of the 2-core machine (mean ± sd; in brackets the consumers' part / the net softirq "
          "part, % of one core):\n")
        w("| consumers | streams | " + " | ".join(f"drop {p * 100:.0f} %" for p in drops) + " | paper, no drop |")
        w("| --- | --- | " + " | ".join("---" for _ in drops) + " | --- |")
        for n in ns:
            cells = []
            for p in drops:
                d = next((x for x in ag if x["n"] == n and x["drop_target"] == p), None)
                cells.append("–" if d is None else f"{_f(d['total_machine'], 2)} ± {_f(d['total_machine_sd'], 2)} "
                             f"({_f(d['consumers_cpu'])} / {_f(d['softirq_net'])})")
            st = next(x["streams"] for x in ag if x["n"] == n)
            w(f"| {n} | {st} | " + " | ".join(cells) + f" | {PAPER7.get(n, '–')} |")
        w("")
        w("Measured byte drop: " + ", ".join(
            f"p = {p:g}: {_f(statistics.fmean(x['drop_bytes'] for x in ag if x['drop_target'] == p), 3)} of the "
            f"bytes, {_f(statistics.fmean(x['drop_datagrams'] for x in ag if x['drop_target'] == p), 3)} of the "
            "datagrams" for p in drops) + ".\n")
        w(_fig7_reading(ag))
    return "\n".join(L) + "\n"


def _fig5_reading(ag, sl):
    L = ["Reading:"]
    by = {(s["policy"], s["mode"]): s for s in sl}
    for pol in sorted({s["policy"] for s in sl}):
        a, b = by.get((pol, "one")), by.get((pol, "split"))
        if a and b:
            L.append(f"- `{pol}`: {a['per10']:+.2f} points ({_f(a['per10_rel'])} %) per 10 % total drop when one "
                     f"consumer drops, {b['per10']:+.2f} points ({_f(b['per10_rel'])} %) when split; the paper: "
                     "−3 % and −5 %, steeper when split. Here "
                     + ("steeper when split too." if b["per10"] < a["per10"] else "steeper when one consumer drops."))
    L.append("- The decoders' CPU follows the frames they decode (column *frames decoded*), not the bytes: a "
             "frame whose reference was dropped is not decoded either, so the dropping consumer's CPU falls "
             "faster than its byte share. Slopes are in points of one core over the measured total drop; "
             "the spread of the repeated runs (table) is of the order of the differences between neighbouring "
             "points, so the slopes, and above all the difference between (a) and (b), are uncertain.")
    return "\n".join(L) + "\n"


def _fig7_reading(ag):
    L = ["Reading:"]
    d0 = {d["n"]: d["total_machine"] for d in ag if d["drop_target"] == 0}
    ns = sorted(d0)
    if len(ns) >= 2:
        lo = ns[0]
        ratios = ", ".join(f"{n}: {d0[n] / d0[lo]:.2f}×" for n in ns[1:] if d0[lo])
        nr = ", ".join(f"{n / lo:.2f}×" for n in ns[1:])
        L.append(f"- No drop, relative to {lo} consumers: {ratios}, for {nr} the consumers (paper, 12 → 50 → "
                 "100 containers: 1.96×, 2.32×, i.e. well below the number of containers).")
    L.append("- The consumers' part dominates; the net softirq part (cloning, veth, UDP delivery) is a few % "
             "of a core and, at 12–25 consumers, within the spread of the idle windows' softirq (other users' "
             "traffic), which is why it can come out slightly negative.")
    per = []
    for n in ns:
        pts = [(d["drop_target"], d["total_machine"]) for d in ag if d["n"] == n]
        b, a = _fit(pts)
        if b is not None:
            per.append(f"N = {n}: {b * 0.25:+.2f} points ({b * 0.25 / a * 100 if a else float('nan'):+.0f} %)")
    if per:
        L.append("- Per 25 % drop (least-squares over the drop rates): " + "; ".join(per) +
                 ". Paper: about −8 points of 28–65 % (−12 to −30 %).")
    return "\n".join(L) + "\n"
