#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Feature-match monitor: SIFT features of the loss-free frame still
matched (Lowe's ratio test) in the frame it was shown, the paper's
detection metric, over a sliding window of sampled frames (default
requirement 0.8).

  feature_monitor.py --name sift --ip 10.0.0.2 --udp-port 6000 \\
      --stream 10.0.2.2:40002->:5000 --reference box.ts --status sift.json
"""
import sys

import analytics
from qocnet_eval import metrics


def main() -> int:
    args = analytics.arguments(__doc__.split("\n\n")[0], required=0.8, every=13).parse_args()
    det = metrics.Detectors()

    def score(ref, shown, frozen):
        if len(det.sift_cache) > 64:  # descriptors of frames long gone
            det.sift_cache.clear()
            det.match_cache.clear()
        n_ref, matched = det.sift_matched(ref, shown)
        return float(matched), float(n_ref)

    return analytics.run_video_process(args, "feature monitor", "SIFT match share", score)


if __name__ == "__main__":
    sys.exit(main())
