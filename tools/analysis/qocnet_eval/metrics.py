# SPDX-License-Identifier: Apache-2.0
"""Quality of what a computation process received, against the loss-free
decode of the same stream.

* Frames are matched by PTS. A frame of the loss-free decode whose PTS the
  received decode lacks was lost entirely: the previous frame shown (in
  presentation order) is shown again — a black frame before any arrived.
* PSNR is that of the mean luma MSE over all frames (a frame identical to the
  reference counts with its MSE of 0); +inf when every frame is identical.
* HOG recall: OpenCV's people detector on the shown frame against its boxes
  on the loss-free frame; a reference box counts as found if a box of the
  shown frame overlaps it with IoU >= 0.5 (greedy one-to-one matching).
* SIFT share: the loss-free frame's SIFT features that still find a match in
  the shown frame under Lowe's ratio test (0.75).

HOG and SIFT run on sampled frames (every k-th, k given by the caller) and
their results are cached by frame content, so frames identical to ones seen
before (undamaged or frozen frames) cost nothing.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

try:
    import cv2
except ImportError as e:  # pragma: no cover - depends on the machine
    raise SystemExit("qocnet_eval needs python3-opencv (apt-get install -y python3-opencv) "
                     f"for /usr/bin/python3: {e}")

RATIO = 0.75
IOU_MIN = 0.5
# HOG: people in the 640x480 clips are 50-130 px tall, below the detector's
# 128-px window, so frames are upscaled 1.5x and searched over 6 pyramid
# levels 1.1 apart (windows of 128-206 px at 1.5x: people of 85-137 px).
HOG_UPSCALE = 1.5
HOG_LEVELS = 6
HOG_SCALE = 1.1
# SIFT on frames downscaled 2x (320x240), at most 500 features per frame.
SIFT_DOWNSCALE = 2
SIFT_FEATURES = 500


def align_by_pts(ref_pts, recv_pts):
    """For each reference frame (in the order given, presentation order), the
    index of the received frame to show: the one with the same PTS, else the
    one shown for the previous reference frame; -1 before anything arrived.
    Received frames whose PTS is not in the reference are ignored; a PTS
    received twice uses its first frame."""
    where = {}
    for j, p in enumerate(recv_pts):
        if p is not None and p not in where:
            where[p] = j
    shown, last, lost = [], -1, 0
    for p in ref_pts:
        j = where.get(p)
        if j is None:
            lost += 1
        else:
            last = j
        shown.append(last)
    return shown, lost


def shown_frames(ref, recv, shown):
    """The frame shown for each reference frame (black before any arrived)."""
    black = np.zeros_like(ref[0])
    return [recv[j] if j >= 0 else black for j in shown]


def frame_mse(a, b):
    d = a.astype(np.int32) - b.astype(np.int32)
    return float(np.mean(d * d))


def psnr_of_mse(mse):
    return math.inf if mse <= 0 else 10 * math.log10(255.0 ** 2 / mse)


def mean_mse(ref, recv, shown):
    """Mean luma MSE over all reference frames, with frame freezing."""
    cache = {}
    total = 0.0
    for i, j in enumerate(shown):
        key = (i, j)
        if key not in cache:
            cache[key] = frame_mse(ref[i], recv[j] if j >= 0 else np.zeros_like(ref[i]))
        total += cache[key]
    return total / len(shown) if shown else 0.0


def iou(a, b):
    """IoU of two boxes (x, y, w, h)."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match_boxes(ref_boxes, boxes, thr=IOU_MIN):
    """How many reference boxes a box of `boxes` matches with IoU >= thr,
    greedily by IoU, each box used once."""
    pairs = sorted(((iou(r, b), i, j) for i, r in enumerate(ref_boxes) for j, b in enumerate(boxes)),
                   reverse=True)
    used_r, used_b, n = set(), set(), 0
    for v, i, j in pairs:
        if v < thr:
            break
        if i in used_r or j in used_b:
            continue
        used_r.add(i)
        used_b.add(j)
        n += 1
    return n


def frame_key(img):
    return hashlib.blake2b(np.ascontiguousarray(img).data, digest_size=16).digest()


@dataclass
class Detectors:
    """HOG and SIFT with caches by frame content (shared by every analysis
    in a process)."""
    hog_cache: dict = field(default_factory=dict)
    sift_cache: dict = field(default_factory=dict)
    match_cache: dict = field(default_factory=dict)

    def __post_init__(self):
        self.hog = cv2.HOGDescriptor((64, 128), (16, 16), (8, 8), (8, 8), 9, 1, -1.0,
                                     cv2.HOGDescriptor_L2Hys, 0.2, False, HOG_LEVELS)
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.sift = cv2.SIFT_create(nfeatures=SIFT_FEATURES)
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def people(self, img, key=None):
        key = key or frame_key(img)
        if key not in self.hog_cache:
            big = cv2.resize(img, None, fx=HOG_UPSCALE, fy=HOG_UPSCALE, interpolation=cv2.INTER_LINEAR)
            rects, _ = self.hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=HOG_SCALE)
            self.hog_cache[key] = [tuple(float(v) / HOG_UPSCALE for v in r) for r in rects]
        return self.hog_cache[key]

    def features(self, img, key=None):
        key = key or frame_key(img)
        if key not in self.sift_cache:
            small = cv2.resize(img, (img.shape[1] // SIFT_DOWNSCALE, img.shape[0] // SIFT_DOWNSCALE),
                               interpolation=cv2.INTER_AREA)
            kp, desc = self.sift.detectAndCompute(small, None)
            self.sift_cache[key] = (len(kp), desc)
        return self.sift_cache[key]

    def sift_matched(self, ref_img, img, ref_key=None, key=None):
        """(reference features, of them matched in img)."""
        ref_key = ref_key or frame_key(ref_img)
        key = key or frame_key(img)
        if (ref_key, key) not in self.match_cache:
            n_ref, d_ref = self.features(ref_img, ref_key)
            _, d = self.features(img, key)
            good = 0
            if n_ref and d is not None and len(d) >= 2:
                for m in self.matcher.knnMatch(d_ref, d, k=2):
                    if len(m) == 2 and m[0].distance < RATIO * m[1].distance:
                        good += 1
            self.match_cache[(ref_key, key)] = (n_ref, good)
        return self.match_cache[(ref_key, key)]


def evaluate(ref, ref_pts, recv, recv_pts, det: Detectors | None = None, sample_every=0, hog=True, sift=True):
    """Quality of a received decode against the loss-free one. `ref` and
    `recv` are lists of 2-D uint8 luma frames; `*_pts` their PTS. HOG and
    SIFT run on every `sample_every`-th reference frame (0: none)."""
    order = sorted(range(len(ref_pts)), key=lambda i: ref_pts[i])
    ref = [ref[i] for i in order]
    ref_pts = [ref_pts[i] for i in order]
    shown, lost = align_by_pts(ref_pts, recv_pts)
    mse = mean_mse(ref, recv, shown)
    out = {"frames": len(ref), "frames_lost": lost, "mse": mse, "psnr": psnr_of_mse(mse),
           "frames_identical": sum(1 for i, j in enumerate(shown) if j >= 0 and np.array_equal(ref[i], recv[j]))}
    if sample_every and det is not None:
        black = np.zeros_like(ref[0])
        n_ref_boxes = n_found = n_feat = n_matched = 0
        for i in range(0, len(ref), sample_every):
            img = recv[shown[i]] if shown[i] >= 0 else black
            rk, k = frame_key(ref[i]), frame_key(img)
            if hog:
                rb = det.people(ref[i], rk)
                n_ref_boxes += len(rb)
                n_found += len(rb) if rk == k else match_boxes(rb, det.people(img, k))
            if sift:
                a, b = det.sift_matched(ref[i], img, rk, k)
                n_feat += a
                n_matched += b
        if hog:
            out["hog_boxes"] = n_ref_boxes
            out["hog_recall"] = n_found / n_ref_boxes if n_ref_boxes else math.nan
        if sift:
            out["sift_features"] = n_feat
            out["sift_share"] = n_matched / n_feat if n_feat else math.nan
        out["sampled_frames"] = len(range(0, len(ref), sample_every))
    return out
