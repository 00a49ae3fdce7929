#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Scrapes one Prometheus endpoint of qocnet and checks it by Prometheus's
conventions, with prometheus_client's own parser for the syntax:

- every family is named PREFIX_[a-z0-9_]+ and has HELP and TYPE (but the
  exposer_* families prometheus-cpp adds about serving scrapes);
- a counter's name ends in _total and a gauge's does not;
- only base units (no _milliseconds, _kilobytes, _percent, ...);
- each --require NAME:TYPE is there with that type.

On success prints every sample, one per line: NAME<TAB>k=v,k=v<TAB>VALUE
(labels sorted); on failure names each problem and exits 1.
"""
import argparse
import re
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--prefix", default="qocnet")
ap.add_argument("--require", action="append", default=[], metavar="NAME:TYPE")
args = ap.parse_args()

text = urllib.request.urlopen(args.url, timeout=5).read().decode()
problems = []
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
if not types:
    problems.append("no metric families at all")
for name, typ in sorted(types.items()):
    if name.startswith("exposer_"):
        continue  # prometheus-cpp's own about serving the scrape, named by it
    if not re.fullmatch(re.escape(args.prefix) + r"_[a-z0-9_]+", name):
        problems.append(f"{name}: not named {args.prefix}_[a-z0-9_]+")
    if typ == "counter" and not name.endswith("_total"):
        problems.append(f"{name}: a counter whose name does not end in _total")
    if typ != "counter" and name.endswith("_total"):
        problems.append(f"{name}: a {typ} named like a counter (_total)")
    if typ not in ("counter", "gauge"):
        problems.append(f"{name}: type {typ}, not counter or gauge")
    if re.search(r"_(milliseconds|microseconds|nanoseconds|minutes|hours|kilobytes|megabytes|gigabytes|percent|"
                 r"ms|us|kb|mb|kbps|mbps|bits)(_|$)", name):
        problems.append(f"{name}: not in a base unit")
    if name not in helps:
        problems.append(f"{name}: no HELP")
for req in args.require:
    name, typ = req.split(":")
    if types.get(name) != typ:
        problems.append(f"{name}: wanted a {typ}, found {types.get(name, 'nothing')}")
samples = []
try:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples.append(f"{s.name}\t{labels}\t{s.value!r}")
except Exception as e:  # the parser's own complaint about the exposition text
    problems.append(f"the exposition text does not parse: {e}")
if problems:
    print("metrics_check: " + args.url, file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print("\n".join(samples))
