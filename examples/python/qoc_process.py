#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A computation process's side of qocnet: register with qocnetd, require a
QoC, follow the policy the edge applies, and unregister on exit.

    /usr/bin/python3 examples/python/qoc_process.py --name detector \\
        --udp-port 6000 --stream '10.0.0.1:40000->:5000' --required 0.9

Run it inside the container (its own network namespace, with a veth toward
the edge), with qocnetd's process socket directory bind-mounted at
/run/qocnet/process: qocnetd sends its copies to that veth's MAC and IPv4.

Prints each PolicyUpdate as it arrives ("registered", "requirement",
"measured", "operator", "sensor"). With --measured it also reports a measured
QoC every --every seconds (what a real analytics process would compute from
its detections) and prints the edge's closed-loop answer. It runs on
qocnet.Process: when qocnetd restarts, the process registers again by itself.
Run it from the source tree (it finds clients/python) or with the package
installed (pip install clients/python, or Debian's python3-qocnet).
"""

import argparse
import pathlib
import signal
import sys
import threading
import time

# The in-tree package when run from the source tree; an installed one otherwise.
_TREE = pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"
if (_TREE / "qocnet" / "__init__.py").is_file():
    sys.path.insert(0, str(_TREE))

import grpc  # noqa: E402

import qocnet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    conn = ap.add_argument_group("connection")
    conn.add_argument("--address", default=qocnet.DEFAULT_ADDRESS,
                      help="qocnetd: unix:/PATH, tcp:HOST:PORT or HOST:PORT (default %(default)s)")
    conn.add_argument("--tls-ca", help="PEM CA that verifies qocnetd (TCP)")
    conn.add_argument("--tls-cert", help="PEM client certificate for mutual TLS (TCP)")
    conn.add_argument("--tls-key", help="PEM key of --tls-cert")
    conn.add_argument("--timeout", type=float, default=5.0, help="deadline of each call, s (default %(default)s)")
    proc = ap.add_argument_group("process")
    proc.add_argument("--name", required=True, help="unique process name")
    proc.add_argument("--udp-port", type=int, default=0, help="the UDP port it receives on (default: the sensor's)")
    proc.add_argument("--interface", default="",
                      help="its own interface toward the edge, only if it has several (default: the one)")
    proc.add_argument("--stream", action="append", required=True,
                      help="a stream it consumes, SRC:SPORT->:DPORT (repeatable)")
    qoc = ap.add_argument_group("QoC")
    qoc.add_argument("--required", type=float, default=0.0,
                     help="QoC metric it needs, e.g. 0.9 (0: keep everything)")
    qoc.add_argument("--measured", type=float,
                     help="report this measured QoC every --every seconds (closed loop)")
    qoc.add_argument("--every", type=float, default=5.0, help="seconds between measured reports")
    ap.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: until Ctrl-C)")
    args = ap.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def show(update: qocnet.qoc_pb2.PolicyUpdate) -> None:
        p = update.policy
        line = (f"[{update.reason}] gen {update.generation}  {qocnet.stream_text(p.stream)}  "
                f"{qocnet.policy_text(p.policy)}")
        if p.required:
            line += f"  (required {p.required:g}, target {p.target:g})"
        print(line, flush=True)

    def event(text: str) -> None:
        print(f"{args.name}: {text}", flush=True)

    try:
        # Registered with the requirement (0: keep everything until one is reported).
        process = qocnet.Process(args.name, args.stream, required=args.required, udp_port=args.udp_port,
                                 interface=args.interface, address=args.address, tls_ca=args.tls_ca,
                                 tls_cert=args.tls_cert, tls_key=args.tls_key, timeout=args.timeout,
                                 on_policy=show, on_event=event)
        with process:
            p = process.client.process
            if p is not None:
                print(f"registered {args.name} on {len(args.stream)} stream(s): copies to {p.mac} "
                      f"{p.ip or '(sensor IP)'}:{p.udp_port or '(sensor port)'} via {p.port}", flush=True)
            deadline = time.monotonic() + args.duration if args.duration > 0 else None
            next_report = time.monotonic() + args.every
            while not stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if args.measured is not None and now >= next_report:
                    r = process.report_measured(args.measured)
                    if r is None:
                        print(f"measured {args.measured:g}: qocnetd away, not reported", flush=True)
                    else:
                        action = qocnet.qoc_pb2.LoopAction.Name(r.action).removeprefix("LOOP_ACTION_").lower()
                        print(f"measured {args.measured:g}: {action}, now "
                              f"{qocnet.policy_text(r.policy.policy)}", flush=True)
                    next_report = now + args.every
                stop.wait(0.1)
        print(f"unregistered {args.name}", flush=True)
    except qocnet.QocError as e:
        print(f"qoc_process: {e}", file=sys.stderr)
        return 2 if e.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                               grpc.StatusCode.ALREADY_EXISTS, None) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
