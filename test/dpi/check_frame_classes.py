#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks `qocnetctl classify --frames` against FFmpeg's own reading of the
same video, on a corpus made here with ffmpeg:

  * ffprobe's pict_type per frame, matched by PTS: I -> ref, P -> diff,
    B -> diff or disp;
  * FFmpeg's trace_headers bitstream filter (the NAL unit headers and slice
    headers as FFmpeg parses them): H.264 IDR or I/SI slice -> ref,
    nal_ref_idc = 0 -> disp, otherwise diff; HEVC IRAP (16..23) -> ref,
    sub-layer non-reference types (even, <= 14) -> disp, a reference
    picture whose first slice segment is I (slice_type 2) -> ref,
    otherwise diff.

`hevc_intra` holds HEVC intra pictures that are not IRAPs (TRAIL_R with I
slices): x265 codes a scene cut closer than min-keyint to the last keyframe
as such a picture. The check requires ffprobe to call them I, so the case
cannot silently vanish from the corpus if the encoder changes.

Each file must agree on at least 99.9 % of its frames on both, and every
frame ffprobe sees must have a row. The same holds for pcaps captured (on an
Ethernet veth and on `any`) from a real `ffmpeg -f mpegts udp://` stream of
one of them between two namespaces of this run. Exit status 0 when all pass.

Usage: check_frame_classes.py --qocnetctl PATH [--workdir DIR] [--only NAME]
"""
import argparse
import csv
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

FPS = 25
SECONDS = 8
SRC = f"testsrc2=size=320x240:rate={FPS}"

# name -> ffmpeg output arguments (video from testsrc2, SECONDS long)
CORPUS = {
    "h264_no_b": ["-c:v", "libx264", "-bf", "0", "-g", "50"],
    "h264_b_flat": ["-c:v", "libx264", "-bf", "3", "-g", "50", "-x264-params", "b-pyramid=none"],
    "h264_b_pyramid": ["-c:v", "libx264", "-bf", "3", "-g", "50", "-x264-params", "b-pyramid=normal"],
    "hevc": ["-c:v", "libx265", "-x265-params", "bframes=3:keyint=50:log-level=error"],
    "hevc_intra": ["-c:v", "libx265", "-x265-params",
                   "bframes=3:keyint=100:min-keyint=100:scenecut=40:log-level=error"],
    "h264_pid_0x321": ["-c:v", "libx264", "-bf", "2", "-g", "50",
                       "-mpegts_pmt_start_pid", "0x200", "-mpegts_start_pid", "0x321"],
    "h264_with_audio": ["-c:v", "libx264", "-bf", "2", "-g", "50", "-c:a", "mp2"],
}
AUDIO = {"h264_with_audio"}
# name -> (second lavfi source, filter_complex): a scene cut every 0.8 s,
# where the mandelbrot picture is laid over testsrc2 and taken away again.
SCENE_CUTS = {"hevc_intra": ("mandelbrot=size=320x240:rate=25",
                             "[0][1]overlay=enable='lt(mod(t\\,1.6)\\,0.8)'")}
# name -> how many pictures ffprobe must call I although their NAL type is
# not an IRAP one (the case the file is there for).
MIN_NON_IRAP_INTRA = {"hevc_intra": 4}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make(name, workdir):
    out = os.path.join(workdir, name + ".ts")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", SRC]
    if name in AUDIO:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    if name in SCENE_CUTS:
        second, graph = SCENE_CUTS[name]
        cmd += ["-f", "lavfi", "-i", second, "-filter_complex", graph]
    cmd += ["-t", str(SECONDS)] + CORPUS[name] + ["-f", "mpegts", out]
    run(cmd)
    return out


def qocnet_frames(qocnetctl, path):
    out = run([qocnetctl, "classify", "--frames", path]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return [(int(r["pts"]), r["class"]) for r in rows]


def ffprobe_pict_types(path):
    out = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
               "frame=pts,pict_type", "-of", "csv=p=0", path]).stdout
    types = {}
    for line in out.splitlines():
        parts = [p for p in line.strip().split(",") if p]
        if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
            types[int(parts[0])] = parts[1]
    return types


NAL_LINE = re.compile(r"\s(nal_ref_idc|nal_unit_type|slice_type)\s+[01]+ = (\d+)")
PACKET_LINE = re.compile(r"Packet: \d+ bytes,.* pts (-?\d+),")


def trace_expected(path, hevc):
    """Expected class per PTS from FFmpeg's parse of the NAL unit headers."""
    return {pts: classify_nal(vcl, hevc) for pts, vcl in trace_first_vcl(path, hevc).items()}


def trace_first_vcl(path, hevc):
    """(nal_ref_idc, nal_unit_type, slice_type) of each frame's first slice,
    by PTS, as FFmpeg's trace_headers reads them (nal_ref_idc None for HEVC)."""
    res = subprocess.run(["ffmpeg", "-hide_banner", "-copyts", "-i", path, "-map", "0:v:0",
                          "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"],
                         capture_output=True, text=True)
    expected = {}
    pts = None
    first_vcl = None  # (nal_ref_idc, nal_unit_type, slice_type)
    ref_idc = None
    nal_type = None

    def close():
        if pts is not None and first_vcl is not None:
            expected[pts] = first_vcl

    for line in res.stderr.splitlines():
        m = PACKET_LINE.search(line)
        if m:
            close()
            pts, first_vcl, ref_idc, nal_type = int(m.group(1)), None, None, None
            continue
        m = NAL_LINE.search(line)
        if not m or pts is None or first_vcl is not None:
            continue
        field, value = m.group(1), int(m.group(2))
        if field == "nal_ref_idc":
            ref_idc = value
        elif field == "nal_unit_type":
            nal_type = value
        elif field == "slice_type" and (nal_type < 32 if hevc else nal_type in (1, 2, 5)):
            first_vcl = (ref_idc, nal_type, value)
    close()
    return expected


def classify_nal(vcl, hevc):
    ref_idc, nal_type, slice_type = vcl
    if hevc:
        if 16 <= nal_type <= 23:
            return "ref"
        if nal_type <= 14 and nal_type % 2 == 0:
            return "disp"
        return "ref" if slice_type == 2 else "diff"
    if nal_type == 5 or slice_type % 5 in (2, 4):
        return "ref"
    if ref_idc == 0:
        return "disp"
    return "diff"


PICT_OK = {"I": {"ref"}, "P": {"diff"}, "B": {"diff", "disp"}}


def non_irap_intra(pict, vcl):
    """PTSs of the pictures ffprobe calls I whose NAL type is not an IRAP one."""
    return sorted(p for p, t in pict.items()
                  if t == "I" and p in vcl and not 16 <= vcl[p][1] <= 23)


def check(qocnetctl, path, hevc):
    got = qocnet_frames(qocnetctl, path)
    by_pts = {pts: cls for pts, cls in got}
    pict = ffprobe_pict_types(path)
    vcl = trace_first_vcl(path, hevc)
    expected = {p: classify_nal(v, hevc) for p, v in vcl.items()}
    name = os.path.splitext(os.path.basename(path))[0]
    want_intra = MIN_NON_IRAP_INTRA.get(name, 0) if hevc else 0
    intra = non_irap_intra(pict, vcl) if hevc else []
    intra_ok = len(intra) >= want_intra
    if want_intra:
        wrong = [p for p in intra if by_pts.get(p) != "ref"]
        enough = "yes" if intra_ok else "NO: the encoder no longer makes them, change its settings"
        print(f"{os.path.basename(path)}: {len(intra)} pictures with pict_type I and a non-IRAP "
              f"NAL type (need >= {want_intra}: {enough}); qocnet calls "
              f"{len(intra) - len(wrong)} of them ref" + (f", not pts {wrong[:8]}" if wrong else ""))
    missing = [p for p in pict if p not in by_pts]
    pict_ok = sum(1 for p, t in pict.items() if by_pts.get(p) in PICT_OK.get(t, set()))
    nal_ok = sum(1 for p, c in expected.items() if by_pts.get(p) == c)
    counts = {c: sum(1 for _, x in got if x == c) for c in ("ref", "diff", "disp", "other")}
    pict_rate = pict_ok / len(pict) if pict else 0.0
    nal_rate = nal_ok / len(expected) if expected else 0.0
    ok = (len(pict) > 0 and not missing and pict_rate >= 0.999 and nal_rate >= 0.999
          and len(expected) == len(pict) and intra_ok)
    print(f"{os.path.basename(path)}: {len(got)} frames classified ({counts}); ffprobe frames "
          f"{len(pict)}, missing {len(missing)}; pict_type agreement {pict_ok}/{len(pict)} "
          f"= {100 * pict_rate:.2f} %; NAL-header agreement {nal_ok}/{len(expected)} = "
          f"{100 * nal_rate:.2f} %: {'PASS' if ok else 'FAIL'}")
    if not ok:
        for p, t in sorted(pict.items())[:400]:
            want = expected.get(p)
            if by_pts.get(p) not in PICT_OK.get(t, set()) or by_pts.get(p) != want:
                print(f"  pts {p}: pict_type {t}, NAL headers say {want}, qocnet {by_pts.get(p)}")
    return ok


PPS_NOTE = re.compile(r"stream \S+: (\d+) HEVC frames had their slice_type read before a PPS")


def check_pps_count(qocnetctl, path, workdir):
    """qocnetctl classify reports the HEVC frames read without their PPS: none
    for the whole file (its PPS comes with every IRAP), some for a copy cut
    mid-GOP (the pictures before the next IRAP come before any PPS)."""
    def count(p):
        res = run([qocnetctl, "classify", p])
        m = PPS_NOTE.search(res.stderr)
        return int(m.group(1)) if m else 0
    data = open(path, "rb").read()
    cut = os.path.join(workdir, "cut-" + os.path.basename(path))
    with open(cut, "wb") as f:
        f.write(data[188 * (len(data) // 188 // 3):])
    whole, mid = count(path), count(cut)
    ok = whole == 0 and mid > 0
    print(f"{os.path.basename(path)}: HEVC frames read without their PPS: {whole} in the file, "
          f"{mid} in a copy cut mid-GOP (want 0 and > 0): {'PASS' if ok else 'FAIL'}")
    return ok


def capture_udp_stream(source, workdir):
    """Streams `source` with ffmpeg over UDP (its default 7-packet datagrams)
    between two namespaces of this run and captures it with tcpdump, on the
    veth (Ethernet) and on `any` (Linux cooked). Returns the two pcap paths."""
    tag = f"qn{os.getpid()}xpy"
    snd, rcv = tag + "s", tag + "r"
    pcaps = [os.path.join(workdir, "stream-eth.pcap"), os.path.join(workdir, "stream-any.pcap")]
    try:
        run(["ip", "netns", "add", snd])
        run(["ip", "netns", "add", rcv])
        run(["ip", "-n", snd, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", rcv])
        run(["ip", "-n", snd, "addr", "add", "10.79.0.1/24", "dev", "v0"])
        run(["ip", "-n", rcv, "addr", "add", "10.79.0.2/24", "dev", "v1"])
        for ns, dev in ((snd, "v0"), (rcv, "v1")):
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        dumps = [subprocess.Popen(["ip", "netns", "exec", rcv, "tcpdump", "-U", "-q", "-i", dev,
                                   "-w", path, "udp", "port", "5000"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for dev, path in (("v1", pcaps[0]), ("any", pcaps[1]))]
        time.sleep(1.0)
        run(["ip", "netns", "exec", snd, "ffmpeg", "-hide_banner", "-loglevel", "error",
             "-copyts", "-i", source, "-map", "0", "-c", "copy", "-muxdelay", "0",
             "-muxpreload", "0", "-f", "mpegts",
             "udp://10.79.0.2:5000?pkt_size=1316"])
        time.sleep(1.5)  # let tcpdump write the last datagrams
        for d in dumps:
            d.send_signal(signal.SIGINT)
            d.wait(timeout=10)
        return pcaps
    finally:
        subprocess.run(["ip", "netns", "del", snd], capture_output=True)
        subprocess.run(["ip", "netns", "del", rcv], capture_output=True)


def check_capture(qocnetctl, source, pcap):
    """The capture's frames must carry the classes FFmpeg reads in the source."""
    got = dict(qocnet_frames(qocnetctl, pcap))
    pict = ffprobe_pict_types(source)
    expected = trace_expected(source, hevc=False)
    pict_ok = sum(1 for p, t in pict.items() if got.get(p) in PICT_OK.get(t, set()))
    nal_ok = sum(1 for p, c in expected.items() if got.get(p) == c)
    rate = min(pict_ok / len(pict), nal_ok / len(expected)) if pict and expected else 0.0
    ok = rate >= 0.999 and len(got) == len(pict)
    print(f"{os.path.basename(pcap)} (ffmpeg -f mpegts udp:// of {os.path.basename(source)}): "
          f"{len(got)} frames of {len(pict)}; pict_type {pict_ok}/{len(pict)}, NAL headers "
          f"{nal_ok}/{len(expected)}: {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qocnetctl", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--only")
    args = ap.parse_args()
    if os.geteuid() != 0:
        # 77: CTest's SKIP_RETURN_CODE. Under CI nothing may skip.
        print("SKIPPED: needs root (qocnetctl classify loads a BPF program)")
        return 1 if os.environ.get("CI") else 77
    with tempfile.TemporaryDirectory(prefix="qocnet-corpus-") as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        ok = True
        for name in CORPUS:
            if args.only and name != args.only:
                continue
            path = make(name, workdir)
            ok &= check(args.qocnetctl, path, hevc=name.startswith("hevc"))
            if name in MIN_NON_IRAP_INTRA:
                ok &= check_pps_count(args.qocnetctl, path, workdir)
        if not args.only or args.only == "udp":
            source = os.path.join(workdir, "h264_with_audio.ts")
            if not os.path.exists(source):
                source = make("h264_with_audio", workdir)
            for pcap in capture_udp_stream(source, workdir):
                ok &= check_capture(args.qocnetctl, source, pcap)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
