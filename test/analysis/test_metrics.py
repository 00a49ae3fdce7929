"""Unit tests of the evaluation's analysis (tools/analysis/qocnet_eval):
frame matching by PTS, PSNR with frame freezing, detection matching (IoU),
the frame-aligned packetizer and a decode of a clip with a frame cut out.

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

from qocnet_eval import decode, metrics, packetize  # noqa: E402


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
