# SPDX-License-Identifier: Apache-2.0
"""Unit tests of the demo's analysis processes (examples/analytics): the
QoC window and when it is reported, count accuracy, matching live frames to
the reference samples by PTS with frame freezing, the recorder's continuity
check, and the live decoder on a real clip. No root, no qocnetd.

  /usr/bin/python3 test/demo/test_analytics.py
"""
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "analytics"))

import analytics  # noqa: E402
import bandwidth  # noqa: E402
import windows  # noqa: E402


class MonitorPolicyText(unittest.TestCase):
    def test_short_policy_keeps_the_drop_order(self):
        import demo_monitor
        from qocnet.v1 import types_pb2
        tail = types_pb2.Policy(kind=types_pb2.POLICY_KIND_FRAME_AWARE, drop=0.3333,
                                order=types_pb2.DROP_ORDER_TAIL)
        disp = types_pb2.Policy(kind=types_pb2.POLICY_KIND_FRAME_AWARE, drop=0.3333)
        keep = types_pb2.Policy(kind=types_pb2.POLICY_KIND_KEEP)
        self.assertEqual(demo_monitor.short_policy(tail), "frame_aware(0.33,tail)")
        self.assertEqual(demo_monitor.short_policy(disp), "frame_aware(0.33)")
        self.assertEqual(demo_monitor.short_policy(keep), "keep")


class Window(unittest.TestCase):
    def test_ratio_of_sums_not_mean_of_ratios(self):
        w = analytics.QocWindow(window_s=10)
        w.add(1, 1, now=0)    # 1/1
        w.add(0, 3, now=1)    # 0/3
        self.assertAlmostEqual(w.measured(now=1), 0.25)
        self.assertAlmostEqual(w.overall(), 0.25)

    def test_old_samples_leave_the_window_but_not_the_total(self):
        w = analytics.QocWindow(window_s=5)
        w.add(0, 4, now=0)
        w.add(4, 4, now=10)
        self.assertEqual(w.measured(now=10), 1.0)
        self.assertAlmostEqual(w.overall(), 0.5)

    def test_nothing_expected_is_no_value(self):
        w = analytics.QocWindow()
        self.assertIsNone(w.measured(now=0))
        w.add(0, 0, now=0)  # a frame with nobody on it
        self.assertIsNone(w.measured(now=0))
        self.assertIsNone(w.overall())

    def test_found_is_capped_by_expected_and_lossless(self):
        w = analytics.QocWindow(lossless=0.95)
        w.add(5, 3, now=0)
        self.assertEqual(w.measured(now=0), 0.95)

    def test_negative_counts_are_refused(self):
        with self.assertRaises(ValueError):
            analytics.QocWindow().add(-1, 2)


class Reporting(unittest.TestCase):
    def test_reports_every_interval_with_fresh_samples_only(self):
        w = analytics.QocWindow(window_s=100)
        r = analytics.Reporter(every_s=5, min_samples=2, start=0)
        w.add(1, 1, now=1)
        w.add(1, 2, now=2)
        self.assertIsNone(r.due(w, now=4))            # not yet time
        self.assertAlmostEqual(r.due(w, now=5), 2 / 3)
        self.assertIsNone(r.due(w, now=6))            # reported already
        w.add(1, 1, now=7)
        self.assertIsNone(r.due(w, now=10))           # one fresh sample is too few
        w.add(1, 1, now=11)
        self.assertIsNone(r.due(w, now=12))           # interval restarted at 10
        self.assertAlmostEqual(r.due(w, now=15), 4 / 5)

    def test_starved_window_reports_nothing(self):
        w = analytics.QocWindow()
        r = analytics.Reporter(every_s=1, min_samples=1, start=0)
        self.assertIsNone(r.due(w, now=2))


class CountAccuracy(unittest.TestCase):
    def test_cases(self):
        self.assertEqual(analytics.count_accuracy(0, 0), (1.0, 1.0))
        self.assertEqual(analytics.count_accuracy(3, 4), (3.0, 4.0))
        self.assertEqual(analytics.count_accuracy(5, 4), (4.0, 5.0))  # phantom people cost too
        self.assertEqual(analytics.count_accuracy(0, 2), (0.0, 2.0))
        with self.assertRaises(ValueError):
            analytics.count_accuracy(-1, 0)


class Matcher(unittest.TestCase):
    def run_matcher(self, samples, received):
        out = []
        m = analytics.SampleMatcher(samples, lambda pts, frame, frozen: out.append((pts, frame, frozen)))
        for pts, frame in received:
            m.feed(pts, frame)
        return m, out

    def test_sample_received_is_shown(self):
        m, out = self.run_matcher([10, 30], [(0, "a"), (10, "b"), (20, "c"), (30, "d")])
        self.assertEqual(out, [(10, "b", False), (30, "d", False)])
        self.assertEqual(m.matched, 2)

    def test_lost_sample_shows_the_previous_frame(self):
        m, out = self.run_matcher([10, 20, 30], [(0, "a"), (30, "d")])
        self.assertEqual(out, [(10, "a", True), (20, "a", True), (30, "d", False)])
        self.assertEqual(m.frozen, 2)

    def test_samples_before_the_first_frame_are_not_loss(self):
        _, out = self.run_matcher([0, 10, 20], [(15, "x"), (20, "y")])
        self.assertEqual(out, [(20, "y", False)])

    def test_duplicate_and_late_frames_are_not_shown(self):
        m, out = self.run_matcher([10, 20], [(10, "a"), (10, "dup"), (5, "late"), (20, "b")])
        self.assertEqual(out, [(10, "a", False), (20, "b", False)])
        self.assertEqual(m.out_of_order, 2)

    def test_frames_without_pts_are_ignored(self):
        _, out = self.run_matcher([10], [(None, "n"), (10, "a")])
        self.assertEqual(out, [(10, "a", False)])


def ts_packet(pid, cc, payload=True):
    afc = 0x1 if payload else 0x2
    return bytes([0x47, (pid >> 8) & 0x1F, pid & 0xFF, (afc << 4) | (cc & 0xF)]) + bytes(184)


class ContinuityCheck(unittest.TestCase):
    def test_loss_free_copy_is_complete(self):
        c = analytics.Continuity()
        for cc in range(40):
            c.feed(ts_packet(0x100, cc) + ts_packet(0, cc))
        self.assertEqual((c.packets, c.missing, c.gaps), (80, 0, 0))
        self.assertEqual(c.completeness(), 1.0)

    def test_gap_counts_missing_packets(self):
        c = analytics.Continuity()
        c.feed(b"".join(ts_packet(0x100, cc) for cc in (0, 1, 2, 6, 7)))  # 3, 4, 5 lost
        self.assertEqual((c.packets, c.missing, c.gaps), (5, 3, 1))
        self.assertAlmostEqual(c.completeness(), 5 / 8)

    def test_wraps_and_duplicates_and_adaptation_only(self):
        c = analytics.Continuity()
        c.feed(b"".join(ts_packet(0x100, cc) for cc in (14, 15, 0, 0, 1)))  # wrap + duplicate 0
        c.feed(ts_packet(0x100, 1, payload=False))  # no payload: counter stays
        c.feed(ts_packet(0x100, 2))
        self.assertEqual((c.missing, c.gaps), (0, 0))

    def test_null_packets_and_bad_sync(self):
        c = analytics.Continuity()
        c.feed(ts_packet(0x1FFF, 5) + b"\x00" * 188)
        self.assertEqual((c.packets, c.bad), (0, 1))


class ReadExact(unittest.TestCase):
    def test_joins_short_reads(self):
        class Trickle(io.RawIOBase):
            def __init__(self, data):
                self.data = data

            def readinto(self, b):
                n = min(3, len(b), len(self.data))
                b[:n], self.data = self.data[:n], self.data[n:]
                return n

        f = Trickle(b"0123456789")
        self.assertEqual(analytics.read_exact(f, 8), b"01234567")
        self.assertIsNone(analytics.read_exact(f, 8))  # 2 bytes left: the stream ended mid-frame


class Bandwidth(unittest.TestCase):
    """The summary compares naive, replication and qocnet over the same
    seconds: a sensor streaming at keep before anyone consumes its stream
    once put qocnet above replication in a short run."""

    def test_seconds_without_consumers_count_for_no_scheme(self):
        st = bandwidth.new_totals()
        for _ in range(5):  # nobody registered yet: the sensor sends everything
            bandwidth.account(st, d_full=1000, d_sent=1000, d_link=1040, n=0)
        for _ in range(3):  # two processes; the sensor drops 30 %
            bandwidth.account(st, d_full=1000, d_sent=700, d_link=728, n=2)
        self.assertEqual(st["naive"], 6000)
        self.assertEqual(st["replication"], 3000)
        self.assertEqual(st["qocnet"], 2100)
        self.assertEqual(st["link"], 728 * 3)
        self.assertEqual(st["unconsumed"], 5000)
        self.assertEqual(st["unconsumed_link"], 5200)
        self.assertGreaterEqual(st["naive"], st["replication"])
        self.assertGreaterEqual(st["replication"], st["qocnet"])


class Windows(unittest.TestCase):
    """The summary's per-window figures (windows.py): buckets of 0.1 s
    (bucket b covers [b / 10, (b + 1) / 10) s), 5-s windows after a 10-s
    warm-up from start = 100 s."""

    def test_share_is_over_measured_whole_windows_after_the_warm_up(self):
        qoc = [[1050, 0, 5],          # t = 105: in the warm-up, ignored
               [1100, 9, 10],         # window 0 [110, 115): 0.9 (>= 0.9: met)
               [1160, 4, 5], [1170, 0, 5],   # window 1: 4/10 (ratio of sums), not met
               # window 2 [120, 125): no samples: unmeasured
               [1250, 5, 5],          # window 3: met
               [1310, 5, 5]]          # t = 131: window 4 [130, 135) is not whole (end 133)
        rx = [[1100, 10, 13160], [1200, 1, 500], [1310, 99, 99999]]
        f = windows.figures(qoc, rx, [[90.0, 0.2, "frame_aware(0.2)"]], start=100.0, end=133.0,
                            required=0.9)
        self.assertEqual([w["start_s"] for w in f["list"]], [10, 15, 20, 25])
        self.assertEqual([w["qoc"] for w in f["list"]], [0.9, 0.4, None, 1.0])
        self.assertEqual((f["windows"], f["measured"], f["met"]), (4, 3, 2))
        self.assertAlmostEqual(f["share_met"], 0.6667)
        self.assertEqual(f["list"][0]["bytes"], 13160)
        self.assertEqual(f["list"][2]["bytes"], 500)
        self.assertAlmostEqual(f["mean_mbps"], (13160 + 500) * 8 / 20 / 1e6, places=4)

    def test_least_is_the_largest_drop_whose_windows_meet_on_average(self):
        # Windows at drop 0.1 (QoC .95, .93: mean .94, 2 Mbit/s), 0.3 (.91, .89:
        # mean .90, 1 Mbit/s), 0.5 (.80: 0.5 Mbit/s). Required 0.9: least is 0.3.
        per = [(0.1, 0.95, 2.0), (0.1, 0.93, 2.0), (0.3, 0.91, 1.0), (0.3, 0.89, 1.0), (0.5, 0.80, 0.5)]
        qoc, rx, pol = [], [], []
        for i, (drop, q, mbps) in enumerate(per):
            t = 10 + 5 * i
            pol.append([t, drop, f"frame_aware({drop})"])
            qoc.append([t * 10 + 1, q * 100, 100])
            rx.append([t * 10 + 1, 1, int(mbps * 1e6 / 8 * 5)])
        f = windows.figures(qoc, rx, pol, start=0.0, end=35.0, required=0.9)
        self.assertEqual([g["drop"] for g in f["groups"]], [0.1, 0.3, 0.5])
        self.assertEqual(f["least_drop"], 0.3)
        self.assertAlmostEqual(f["least_mbps"], 1.0, places=3)
        self.assertAlmostEqual(f["mean_mbps"], 6.5 / 5, places=3)
        self.assertAlmostEqual(f["over_least"], 0.3, places=3)  # 1.3 Mbit/s over 1.0
        self.assertAlmostEqual(f["share_met"], 0.6)

    def test_a_window_takes_the_policy_it_had_longest(self):
        pol = [[0.0, 0.1, "frame_aware(0.1)"], [11.0, 0.4, "frame_aware(0.4)"], [19.0, 0.2, "frame_aware(0.2)"]]
        f = windows.figures([], [], pol, start=0.0, end=25.0, required=0.5)
        # [10, 15): 1 s at 0.1, 4 s at 0.4; [15, 20): 4 s at 0.4; [20, 25): 0.2
        self.assertEqual([w["drop"] for w in f["list"]], [0.4, 0.4, 0.2])

    def test_keep_is_zero_over_the_least_and_nothing_met_has_no_figure(self):
        f = windows.figures([[110, 3, 3]], [[110, 1, 1000]], [[0, 0.0, "keep"]], 0.0, 20.0, required=1.0)
        self.assertEqual(f["over_least"], 0.0)
        self.assertEqual(f["share_met"], 1.0)
        f = windows.figures([[110, 1, 3]], [[110, 1, 1000]], [[0, 0.3, "frame_aware(0.3)"]], 0.0, 20.0,
                            required=0.9)
        self.assertIsNone(f["over_least"])
        self.assertIn("no drop rate", f["least_reason"])
        self.assertEqual(f["share_met"], 0.0)

    def test_no_whole_window_gives_no_figures(self):
        f = windows.figures([[110, 1, 1]], [], [], start=0.0, end=14.0, required=0.5)
        self.assertEqual(f["windows"], 0)
        self.assertIsNone(f["share_met"])
        self.assertIsNone(f["mean_mbps"])


class Timelines(unittest.TestCase):
    def test_buckets_sum_and_policies_log_changes_only(self):
        tl = analytics.Timeline(step=0.1)
        tl.sample("s", 3, 2, at=10.01)   # found capped by expected
        tl.sample("s", 1, 4, at=10.09)
        tl.sample("s", 1, 1, at=10.11)
        tl.received("10.0.0.1:4000", 1316, at=10.05)
        tl.received("10.0.0.1:4000", 100, at=10.06)
        tl.policy("s", 0.2, "frame_aware(0.2)", at=1.0)
        tl.policy("s", 0.2, "frame_aware(0.2)", at=2.0)
        tl.policy("s", 0.3, "frame_aware(0.3)", at=3.0)
        e = tl.export()
        self.assertEqual(e["qoc"]["s"], [[100, 3.0, 6.0], [101, 1.0, 1.0]])
        self.assertEqual(e["rx"]["10.0.0.1:4000"], [[100, 2, 1416]])
        self.assertEqual(e["policy"]["s"], [[1.0, 0.2, "frame_aware(0.2)"], [3.0, 0.3, "frame_aware(0.3)"]])


class ReceiverDrain(unittest.TestCase):
    """A process stops its receiver after unregistering; what the edge sent
    before is still queued in the socket and must be counted (the demo
    compares the count with the edge's, exactly)."""

    def test_datagrams_queued_at_stop_are_counted(self):
        got = []
        tl = analytics.Timeline()
        r = analytics.UdpReceiver("127.0.0.1", 0, lambda data, src: got.append(src), tl)
        port = r.sock.getsockname()[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(50):
            tx.sendto(bytes(100 + i), ("127.0.0.1", port))
        tx.close()
        r.stopping.set()  # stopped before its loop read any of them
        r.start()
        r.stop()
        counts = r.counts()
        self.assertEqual(sum(c["datagrams"] for c in counts.values()), 50)
        self.assertEqual(len(got), 50)
        self.assertEqual(sum(b[1] for v in tl.export()["rx"].values() for b in v), 50)


@unittest.skipUnless(shutil.which("ffmpeg"), "ffmpeg is not installed")
class LiveDecode(unittest.TestCase):
    def test_frames_and_pts_of_a_piped_clip_match_the_reference(self):
        with tempfile.TemporaryDirectory() as d:
            ts = os.path.join(d, "clip.ts")
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                            "testsrc=size=640x480:rate=10:duration=3", "-c:v", "libx264", "-g", "10",
                            "-bf", "2", "-pix_fmt", "yuv420p", "-f", "mpegts", ts], check=True)
            ref = analytics.reference_samples(ts, 7)
            self.assertEqual(len(ref), 5)  # frames 0, 7, 14, 21, 28 of 30
            got = []
            dec = analytics.LiveDecoder(lambda pts, frame: got.append((pts, frame)))
            with open(ts, "rb") as f:
                data = f.read()
            for i in range(0, len(data), 1316):
                dec.write(data[i:i + 1316])
            dec.close()
            self.assertEqual(len(got), 30)
            pts = [p for p, _ in got]
            self.assertEqual(pts, sorted(pts))
            by_pts = dict(got)
            for p, frame in ref.items():
                self.assertTrue(analytics.same(frame, by_pts[p]), f"frame at PTS {p} differs")


if __name__ == "__main__":
    unittest.main()
