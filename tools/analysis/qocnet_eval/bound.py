# SPDX-License-Identifier: Apache-2.0
"""The offline bound: the best quality reachable at each bandwidth when every
frame's size and dependencies are known in advance.

Frames and their bytes come from the frame-aligned capture the replays send
(a datagram belongs to the frame whose PES starts in it; its bytes are the
Ethernet frame's, UDP payload + 42, as the kernel's per-target counters
count them), so a selection's bandwidth (bytes kept / all bytes) is on the
same axis as the delivered bandwidth of Fig. 3 and Fig. 4. Picture types
come from ffprobe.

Dependencies (these encodes: closed GOPs, B frames not references,
b-pyramid=none): a B frame can be dropped alone; a P frame is referenced by
the frames after it in its GOP (decode order), so dropping it drops every
later frame of the GOP; an I frame starts its GOP, dropping it drops the GOP.

The greedy repeatedly drops the droppable unit -- a kept B frame alone, a
kept P frame with every kept frame after it in its GOP, or what is left of a
GOP from its I frame -- with the least increase of the summed luma MSE per
byte saved. A selection is measured as the evaluation measures a received
stream (metrics.py): frames matched by PTS, a dropped frame shows the
previous shown frame (black before any), PSNR of the mean luma MSE, HOG
recall and SIFT share on the sampled frames. Every kept frame of these
streams decodes bit-exactly (verified per run on one selection by cutting
the TS and decoding it), so a selection is measured from the loss-free
decode's frames without decoding.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import subprocess
from dataclasses import dataclass

import numpy as np

from . import decode, metrics, packetize

# The kernel counts Ethernet frames: 14 (Ethernet) + 20 (IPv4) + 8 (UDP).
WIRE_OVERHEAD = 42
# The greedy stops below this share of the bytes (Fig. 3/4 end near 0.5).
MIN_BANDWIDTH = 0.3
# Bandwidths at which HOG/SIFT are measured, besides the online points.
GRID = sorted({round(0.3 + 0.05 * i, 2) for i in range(15)} | {0.76, 0.97, 0.98, 0.99, 0.995})
CACHE_VERSION = 3


@dataclass
class Frame:
    dec: int       # decode order
    pts: int
    kind: str      # "I", "P" or "B"
    size: int      # bytes on the wire (Ethernet frames of its datagrams)
    gop: int = -1
    disp: int = -1  # presentation order


def pes_pts(pkt: bytes):
    """PTS of the PES that starts in this TS packet, or None."""
    off = 4
    if pkt[3] & 0x20:
        off += 1 + pkt[4]
    pes = pkt[off:]
    if len(pes) < 14 or pes[:3] != b"\x00\x00\x01" or not pes[7] & 0x80:
        return None
    b = pes[9:14]
    return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def frames_of_datagrams(payloads, kinds_by_pts):
    """(frames in decode order, bytes of datagrams before the first frame,
    the frame index of every datagram (-1 before the first)). A datagram
    belongs to the frame whose PES starts in it, else to the frame before."""
    vpid = packetize.video_pid(packetize.ts_packets(b"".join(payloads[:64])))
    frames, other, owner = [], 0, []
    for d in payloads:
        start = None
        for p in packetize.ts_packets(d):
            if packetize.pid_of(p) == vpid and packetize.pusi(p):
                if start is not None:
                    raise ValueError("a datagram holds two frames' starts: not the frame-aligned cut")
                start = pes_pts(p)
                if start is None:
                    raise ValueError(f"video PES {len(frames)} has no PTS")
        if start is not None:
            if start not in kinds_by_pts:
                raise ValueError(f"frame with PTS {start} has no picture type from ffprobe")
            frames.append(Frame(len(frames), start, kinds_by_pts[start], 0))
        if frames:
            frames[-1].size += len(d) + WIRE_OVERHEAD
        else:
            other += len(d) + WIRE_OVERHEAD
        owner.append(len(frames) - 1)
    return frames, other, owner


def link(frames):
    """Set each frame's GOP (decode order, from an I frame) and presentation
    index; check the dependency model holds (closed GOPs: no frame after an I
    frame in decode order is shown before it)."""
    if not frames or frames[0].kind != "I":
        raise ValueError("the stream does not start with an I frame")
    g = -1
    for f in frames:
        if f.kind == "I":
            g += 1
            i_pts = f.pts
        elif f.pts < i_pts:
            raise ValueError(f"frame {f.dec} ({f.kind}) is shown before its GOP's I frame: an open GOP, "
                             "which this bound's dependency model does not cover")
        f.gop = g
    for i, f in enumerate(sorted(frames, key=lambda f: f.pts)):
        f.disp = i
    return frames


def picture_types(ts_path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pts,pict_type", "-of", "csv=p=0", ts_path],
                         capture_output=True, text=True, check=True).stdout
    kinds = {}
    for line in out.split():
        parts = [x for x in line.split(",") if x]
        if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
            kinds[int(parts[0])] = parts[1]
    return kinds


class Greedy:
    """Greedy drop by least MSE increase per byte saved.

    frames: Frame list in decode order (linked); mse(i, j): the MSE of
    presentation frame i when presentation frame j is shown (j = -1: black).
    other: bytes that are always kept (datagrams before the first frame)."""

    def __init__(self, frames, mse, other=0):
        self.frames = frames
        self.n = len(frames)
        self.by_disp = sorted(frames, key=lambda f: f.disp)
        self.kept = [True] * self.n          # by decode index
        self._mse = mse
        self._cache = {}
        self.total = sum(f.size for f in frames) + other
        self.kept_bytes = self.total
        self.shown = list(range(self.n))     # by presentation index
        self.sum_mse = 0.0
        self.gops = {}
        for f in frames:
            self.gops.setdefault(f.gop, []).append(f.dec)

    def mse(self, i, j):
        k = (i, j)
        if k not in self._cache:
            self._cache[k] = 0.0 if i == j else self._mse(i, j)
        return self._cache[k]

    def units(self):
        """Every droppable unit now: sets of decode indices."""
        out = []
        for g, decs in self.gops.items():
            kept = [d for d in decs if self.kept[d]]
            for pos, d in enumerate(kept):
                kind = self.frames[d].kind
                if kind == "B":
                    out.append((d,))
                else:  # P (or I): it and every kept frame after it
                    out.append(tuple(kept[pos:]))
        return out

    def effect(self, unit):
        """(MSE increase, bytes saved, first and last presentation index
        whose shown frame changes, the new shown frames there)."""
        drop = {self.frames[d].disp for d in unit}
        a, b = min(drop), max(drop)
        last = self.shown[a - 1] if a > 0 else -1
        delta, new = 0.0, []
        p = a
        while p < self.n:
            if p > b and p not in drop and self.kept[self.by_disp[p].dec]:
                break
            if p not in drop and self.kept[self.by_disp[p].dec]:
                last = p
            delta += self.mse(p, last) - self.mse(p, self.shown[p])
            new.append(last)
            p += 1
        return delta, sum(self.frames[d].size for d in unit), a, new

    def apply(self, unit, eff):
        delta, saved, a, new = eff
        for d in unit:
            self.kept[d] = False
        self.shown[a:a + len(new)] = new
        self.sum_mse += delta
        self.kept_bytes -= saved

    def run(self, min_bandwidth=MIN_BANDWIDTH, targets=()):
        """Drop until the kept share falls below min_bandwidth. Returns the
        steps: (unit, bandwidth after it, mean MSE after it). For each
        bandwidth in `targets`, self.best[b] is the best selection within it
        found on the way: (dropped decode indices, bandwidth, mean MSE) -- the
        greedy's first state within b, or the state before it with the one
        unit that brings it within b at the least MSE, whichever is better
        (a unit can overshoot b by up to a GOP's bytes)."""
        steps = []
        cache = {}
        dropped = set()
        pending = sorted(set(targets), reverse=True)
        self.best = {}
        while pending or self.kept_bytes / self.total >= min_bandwidth:
            best, best_key = None, None
            for u in self.units():
                if u not in cache:
                    cache[u] = self.effect(u)
                e = cache[u]
                if e[1] <= 0:
                    continue
                key = (e[0] / e[1], -e[1], u)
                if best_key is None or key < best_key:
                    best, best_key = u, key
            while pending and self.kept_bytes <= pending[0] * self.total + 1e-9:
                self.best[pending.pop(0)] = (set(dropped), self.kept_bytes / self.total, self.sum_mse / self.n)
            if best is None:
                break
            eff = cache[best]
            for b in pending:
                if self.kept_bytes - eff[1] > b * self.total + 1e-9:
                    break  # the greedy's next state is not yet within b
                need = self.kept_bytes - b * self.total
                fits = [(cache[u][0], u) for u in cache
                        if cache[u][1] >= need - 1e-9 and all(self.kept[d] for d in u)]
                if fits:
                    d_mse, u = min(fits)
                    if d_mse < eff[0]:
                        self.best[b] = (dropped | set(u), (self.kept_bytes - cache[u][1]) / self.total,
                                        (self.sum_mse + d_mse) / self.n)
            self.apply(best, eff)
            dropped.update(best)
            for b in [b for b in pending if b in self.best]:
                pending.remove(b)
            lo, hi = eff[2], eff[2] + len(eff[3])  # presentation indices whose shown frame changed
            # An effect depends on the shown frames of its range and on the
            # frame that ends it: forget every unit whose range meets the change.
            for u in list(cache):
                _, _, ua, unew = cache[u]
                if ua <= hi and ua + len(unew) >= lo - 1 or any(not self.kept[d] for d in u):
                    del cache[u]
            steps.append((best, self.kept_bytes / self.total, self.sum_mse / self.n))
        return steps


def file_digest(path):
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_cut(payloads, owner, frames, dropped, ref_by_pts, tmp_path):
    """Cut the TS as the selection says (the datagrams of dropped frames
    removed), decode it, and check that exactly the kept frames decode, each
    identical to the loss-free decode's frame of its PTS."""
    with open(tmp_path, "wb") as f:
        for d, o in zip(payloads, owner):
            if o < 0 or o not in dropped:
                f.write(d)
    recv, recv_pts = decode.decode_luma(tmp_path)
    os.unlink(tmp_path)
    kept_pts = {f.pts for f in frames if f.dec not in dropped}
    identical = sum(1 for img, p in zip(recv, recv_pts) if p in ref_by_pts and np.array_equal(img, ref_by_pts[p]))
    return {"frames_kept": len(kept_pts), "frames_decoded": len(recv),
            "pts_match": set(recv_pts) == kept_pts and len(recv_pts) == len(kept_pts),
            "identical": identical}


def measure(ref, ref_pts, dropped_pts, det, sample_every, hog):
    """A selection measured as metrics.evaluate measures a received decode
    whose frames are the loss-free ones of the kept PTS."""
    keep = [i for i, p in enumerate(ref_pts) if p not in dropped_pts]
    return metrics.evaluate(ref, ref_pts, [ref[i] for i in keep], [ref_pts[i] for i in keep], det,
                            sample_every, hog=hog, sift=True)


def compute(clip, ts_path, pcap_path, sample_every, hog, bandwidths, work_dir, log=print):
    """The bound of one clip: the greedy's PSNR curve (every step) and the
    full metrics at the grid and at `bandwidths`; plus the check of the
    no-decoding assumption on the selection nearest 0.76."""
    payloads = packetize.read_pcap_payloads(pcap_path)
    frames, other, owner = frames_of_datagrams(payloads, picture_types(ts_path))
    link(frames)
    ref, ref_pts = decode.decode_luma(ts_path)
    order = sorted(range(len(ref)), key=lambda i: ref_pts[i])
    ref, ref_pts = [ref[i] for i in order], [ref_pts[i] for i in order]
    if ref_pts != sorted(f.pts for f in frames):
        raise RuntimeError(f"{clip}: the decode's PTS differ from the capture's frames")
    black = np.zeros_like(ref[0])
    g = Greedy(frames, lambda i, j: metrics.frame_mse(ref[i], ref[j] if j >= 0 else black), other)
    targets = sorted(set(GRID) | {round(x, 4) for x in bandwidths})
    steps = g.run(min(MIN_BANDWIDTH, targets[0] - 0.02), targets)
    log(f"  bound {clip}: {len(steps)} greedy steps to {steps[-1][1]:.2f} of the bytes")
    curve = [{"bandwidth": 1.0, "mse": 0.0}] + [{"bandwidth": b, "mse": m} for _, b, m in steps]
    det = metrics.Detectors()
    pts_of = {f.dec: f.pts for f in frames}
    def selections(greedy, check_mse):
        """Each target's selection of `greedy`, measured as a received stream."""
        out = []
        for b in targets:
            if b not in greedy.best:
                continue
            dropped, bw, mse = greedy.best[b]
            r = measure(ref, ref_pts, {pts_of[d] for d in dropped}, det, sample_every, hog)
            if check_mse and abs(r["mse"] - mse) > 1e-6 * max(1.0, mse):
                raise RuntimeError(f"{clip}: the greedy's MSE {mse} differs from the measured {r['mse']}")
            kinds = {"I": 0, "P": 0, "B": 0}
            for d in dropped:
                kinds[frames[d].kind] += 1
            out.append({"at": b, "bandwidth": bw, "mse": r["mse"], "psnr": r["psnr"],
                        "hog_recall": r.get("hog_recall"), "sift_share": r.get("sift_share"),
                        "frames_lost": r["frames_lost"], "dropped_I": kinds["I"], "dropped_P": kinds["P"],
                        "dropped_B": kinds["B"], "dropped": sorted(pts_of[d] for d in dropped)})
        return out

    points = selections(g, True)
    # The same greedy blind to the pixels: every frame newly shown frozen
    # costs 1, whatever it shows. It knows each frame's bytes and
    # dependencies in advance, as the bound does, but not its content, as
    # the kernel does not: the difference between the two is what knowing
    # the pictures is worth; between it and the datapath, what knowing the
    # sizes ahead (and choosing freely among the units) is worth. (Its own
    # "MSE" counts frozen frames: the measured one is the evaluation's.)
    gb = Greedy(frames, lambda i, j: 1.0, other)
    gb.run(min(MIN_BANDWIDTH, targets[0] - 0.02), targets)
    blind = selections(gb, False)
    for p in blind:
        del p["dropped"]
    near = min(points, key=lambda p: abs(p["at"] - 0.76))
    dropped = {f.dec for f in frames if f.pts in set(near["dropped"])}
    bw = near["bandwidth"]
    os.makedirs(work_dir, exist_ok=True)
    check = verify_cut(payloads, owner, frames, dropped, dict(zip(ref_pts, ref)),
                       os.path.join(work_dir, f"bound-{clip}-{os.getpid()}.ts"))
    check["bandwidth"] = bw
    check["ok"] = check["pts_match"] and check["identical"] == check["frames_kept"]
    for p in points:
        del p["dropped"]  # only needed for the check
    log(f"  bound {clip}: cut at {bw:.3f} decodes {check['frames_decoded']} of {check['frames_kept']} "
        f"kept frames, {check['identical']} identical")
    return {"clip": clip, "frames": len(frames), "total_bytes": g.total, "curve": curve, "points": points,
            "blind": blind, "check": check, "sample_every": sample_every, "hog": hog}


def _safe_job(a):
    try:
        return compute(*a)
    except (OSError, ValueError, RuntimeError, subprocess.CalledProcessError) as e:
        return f"{type(e).__name__}: {e}"


def for_runs(rows, video_dir, out_dir, sample, work_dir, jobs=2, log=print):
    """The bound of every clip in rows, at the bandwidths of their
    frame-aligned points, from out_dir/bound.json when its inputs are
    unchanged; None for a clip whose video is missing and not cached."""
    path = os.path.join(out_dir, "bound.json")
    try:
        with open(path) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    if cache.get("version") != CACHE_VERSION:
        cache = {"version": CACHE_VERSION, "clips": {}}
    todo, result = [], {}
    for clip in sorted({r["clip"] for r in rows}):
        groups = {}
        for r in rows:
            if r["clip"] == clip and r["cut"] == "aligned" and r["policy"].split("/")[0] == "frame_aware":
                groups.setdefault((r["policy"], r["p"]), []).append(r["bandwidth"])
        # The points' mean bandwidths, as the report aggregates them.
        bws = sorted({round(statistics.fmean(v), 4) for v in groups.values()})
        ts, pcap = os.path.join(video_dir, clip + ".ts"), os.path.join(video_dir, clip + ".aligned.pcap")
        hog = clip == "vtest"
        have = cache["clips"].get(clip)
        if not (os.path.exists(ts) and os.path.exists(pcap)):
            if have:
                result[clip] = have
                log(f"  bound {clip}: {video_dir} lacks the clip; using {path}")
            else:
                log(f"  bound {clip}: no {ts} / {pcap} and nothing in {path}: left out")
            continue
        key = {"ts": file_digest(ts), "pcap": file_digest(pcap), "sample_every": sample[clip], "hog": hog}
        if have and have.get("key") == key and {round(p["at"], 4) for p in have["points"]} >= set(bws):
            result[clip] = have
            continue
        todo.append((clip, key, (clip, ts, pcap, sample[clip], hog, bws, work_dir)))
    if todo:
        if jobs > 1 and len(todo) > 1:
            from multiprocessing import Pool
            with Pool(min(jobs, len(todo))) as pool:
                done = pool.map(_safe_job, [t[2] for t in todo], chunksize=1)
        else:
            done = [_safe_job(t[2]) for t in todo]
        for (clip, key, _), b in zip(todo, done):
            if isinstance(b, str):  # the runs' report must not be lost to the bound
                log(f"  bound {clip}: left out: {b}")
                continue
            b["key"] = key
            result[clip] = b
            cache["clips"][clip] = b
        os.makedirs(out_dir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(cache, f, default=lambda v: None)
    return result


def at(bound, bandwidth, which="points"):
    """The bound's measured point for a bandwidth (the selection with the
    most bytes not above it), or None. which="blind": the pixel-blind
    greedy's."""
    if not bound:
        return None
    key = round(bandwidth, 4)
    for p in bound.get(which) or []:
        if round(p["at"], 4) == key:
            return p
    return None


def finite(v):
    return v is not None and not (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))
