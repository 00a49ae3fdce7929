#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""qocnetctl against a stub ControlService: every subcommand reaches its RPC
with the request the command line describes, answers print as tables or as
JSON, refusals give the status name, message and exit code (2 for
INVALID_ARGUMENT / NOT_FOUND / ALREADY_EXISTS, 1 otherwise), and a daemon
that is not there is named with its address.

The stub, served by this test on a Unix socket in a temporary directory,
records each request and answers fixed messages; it stands in for qocnetd
only to check the client. Run by CTest:
    qocnetctl_stub_test.py --qocnetctl <qocnetctl>   (the stubs: package qocnet in clients/python)
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"))

import grpc  # noqa: E402

import qocnet.client as qc  # noqa: E402
from qocnet.v1 import control_pb2, control_pb2_grpc, qoc_pb2, types_pb2  # noqa: E402

QOCNETCTL = None
STREAM = "10.0.0.1:40000->:5000"
SERVICE = control_pb2.DESCRIPTOR.services_by_name["ControlService"]


def stream_msg(text=STREAM):
    return qc.parse_stream(text)


def policy(kind, drop=0.0):
    return types_pb2.Policy(kind=kind, drop=drop)


ANSWERS = {
    "ListPortPairs": control_pb2.ListPortPairsResponse(pairs=[
        control_pb2.PortPair(ingress="e0", egress="e1", ingress_ifindex=4, egress_ifindex=5)]),
    "GetPortCounters": control_pb2.GetPortCountersResponse(counters=[
        control_pb2.PortCounters(name="e0", ifindex=4, rx_packets=10, rx_bytes=13160, fwd_packets=10,
                                 fwd_bytes=13160)]),
    "ListProcesses": control_pb2.ListProcessesResponse(processes=[
        types_pb2.ProcessSpec(name="det", port="e1", mac="02:00:00:00:00:01")]),
    "GetTargetStats": control_pb2.GetTargetStatsResponse(targets=[
        types_pb2.TargetStats(process="det", policy=policy(types_pb2.POLICY_KIND_DIFFERENTIAL, 0.1),
                              delivered=types_pb2.ClassCounts(datagrams=[1, 2, 30, 4], bytes=[1, 2, 900, 4]),
                              dropped=types_pb2.ClassCounts(datagrams=[0, 5, 0, 0], bytes=[0, 100, 0, 0]))]),
    "SetRequirement": control_pb2.SetRequirementResponse(policy=qoc_pb2.StreamPolicy(
        stream=stream_msg(), policy=policy(types_pb2.POLICY_KIND_DIFFERENTIAL, 0.01), required=0.9, target=0.9)),
    "GetEffectivePolicy": control_pb2.GetEffectivePolicyResponse(
        policy=policy(types_pb2.POLICY_KIND_FRAME_AWARE, 0.2)),
    "GetStreamBandwidth": control_pb2.GetStreamBandwidthResponse(bandwidth=types_pb2.Bandwidth(
        stream_bytes=1000, naive_bytes=3000, replication_bytes=1000, qocnet_bytes=800, reduction=1 - 800 / 3000),
        processes=3),
    "GetQocTable": control_pb2.GetQocTableResponse(table=types_pb2.QocTable(
        metric="object detection rate", lossless=1.0, curves=[
            types_pb2.QocCurve(kind=types_pb2.POLICY_KIND_UNIFORM, loss=[0.005, 0.01, 0.02, 0.05],
                               qoc=[0.95, 0.84, 0.46, 0.10])])),
    "ListStreams": control_pb2.ListStreamsResponse(streams=[types_pb2.StreamStats(
        stream=stream_msg(), video_pid=256, codec=types_pb2.CODEC_H264, frames=120,
        seen=types_pb2.ClassCounts(datagrams=[3, 40, 200, 60], bytes=[1, 2, 3, 4]))]),
    "GetDpiCounters": control_pb2.GetDpiCountersResponse(counters=types_pb2.DpiCounters(
        seen=303, ts=303, by_class=[3, 40, 200, 60])),
    "ListSensors": control_pb2.ListSensorsResponse(sensors=[control_pb2.Sensor(
        name="cam1", address="unix:/run/qocnet/sensor.sock", streams=[stream_msg()],
        applied=policy(types_pb2.POLICY_KIND_KEEP))]),
    "GetStatus": control_pb2.GetStatusResponse(version="0.1.0", git_describe="v0.1.0-7-gabcdef0",
                                               bcc_version="0.26.0", ports=["e0", "e2"], generation=7,
                                               uptime_seconds=12, compile_seconds=1.5, programs=[
                                                   control_pb2.ProgramInfo(name="qoc_edge_in", id=42)]),
}

# What the stub refuses, by (method, a field's value), as qocnetd would.
REFUSALS = {
    ("RemoveProcess", "ghost"): (grpc.StatusCode.NOT_FOUND,
                                 "name: process 'ghost' does not exist; fix: list them with ListProcesses"),
    ("AttachPort", "busy0"): (grpc.StatusCode.ALREADY_EXISTS, "port: busy0 is attached already"),
    ("AttachPort", "slow0"): None,  # sleeps past the client's deadline
}


class Stub:
    def __init__(self):
        self.calls = []  # (method, request)
        self.lock = threading.Lock()

    def handler(self, name, response_type):
        def unary(request, context):
            with self.lock:
                self.calls.append((name, request))
            key = (name, getattr(request, "name", "") or getattr(request, "port", ""))
            if key == ("AttachPort", "slow0"):
                time.sleep(2)
            elif key in REFUSALS:
                context.abort(*REFUSALS[key])
            if name == "SetRequirement" and request.required > 1:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              "required: 1.5 is above the best achievable 1 (object detection rate)")
            return ANSWERS.get(name, response_type())

        def streaming(request, context):
            with self.lock:
                self.calls.append((name, request))
            for seq in range(1, (request.count or 3) + 1):
                yield control_pb2.StatsUpdate(sequence=seq, generation=7, streams=[control_pb2.StreamReport(
                    stream=ANSWERS["ListStreams"].streams[0],
                    effective=policy(types_pb2.POLICY_KIND_DIFFERENTIAL, 0.05),
                    targets=ANSWERS["GetTargetStats"].targets)])
                time.sleep(request.interval_ms / 1000.0)

        return streaming if name == "WatchStats" else unary

    def generic(self):
        handlers = {}
        for m in SERVICE.methods:
            req = getattr(control_pb2, m.input_type.name)
            resp = getattr(control_pb2, m.output_type.name)
            fn = self.handler(m.name, resp)
            kw = dict(request_deserializer=req.FromString, response_serializer=resp.SerializeToString)
            handlers[m.name] = (grpc.unary_stream_rpc_method_handler(fn, **kw) if m.server_streaming
                                else grpc.unary_unary_rpc_method_handler(fn, **kw))
        return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)


class Qocnetctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.address = f"unix:{cls.dir.name}/control.sock"
        cls.stub = Stub()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        cls.server.add_generic_rpc_handlers((cls.stub.generic(),))
        cls.server.add_insecure_port(cls.address)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop(None)
        cls.dir.cleanup()

    def run_ctl(self, *args, address=None, expect=0):
        with self.stub.lock:
            self.stub.calls.clear()
        p = subprocess.run([QOCNETCTL, "--address", address or self.address, *args],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, expect, f"qocnetctl {' '.join(args)}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def only_call(self, method):
        with self.stub.lock:
            self.assertEqual([c[0] for c in self.stub.calls], [method])
            return self.stub.calls[0][1]

    def test_every_rpc_has_a_subcommand(self):
        commands = {
            "AttachPort": ["port", "attach", "e0"], "DetachPort": ["port", "detach", "e0"],
            "SetPortPair": ["pair", "set", "e0", "e1"], "RemovePortPair": ["pair", "rm", "e0"],
            "ListPortPairs": ["pair", "ls"], "GetPortCounters": ["counters"],
            "AddProcess": ["process", "add", "det", "--port", "e1", "--mac", "02:00:00:00:00:01"],
            "RemoveProcess": ["process", "rm", "det"], "ListProcesses": ["process", "ls"],
            "SetCloneTargets": ["targets", "set", STREAM, "det"],
            "SetPolicy": ["policy", "set", "det", STREAM, "keep"], "GetTargetStats": ["stats", STREAM],
            "SetRequirement": ["require", "det", STREAM, "0.9"], "GetEffectivePolicy": ["effective", STREAM],
            "GetStreamBandwidth": ["bandwidth", STREAM], "GetQocTable": ["table", "get"],
            "SetQocTable": ["table", "set", str(pathlib.Path(__file__).resolve().parents[2] / "test" /
                                                 "python" / "table.yaml")],
            "ListStreams": ["streams"], "GetDpiCounters": ["dpi"], "ResetStreams": ["streams", "reset"],
            "AddSensor": ["sensor", "add", "cam1", "unix:/run/qocnet/sensor.sock", STREAM],
            "RemoveSensor": ["sensor", "rm", "cam1"], "ListSensors": ["sensor", "ls"],
            "GetStatus": ["status"], "WatchStats": ["watch", "--count", "1", "--interval", "100"],
        }
        self.assertEqual(set(commands), {m.name for m in SERVICE.methods})
        for method, args in commands.items():
            with self.subTest(method=method):
                for output in ("table", "json"):
                    p = self.run_ctl("-o", output, *args)
                    self.only_call(method)
                    if output == "json":
                        for line in p.stdout.splitlines():
                            json.loads(line)
                        self.assertEqual(len(p.stdout.splitlines()), 1)

    def test_requests_carry_the_command_line(self):
        self.run_ctl("pair", "set", "e0", "e1")
        r = self.only_call("SetPortPair")
        self.assertEqual((r.pair.ingress, r.pair.egress), ("e0", "e1"))

        p = self.run_ctl("policy", "set", "det", "[fd00::1]:40000->:5000", "differential(0.1)")
        r = self.only_call("SetPolicy")
        self.assertEqual(r.process, "det")
        self.assertEqual((r.stream.source, r.stream.source_port, r.stream.destination_port), ("fd00::1", 40000, 5000))
        self.assertEqual(r.policy.kind, types_pb2.POLICY_KIND_DIFFERENTIAL)
        self.assertAlmostEqual(r.policy.drop, 0.1)
        self.assertIn("differential(0.1)", p.stdout)

        self.run_ctl("process", "add", "det", "--port", "e1", "--mac", "02:00:00:00:00:01", "--ip", "10.1.0.2",
                     "--udp-port", "6000")
        r = self.only_call("AddProcess").process
        self.assertEqual((r.name, r.port, r.mac, r.ip, r.udp_port), ("det", "e1", "02:00:00:00:00:01", "10.1.0.2", 6000))

        self.run_ctl("targets", "set", STREAM, "det", "count")
        self.assertEqual(list(self.only_call("SetCloneTargets").processes), ["det", "count"])
        p = self.run_ctl("targets", "set", STREAM)
        self.assertEqual(list(self.only_call("SetCloneTargets").processes), [])
        self.assertIn("not replicated", p.stdout)

        self.run_ctl("counters", "e0", "e1")
        self.assertEqual(list(self.only_call("GetPortCounters").ports), ["e0", "e1"])

        self.run_ctl("require", "det", STREAM, "0.9")
        self.assertAlmostEqual(self.only_call("SetRequirement").required, 0.9)

        self.run_ctl("sensor", "add", "cam1", "unix:/s.sock", STREAM, "10.0.0.2:1:2")
        r = self.only_call("AddSensor").sensor
        self.assertEqual([qc.stream_text(s) for s in r.streams], [STREAM, "10.0.0.2:1->:2"])

        self.run_ctl("watch", "--count", "2", "--interval", "100")
        r = self.only_call("WatchStats")
        self.assertEqual((r.count, r.interval_ms), (2, 100))

    def test_table_set_sends_the_file_and_checks_it_first(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("metric: detections\nlossless: 1.0\npolicies:\n"
                    "  uniform: {loss: [0.01, 0.05], qoc: [0.9, 0.5]}\n")
            f.flush()
            self.run_ctl("table", "set", f.name)
            self.assertIn("uniform: {loss: [0.01, 0.05]", self.only_call("SetQocTable").yaml)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("policies:\n  uniform: {loss: [0.05, 0.01], qoc: [0.9, 0.5]}\n")
            f.flush()
            p = self.run_ctl("table", "set", f.name, expect=2)
            self.assertEqual(self.stub.calls, [])
            self.assertIn(f.name, p.stderr)
        p = self.run_ctl("table", "get")
        self.assertIn("uniform: {loss: [0.005, 0.01, 0.02, 0.05], qoc: [0.95, 0.84, 0.46, 0.1]}", p.stdout)

    def test_tables_and_json(self):
        p = self.run_ctl("pair", "ls")
        self.assertEqual(p.stdout.splitlines()[0].split(), ["ingress", "egress", "ingress_ifindex", "egress_ifindex"])
        self.assertEqual(p.stdout.splitlines()[1].split(), ["e0", "e1", "4", "5"])
        for args in (["-o", "json", "pair", "ls"], ["pair", "ls", "-o", "json"]):
            p = self.run_ctl(*args)
            self.assertEqual(json.loads(p.stdout)["pairs"][0]["egress"], "e1")
        p = self.run_ctl("stats", STREAM)
        self.assertIn("differential(0.1)", p.stdout)
        self.assertIn("9.9%", p.stdout)  # 100 of 907 + 100 bytes dropped
        p = self.run_ctl("effective", STREAM)
        self.assertEqual(p.stdout.strip(), f"{STREAM}  frame_aware(0.2)")
        p = self.run_ctl("bandwidth", STREAM)
        self.assertIn("reduction (Eq. 4): 73.3%", p.stdout)
        p = self.run_ctl("-o", "json", "watch", "--count", "3", "--interval", "100")
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual([l["sequence"] for l in lines], ["1", "2", "3"])
        p = self.run_ctl("streams")
        self.assertIn("h264", p.stdout)

    def test_refusals_give_the_code_message_and_exit_code(self):
        p = self.run_ctl("process", "rm", "ghost", expect=2)
        self.assertIn("qocnetctl: NOT_FOUND: name: process 'ghost' does not exist", p.stderr)
        p = self.run_ctl("port", "attach", "busy0", expect=2)
        self.assertIn("ALREADY_EXISTS: port: busy0 is attached already", p.stderr)
        p = self.run_ctl("require", "det", STREAM, "1.5", expect=1)
        self.assertIn("FAILED_PRECONDITION: required: 1.5 is above the best achievable", p.stderr)
        p = self.run_ctl("--timeout", "0.5", "port", "attach", "slow0", expect=1)
        self.assertIn("DEADLINE_EXCEEDED", p.stderr)
        self.assertNotIn("cannot reach", p.stderr)

    def test_bad_input_is_refused_before_any_call(self):
        for args in (["policy", "set", "det", STREAM, "uniform(1.5)"], ["stats", "10.0.0.1:40000"],
                     ["targets", "set", "10.0.0.1:40000-", "det"], ["pair", "set", "e0"],
                     ["process", "add", "det", "--port", "e1"], ["nonsense"]):
            with self.subTest(args=args):
                self.run_ctl(*args, expect=2)
                self.assertEqual(self.stub.calls, [])
        p = self.run_ctl("status", address="fd00::1:7000", expect=2)
        self.assertIn("[fd00::1]:7000", p.stderr)

    def test_versions_here_and_of_the_daemon(self):
        p = self.run_ctl("--version")
        self.assertRegex(p.stdout, r"^qocnetctl \d+\.\d+\.\d+\nlibqocnet \d+\.\d+\.\d+ \(git [^)]+\), "
                                   r"libbcc \d+\.\d+\.\d+\n$")
        self.assertEqual(self.stub.calls, [])
        p = self.run_ctl("version")
        self.only_call("GetStatus")
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 3, p.stdout)
        self.assertRegex(lines[0], r"^qocnetctl \d+\.\d+\.\d+$")
        self.assertEqual(lines[2], "qocnetd 0.1.0 (git v0.1.0-7-gabcdef0), libbcc 0.26.0")
        p = self.run_ctl("-o", "json", "version")
        objs = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(set(objs[0]["qocnetctl"]), {"version", "libqocnet", "git_describe", "libbcc"})
        self.assertEqual((objs[1]["version"], objs[1]["bcc_version"]), ("0.1.0", "0.26.0"))
        # Its own versions print even when qocnetd is not there.
        p = self.run_ctl("version", address=f"unix:{self.dir.name}/nobody.sock", expect=1)
        self.assertRegex(p.stdout, r"^qocnetctl \d")
        self.assertIn("cannot reach qocnetd", p.stderr)

    def test_bash_completion_follows_the_command_tree(self):
        script = self.run_ctl("completion", "bash").stdout
        self.assertEqual(self.stub.calls, [])

        def complete(*words):
            line = " ".join(f"'{w}'" for w in words)
            p = subprocess.run(["bash", "-c", f"{script}\nCOMP_WORDS=(qocnetctl {line}); COMP_CWORD={len(words)}; "
                                              "_qocnetctl; printf '%s\\n' \"${COMPREPLY[@]}\""],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "")
            return set(p.stdout.split())

        self.assertEqual(complete("pa"), {"pair"})
        self.assertEqual(complete("pair", ""), {"set", "rm", "ls", "--help", "-h", "--address", "--tls-ca", "--tls-cert",
                                                "--tls-key", "--tls-server-name", "--timeout", "--output"})
        self.assertEqual(complete("sensor", "a"), {"add"})
        self.assertEqual(complete("--address", "unix:/x", "sensor", "a"), {"add"})
        self.assertIn("--interval", complete("watch", "--"))
        self.assertEqual(complete("completion", "x"), set())
        self.assertIn("version", complete(""))
        # A file argument completes file names.
        here = pathlib.Path(__file__).resolve().parent
        self.assertIn(str(here / "table.yaml"), complete("table", "set", str(here / "tab")))
        p = self.run_ctl("completion", "zsh", expect=2)
        self.assertIn("zsh", p.stderr)

    def test_an_unknown_subcommand_is_named(self):
        for args, parent in ((["frobnicate"], "qocnetctl"), (["pair", "frob"], "qocnetctl pair"),
                             (["-o", "json", "sensor", "frob", "x"], "qocnetctl sensor")):
            with self.subTest(args=args):
                p = self.run_ctl(*args, expect=2)
                self.assertIn(f"qocnetctl: unknown subcommand '{args[-2] if args[-1] == 'x' else args[-1]}' "
                              f"of '{parent}'", p.stderr)
                self.assertEqual(self.stub.calls, [])

    def test_a_missing_daemon_is_named(self):
        missing = f"unix:{self.dir.name}/nobody.sock"
        p = self.run_ctl("status", address=missing, expect=1)
        self.assertIn(f"cannot reach qocnetd at {missing}", p.stderr)
        self.assertIn("qocnetd must be running", p.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--qocnetctl", required=True)
    args, rest = ap.parse_known_args()
    QOCNETCTL = os.path.abspath(args.qocnetctl)
    unittest.main(argv=[sys.argv[0], "-v", *rest])
