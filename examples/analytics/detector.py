#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Pedestrian detector: OpenCV's HOG people detector on the frames it
receives. QoC = detection rate: the people found on the loss-free frame
(boxes) that it also finds on the frame it was shown (IoU >= 0.5), over a
sliding window of sampled frames. Needs a high rate (default 0.9).

  detector.py --name detector --ip 10.0.0.2 --udp-port 6000 \\
      --stream 10.0.1.2:40001->:5000 --reference vtest.ts --status det.json
"""
import sys

import analytics
from qocnet_eval import metrics


def main() -> int:
    args = analytics.arguments(__doc__.split("\n\n")[0], required=0.9, every=19).parse_args()
    det = metrics.Detectors()

    def score(ref, shown, frozen):
        boxes = det.people(ref)
        if not len(boxes):
            return 0.0, 0.0
        found = len(boxes) if analytics.same(ref, shown) else metrics.match_boxes(boxes, det.people(shown))
        return float(found), float(len(boxes))

    return analytics.run_video_process(args, "detector", "HOG detection rate", score)


if __name__ == "__main__":
    sys.exit(main())
