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
its detections) and prints the edge's closed-loop answer.
"""

import argparse
import pathlib
import signal
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"))

import qocnet_client as qc  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    conn = ap.add_argument_group("connection")
    conn.add_argument("--address", default=qc.DEFAULT_ADDRESS,
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

    def show(update):
        p = update.policy
        line = (f"[{update.reason}] gen {update.generation}  {qc.stream_text(p.stream)}  "
                f"{qc.policy_text(p.policy)}")
        if p.required:
            line += f"  (required {p.required:g}, target {p.target:g})"
        print(line, flush=True)

    def failed(error):
        print(f"qoc_process: policy stream ended: {error}", file=sys.stderr, flush=True)
        stop.set()

    try:
        client = qc.connect(args.address, args.tls_ca, args.tls_cert, args.tls_key, args.timeout)
        with client:
            # keep everything until required
            policies = client.register(args.name, args.stream, udp_port=args.udp_port, interface=args.interface)
            p = client.process
            print(f"registered {args.name} on {len(policies)} stream(s): copies to {p.mac} "
                  f"{p.ip or '(sensor IP)'}:{p.udp_port or '(sensor port)'} via {p.port}", flush=True)
            for p in policies:
                print(f"  {qc.stream_text(p.stream)}  {qc.policy_text(p.policy)}", flush=True)
            if args.required:
                for p in client.report_requirement(args.required):
                    print(f"required {args.required:g} on {qc.stream_text(p.stream)}: "
                          f"{qc.policy_text(p.policy)}", flush=True)
            client.follow_policy(show, failed)
            deadline = time.monotonic() + args.duration if args.duration > 0 else None
            next_report = time.monotonic() + args.every
            while not stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if args.measured is not None and now >= next_report:
                    r = client.report_measured(args.measured)
                    action = qc.qoc_pb2.LoopAction.Name(r.action).removeprefix("LOOP_ACTION_").lower()
                    print(f"measured {args.measured:g}: {action}, now "
                          f"{qc.policy_text(r.policy.policy)}", flush=True)
                    next_report = now + args.every
                stop.wait(0.1)
        print(f"unregistered {args.name}", flush=True)
    except qc.QocError as e:
        print(f"qoc_process: {e}", file=sys.stderr)
        return 2 if e.code in (qc.grpc.StatusCode.INVALID_ARGUMENT, qc.grpc.StatusCode.NOT_FOUND,
                               qc.grpc.StatusCode.ALREADY_EXISTS, None) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
