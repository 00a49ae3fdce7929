#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""People counter: counts the people (OpenCV HOG) on the frames it
receives. QoC = count accuracy: min/max of its count and the loss-free
frame's count, weighted by the larger count, over a sliding window. A
miscount by one in a crowd matters little, so it tolerates more loss than
the detector (default requirement 0.7).

  counter.py --name counter --ip 10.0.0.2 --udp-port 6000 \\
      --stream 10.0.1.2:40001->:5000 --reference vtest.ts --status cnt.json
"""
import sys

import analytics
from qocnet_eval import metrics


def main() -> int:
    args = analytics.arguments(__doc__.split("\n\n")[0], required=0.7, every=29).parse_args()
    det = metrics.Detectors()

    def score(ref, shown, frozen):
        n_ref = len(det.people(ref))
        n = n_ref if analytics.same(ref, shown) else len(det.people(shown))
        return analytics.count_accuracy(n, n_ref)

    return analytics.run_video_process(args, "counter", "count accuracy", score)


if __name__ == "__main__":
    sys.exit(main())
