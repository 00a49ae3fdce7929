# SPDX-License-Identifier: Apache-2.0
"""Analysis jobs run in worker processes: decode a received TS and measure it
against the loss-free decode of its clip. Decodes and detector results are
cached per worker; identical received files are analysed once."""
from __future__ import annotations

import hashlib
import math
import os

from . import decode, metrics

try:
    import cv2
    cv2.setNumThreads(1)
except ImportError:  # metrics reports it
    pass

_REF = {}
_DET = None
_BY_FILE = {}


def file_digest(path):
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def analyse(job):
    """job: dict with ref (loss-free .ts), file (received .ts), sample_every,
    hog (bool). Returns the metrics dict, plus the job's own keys."""
    global _DET
    if _DET is None:
        _DET = metrics.Detectors()
    ref_path = job["ref"]
    if ref_path not in _REF:
        _REF.clear()
        _BY_FILE.clear()
        _DET = metrics.Detectors()  # fresh caches per clip
        _REF[ref_path] = decode.decode_luma(ref_path)
    ref, ref_pts = _REF[ref_path]
    digest = file_digest(job["file"]) if os.path.getsize(job["file"]) else "empty"
    key = (ref_path, digest, job["sample_every"], job["hog"])
    if key not in _BY_FILE:
        if digest == "empty":
            recv, recv_pts = [], []
        else:
            recv, recv_pts = decode.decode_luma(job["file"])
        _BY_FILE[key] = metrics.evaluate(ref, ref_pts, recv, recv_pts, _DET, job["sample_every"],
                                         hog=job["hog"], sift=True)
    out = dict(_BY_FILE[key])
    out["digest"] = digest
    for k, v in list(out.items()):
        if isinstance(v, float) and math.isinf(v):
            out[k] = float("inf")
    return {**job, **out}
