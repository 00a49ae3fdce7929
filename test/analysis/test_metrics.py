# SPDX-License-Identifier: Apache-2.0
"""Unit tests of the evaluation's analysis (tools/analysis/qocnet_eval):
frame matching by PTS, PSNR with frame freezing, detection matching (IoU),
the frame-aligned packetizer, a decode of a clip with a frame cut out, the
offline bound's greedy (bound.py) and the report's per-order curves and gaps.

  /usr/bin/python3 test/analysis/test_metrics.py
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "analysis"))

try:
    import cv2  # noqa: F401
    import numpy as np
except ImportError as e:
    sys.exit(f"test_metrics: python3-opencv and python3-numpy are needed for {sys.executable} "
             f"(apt-get install -y python3-opencv): {e}")

from qocnet_eval import bound, decode, metrics, packetize, report  # noqa: E402


def const(v, shape=(8, 8)):
    return np.full(shape, v, dtype=np.uint8)


class AlignByPts(unittest.TestCase):
    def test_lost_frame_shows_previous(self):
        shown, lost = metrics.align_by_pts([0, 10, 20, 30], [0, 10, 30])
        self.assertEqual(shown, [0, 1, 1, 2])
        self.assertEqual(lost, 1)

    def test_nothing_before_first_arrival(self):
        shown, lost = metrics.align_by_pts([0, 10, 20], [20])
        self.assertEqual(shown, [-1, -1, 0])
        self.assertEqual(lost, 2)

    def test_matches_by_pts_not_position(self):
        # Received in decode order, a duplicate PTS and a stray one.
        shown, lost = metrics.align_by_pts([0, 10, 20, 30], [0, 30, 10, 10, 99, None])
        self.assertEqual(shown, [0, 2, 2, 1])
        self.assertEqual(lost, 1)


class Psnr(unittest.TestCase):
    def test_identical_is_infinite(self):
        ref = [const(10), const(20)]
        r = metrics.evaluate(ref, [0, 1], list(ref), [0, 1])
        self.assertTrue(math.isinf(r["psnr"]))
        self.assertEqual(r["frames_identical"], 2)

    def test_frozen_frame_counts_with_its_error(self):
        ref = [const(10), const(20), const(40), const(40)]
        recv = [const(10), const(40)]  # frame at pts 1 lost: frame 0 is shown again
        r = metrics.evaluate(ref, [0, 1, 2, 3], recv, [0, 2])
        # MSEs: 0, (20-10)^2 = 100, 0, 0 -> mean 25
        self.assertAlmostEqual(r["mse"], 25.0)
        self.assertAlmostEqual(r["psnr"], 10 * math.log10(255 ** 2 / 25.0))
        self.assertEqual(r["frames_lost"], 2)  # pts 1 and 3

    def test_psnr_of_mean_mse_not_mean_psnr(self):
        ref = [const(0), const(0)]
        recv = [const(0), const(10)]
        r = metrics.evaluate(ref, [0, 1], recv, [0, 1])
        self.assertAlmostEqual(r["psnr"], 10 * math.log10(255 ** 2 / 50.0))

    def test_black_before_any_frame(self):
        ref = [const(30), const(30)]
        r = metrics.evaluate(ref, [0, 1], [const(30)], [1])
        self.assertAlmostEqual(r["mse"], 900 / 2)

    def test_reference_in_decode_order_is_sorted(self):
        ref = [const(10), const(30), const(20)]  # pts 0, 2, 1 (decode order)
        r = metrics.evaluate(ref, [0, 2, 1], [const(10), const(20)], [0, 1])
        # pts 2 lost -> pts 1's frame (20) shown: (30-20)^2 = 100 over 3 frames
        self.assertAlmostEqual(r["mse"], 100 / 3)


class Detection(unittest.TestCase):
    def test_iou(self):
        self.assertAlmostEqual(metrics.iou((0, 0, 10, 10), (0, 0, 10, 10)), 1.0)
        self.assertAlmostEqual(metrics.iou((0, 0, 10, 10), (5, 0, 10, 10)), 50 / 150)
        self.assertEqual(metrics.iou((0, 0, 10, 10), (20, 20, 5, 5)), 0.0)

    def test_match_threshold_and_one_to_one(self):
        ref = [(0, 0, 10, 10), (100, 100, 10, 10)]
        self.assertEqual(metrics.match_boxes(ref, [(1, 1, 10, 10)]), 1)            # IoU 0.68
        self.assertEqual(metrics.match_boxes(ref, [(5, 0, 10, 10)]), 0)            # IoU 0.33
        self.assertEqual(metrics.match_boxes(ref, [(0, 0, 10, 10)] * 2), 1)        # used once
        self.assertEqual(metrics.match_boxes(ref, [(0, 0, 10, 10), (101, 100, 10, 10)]), 2)
        self.assertEqual(metrics.match_boxes([], [(0, 0, 1, 1)]), 0)

    def test_sift_share_of_same_and_blank_frame(self):
        rng = np.random.default_rng(1)
        img = cv2.GaussianBlur(rng.integers(0, 255, (240, 320), dtype=np.uint8), (5, 5), 0)
        det = metrics.Detectors()
        n, good = det.sift_matched(img, img.copy())
        self.assertGreater(n, 20)
        self.assertGreater(good / n, 0.95)
        n, good = det.sift_matched(img, np.zeros_like(img))
        self.assertEqual(good, 0)


@unittest.skipUnless(shutil.which("ffmpeg"), "ffmpeg not installed")
class DecodeWithLoss(unittest.TestCase):
    """A tiny H.264 clip; one frame's datagrams removed; the decode lacks
    exactly that PTS and PSNR is taken with the previous frame frozen."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="qocnet-analysis-")
        cls.ts = os.path.join(cls.dir, "clip.ts")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=160x120:rate=10", "-t", "2", "-c:v", "libx264", "-g", "10",
                        "-bf", "2", "-x264-params", "b-pyramid=none:scenecut=0", "-pix_fmt", "yuv420p",
                        "-f", "mpegts", cls.ts], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_aligned_cut_keeps_frames_apart(self):
        data = open(self.ts, "rb").read()
        vpid = packetize.video_pid(packetize.ts_packets(data))
        dg = packetize.cut_aligned(data)
        self.assertEqual(b"".join(dg), data)
        for d in dg:
            self.assertLessEqual(len(d), 1316)
            pk = packetize.ts_packets(d)
            starts = [i for i, p in enumerate(pk) if packetize.pid_of(p) == vpid and packetize.pusi(p)]
            self.assertLessEqual(len(starts), 1)
            if starts:  # a frame starts a datagram, after PSI only
                self.assertTrue(all(packetize.pid_of(p) != vpid for p in pk[:starts[0]]))
        self.assertEqual(b"".join(packetize.cut_every7(data)), data)

    def test_lost_frame_is_frozen(self):
        data = open(self.ts, "rb").read()
        ref, ref_pts = decode.decode_luma(self.ts, 160, 120)
        self.assertEqual(len(ref), 20)
        # Drop the datagrams of the first B frame (non-reference: no
        # b-pyramid): the first packet, in decode order, whose PTS is lower
        # than its predecessor's.
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "packet=pts", "-of", "csv=p=0", self.ts], capture_output=True, text=True).stdout
        pkt_pts = [int(x.strip(",")) for x in out.split() if x.strip(",")]
        victim = next(i for i in range(1, len(pkt_pts)) if pkt_pts[i] < pkt_pts[i - 1]) + 1  # 1-based
        pk = packetize.ts_packets(data)
        vpid = packetize.video_pid(pk)
        dg = packetize.cut_aligned(data)
        frame_of, f = [], 0
        for d in dg:
            if any(packetize.pid_of(p) == vpid and packetize.pusi(p) for p in packetize.ts_packets(d)):
                f += 1
            frame_of.append(f)
        kept = b"".join(d for d, fr in zip(dg, frame_of) if fr != victim)
        lossy = os.path.join(self.dir, "lossy.ts")
        open(lossy, "wb").write(kept)
        recv, recv_pts = decode.decode_luma(lossy, 160, 120)
        self.assertEqual(len(recv), 19)
        missing = sorted(set(ref_pts) - set(recv_pts))
        self.assertEqual(len(missing), 1)
        r = metrics.evaluate(ref, ref_pts, recv, recv_pts)
        self.assertEqual(r["frames_lost"], 1)
        order = sorted(range(len(ref)), key=lambda i: ref_pts[i])
        k = [ref_pts[i] for i in order].index(missing[0])
        prev = ref[order[k - 1]]
        expect = metrics.frame_mse(ref[order[k]], prev) / len(ref)
        self.assertAlmostEqual(r["mse"], expect, places=6)
        self.assertEqual(r["frames_identical"], 19)


def gop_frames(pattern, sizes, start_pts=0):
    """Frames in decode order from a presentation-order pattern such as
    "IBBPBBP" (B frames not references: each B after the P that follows it
    in presentation), with sizes by presentation index."""
    disp = list(pattern)
    dec = []
    pending_b = []
    for i, k in enumerate(disp):
        if k == "B":
            pending_b.append(i)
        else:
            dec.append(i)
            dec += pending_b
            pending_b = []
    dec += pending_b
    frames = [bound.Frame(n, start_pts + i, disp[i], sizes[i]) for n, i in enumerate(dec)]
    return bound.link(frames)


def greedy_of(values, pattern, sizes):
    """A Greedy over frames whose content is a constant luma value each
    (presentation order), with the evaluation's MSE."""
    frames = gop_frames(pattern, sizes)
    imgs = [const(v) for v in values]
    black = const(0)
    return frames, imgs, bound.Greedy(frames, lambda i, j: metrics.frame_mse(imgs[i], imgs[j] if j >= 0 else black))


def kept_after(frames, steps, upto):
    dropped = set()
    for u, _, _ in steps[:upto]:
        dropped.update(u)
    return dropped


class OfflineBound(unittest.TestCase):
    def test_drops_least_loss_per_byte_b_frame_first(self):
        # I B B P B B P (presentation). Dropping a B shows the frame before it:
        # its MSE is (v_i - v_{i-1})^2. Per byte: B1 16/100, B2 4/400 (the
        # cheapest per byte, though not the least MSE), B4 400/100, B5 1/10
        # (the least MSE and the fewest bytes).
        values = [10, 14, 16, 30, 50, 51, 60]
        sizes = [1000, 100, 400, 500, 100, 10, 500]
        frames, imgs, g = greedy_of(values, "IBBPBBP", sizes)
        steps = g.run(min_bandwidth=0.99)
        first = frames[steps[0][0][0]]
        self.assertEqual((first.kind, first.disp), ("B", 2))
        self.assertEqual(len(steps[0][0]), 1)
        self.assertAlmostEqual(steps[0][2], 4 / 7)
        self.assertAlmostEqual(steps[0][1], 1 - 400 / sum(sizes))

    def test_a_p_frame_goes_with_the_rest_of_its_gop(self):
        # A still scene: every B and P unit costs no MSE, and at equal cost
        # per byte the largest unit goes first: the P at 3 with the B frames
        # displayed before it (decoded after it) and everything after it.
        values = [10] * 7
        sizes = [1000, 10, 10, 800, 10, 10, 800]
        frames, imgs, g = greedy_of(values, "IBBPBBP", sizes)
        steps = g.run(min_bandwidth=0.9)
        unit = {frames[d].disp for d in steps[0][0]}
        self.assertEqual(unit, {1, 2, 3, 4, 5, 6}, "P at 3 drops every later frame of its GOP in decode order")

    def test_dependencies_are_honoured_and_mse_is_the_evaluations(self):
        rng = np.random.default_rng(7)
        pattern = "IBBPBBPBBP" * 3
        values = [int(v) for v in rng.integers(0, 255, len(pattern))]
        sizes = [int(s) for s in rng.integers(100, 5000, len(pattern))]
        frames, imgs, g = greedy_of(values, pattern, sizes)
        steps = g.run(min_bandwidth=0.0)
        self.assertEqual(steps[-1][1], 0.0, "the greedy runs until everything is dropped")
        pts = [f.pts for f in sorted(frames, key=lambda f: f.disp)]
        for k in range(1, len(steps) + 1):
            dropped = kept_after(frames, steps, k)
            for gop in {f.gop for f in frames}:
                seq = [f for f in frames if f.gop == gop]  # decode order
                gone = False
                for f in seq:
                    if gone:
                        self.assertIn(f.dec, dropped, f"step {k}: frame {f.dec} ({f.kind}) kept after a "
                                                      "dropped reference of its GOP")
                    if f.kind != "B" and f.dec in dropped:
                        gone = True
            kept = [f for f in sorted(frames, key=lambda f: f.disp) if f.dec not in dropped]
            r = metrics.evaluate(imgs, pts, [imgs[f.disp] for f in kept], [f.pts for f in kept])
            self.assertAlmostEqual(steps[k - 1][2], r["mse"], places=6)
            self.assertAlmostEqual(steps[k - 1][1], sum(f.size for f in kept) / sum(sizes))

    def test_the_pixel_blind_greedy_freezes_fewest_frames_per_byte(self):
        # I B B P B B P; the scene changes at 4. Dropping P6 freezes 4, 5, 6
        # (3 frames for 1100 bytes); P3 freezes 1..6 (6 for 1900); the I
        # all 7 (for 2200); a B one for 100. The pixel-blind greedy (a frozen frame costs 1) drops
        # P6's tail first; the bound, seeing that 4..6 differ from 3, drops
        # a B frame of the still part instead.
        values = [10, 10, 10, 10, 200, 200, 200]
        sizes = [300, 100, 100, 600, 100, 100, 900]
        frames, imgs, g = greedy_of(values, "IBBPBBP", sizes)
        blind = bound.Greedy(frames, lambda i, j: 1.0)
        steps = blind.run(min_bandwidth=0.9)
        self.assertEqual({frames[d].disp for d in steps[0][0]}, {4, 5, 6})
        self.assertAlmostEqual(steps[0][2], 3 / 7, msg="its cost is the share of frames frozen")
        steps = g.run(min_bandwidth=0.9)
        first = frames[steps[0][0][0]]
        self.assertEqual((len(steps[0][0]), first.kind), (1, "B"))
        self.assertIn(first.disp, (1, 2))
        self.assertAlmostEqual(steps[0][2], 0.0)

    def test_selection_within_a_bandwidth(self):
        rng = np.random.default_rng(3)
        pattern = "IBBPBBPBBP" * 4
        values = [int(v) for v in rng.integers(0, 255, len(pattern))]
        sizes = [int(s) for s in rng.integers(100, 5000, len(pattern))]
        frames, imgs, g = greedy_of(values, pattern, sizes)
        targets = [0.9, 0.76, 0.5, 0.3]
        steps = g.run(min_bandwidth=0.2, targets=targets)
        pts = [f.pts for f in sorted(frames, key=lambda f: f.disp)]
        for b in targets:
            dropped, bw, mse = g.best[b]
            self.assertLessEqual(bw, b + 1e-12)
            kept = [f for f in sorted(frames, key=lambda f: f.disp) if f.dec not in dropped]
            self.assertAlmostEqual(bw, sum(f.size for f in kept) / sum(sizes))
            r = metrics.evaluate(imgs, pts, [imgs[f.disp] for f in kept], [f.pts for f in kept])
            self.assertAlmostEqual(mse, r["mse"], places=6)
            # Never worse than the greedy's own first state within b.
            first = next(s for s in steps if s[1] <= b + 1e-12)
            self.assertLessEqual(mse, first[2] + 1e-9)

    def test_open_gop_is_refused(self):
        frames = [bound.Frame(0, 3, "I", 10), bound.Frame(1, 1, "B", 1)]
        with self.assertRaisesRegex(ValueError, "open GOP"):
            bound.link(frames)


class PerOrderReport(unittest.TestCase):
    def rows(self):
        base = {"clip": "vtest", "cut": "aligned", "run": 0, "hog_recall": 0.9, "sift_share": 0.9}
        return [dict(base, policy="keep", p=0.0, bandwidth=1.0, psnr=math.inf),
                dict(base, policy="frame_aware", p=0.1, bandwidth=0.9, psnr=30.0),
                dict(base, policy="frame_aware/tail", p=0.1, bandwidth=0.8, psnr=28.0),
                dict(base, policy="frame_aware/thin", p=0.1, bandwidth=0.85, psnr=29.0)]

    def test_orders_are_their_own_curves(self):
        agg = report.aggregate(self.rows())
        self.assertEqual(report.policy_kinds(k[2] for k in agg),
                         ["frame_aware", "frame_aware/tail", "frame_aware/thin"])
        self.assertEqual(report.curve(agg, "vtest", "aligned", "frame_aware/tail", "psnr"),
                         [(0.8, 28.0, 0.0), (1.0, math.inf, 0.0)])

    def test_gap_is_bound_minus_online_at_the_points_bandwidth(self):
        agg = report.aggregate(self.rows())
        pts = [{"at": b, "bandwidth": b - 0.001, "psnr": p, "hog_recall": 0.95, "sift_share": None}
               for b, p in ((0.9, 31.5), (0.8, 30.0), (0.85, 29.5))]
        gp = {g["policy"]: g for g in report.gaps(agg, {"vtest": {"points": pts}})}
        self.assertEqual(set(gp), {"frame_aware", "frame_aware/tail", "frame_aware/thin"})
        self.assertAlmostEqual(gp["frame_aware"]["gap_psnr"], 1.5)
        self.assertAlmostEqual(gp["frame_aware/tail"]["gap_psnr"], 2.0)
        self.assertAlmostEqual(gp["frame_aware/thin"]["gap_hog_recall"], 0.05)
        self.assertIsNone(gp["frame_aware"]["gap_sift_share"])


@unittest.skipUnless(shutil.which("ffmpeg") and shutil.which("ffprobe"), "ffmpeg not installed")
class BoundOnRealStream(unittest.TestCase):
    """The bound of a tiny H.264 clip: frames and bytes from the frame-aligned
    capture, and a selection cut from the TS decodes to exactly its frames."""

    def test_bound_of_a_clip(self):
        d = tempfile.mkdtemp(prefix="qocnet-bound-")
        self.addCleanup(shutil.rmtree, d, True)
        ts, pcap = os.path.join(d, "clip.ts"), os.path.join(d, "clip.aligned.pcap")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=160x120:rate=10", "-t", "3", "-c:v", "libx264", "-g", "10",
                        "-bf", "2", "-x264-params", "b-pyramid=none:scenecut=0:b-adapt=0", "-pix_fmt", "yuv420p",
                        "-f", "mpegts", ts], check=True)
        with open(ts, "rb") as f:
            dgs = packetize.cut_aligned(f.read())
        packetize.write_pcap(pcap, dgs)
        r = bound.compute("clip", ts, pcap, 0, False, [0.8], d, log=lambda *a: None)
        self.assertEqual(r["frames"], 30)
        self.assertEqual(r["total_bytes"], sum(len(x) + 42 for x in dgs))
        self.assertTrue(r["check"]["ok"], r["check"])
        self.assertLess(r["check"]["frames_kept"], 30)
        p08 = [p for p in r["points"] if p["at"] == 0.8][0]
        self.assertLessEqual(p08["bandwidth"], 0.8)
        self.assertGreater(p08["frames_lost"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
