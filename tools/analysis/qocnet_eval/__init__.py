# SPDX-License-Identifier: Apache-2.0
"""qocnet evaluation: video preparation, datagram captures, decoding and
quality metrics (PSNR with frame freezing, HOG recall, SIFT match share).

Runs on Debian's /usr/bin/python3 with python3-opencv, python3-numpy and
python3-matplotlib.
"""
