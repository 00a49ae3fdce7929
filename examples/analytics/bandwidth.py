# SPDX-License-Identifier: Apache-2.0
"""The demo's bandwidth accounting (demo_monitor.py), kept free of gRPC so it
can be tested on its own.

Per stream and per second of the run, the sensor's counters give d_full
bytes (what its program saw: sent + dropped), d_sent (what it let onto the
uplink) and d_link (the uplink interface counter); n processes consumed the
stream in that second. The three schemes are compared over the same
seconds, those in which some process consumes the stream:
  naive        (Eq. 1) the full stream once per consuming process
  replication  the full stream once
  qocnet       what the sensor sent
What a sensor sends while nobody consumes the stream (before the first
registration, after the last process leaves) is no scheme's cost: it is
kept apart as "unconsumed".
"""

KEYS = ("naive", "replication", "qocnet", "link", "unconsumed", "unconsumed_link")


def new_totals() -> dict:
    return {k: 0.0 for k in KEYS}


def account(st: dict, d_full: float, d_sent: float, d_link: float, n: int) -> None:
    """Adds one second of one stream to its totals `st` (see new_totals)."""
    if n > 0:
        st["naive"] += d_full * n
        st["replication"] += d_full
        st["qocnet"] += d_sent
        st["link"] += d_link
    else:
        st["unconsumed"] += d_sent
        st["unconsumed_link"] += d_link
