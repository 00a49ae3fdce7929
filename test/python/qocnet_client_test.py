#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Python SDK (clients/python, package qocnet) without qocnetd: the
messages it builds, its parsing of streams and addresses, its session
handling (token kept and sent, policy stream followed in a thread,
unregister) with the synchronous client (qocnet.client) and the asyncio one
(qocnet.aio), and qocnet.Process registering again by itself when the
service it talks to is stopped and started again. The service is a stub
QocService served by this test on a Unix socket in a temporary directory:
it only records requests and answers fixed messages; the end-to-end test
against qocnetd lives with the daemon (test/daemon/python_sdk_test.cpp).

Run by CTest with /usr/bin/python3 (python3-grpcio, python3-protobuf).
"""

import asyncio
import pathlib
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

# The in-tree package (no installation needed).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"))

import grpc  # noqa: E402

import qocnet  # noqa: E402
import qocnet.aio  # noqa: E402
import qocnet.client as qc  # noqa: E402
from qocnet.v1 import qoc_pb2, qoc_pb2_grpc, types_pb2  # noqa: E402

STREAM = "10.0.0.1:40000->:5000"


class Messages(unittest.TestCase):
    def test_streams_parse_the_library_spelling(self):
        s = qc.parse_stream(STREAM)
        self.assertEqual((s.source, s.source_port, s.destination_port), ("10.0.0.1", 40000, 5000))
        self.assertEqual(qc.stream_text(s), STREAM)
        v6 = qc.parse_stream("[fd00::1]:40000->:5000")
        self.assertEqual(v6.source, "fd00::1")
        self.assertEqual(qc.stream_text(v6), "[fd00::1]:40000->:5000")
        self.assertEqual(qc.parse_stream("10.0.0.2:1234:5000").destination_port, 5000)
        self.assertEqual(qc.parse_stream(("10.0.0.3", 1, 2)).source_port, 1)
        self.assertIs(qc.parse_stream(s), s)

    def test_malformed_streams_name_the_part(self):
        for text, says in [("10.0.0.1", "SOURCE:SPORT->:DPORT"),
                           ("10.0.0.1:x->:5000", "source port 'x'"),
                           ("10.0.0.1:40000->:0", "destination port 0 is not in 1..65535"),
                           ("10.0.0.1:40000->:70000", "not in 1..65535"),
                           ("host:40000->:5000", "not an IPv4 or IPv6 address")]:
            with self.subTest(text=text):
                with self.assertRaises(qc.QocError) as e:
                    qc.parse_stream(text)
                self.assertIn(says, str(e.exception))

    def test_policies_print_as_the_library_does(self):
        P = types_pb2.Policy
        self.assertEqual(qc.policy_text(P(kind=types_pb2.POLICY_KIND_KEEP)), "keep")
        self.assertEqual(qc.policy_text(P(kind=types_pb2.POLICY_KIND_UNIFORM, drop=0.05)), "uniform(0.05)")
        self.assertEqual(qc.policy_text(P(kind=types_pb2.POLICY_KIND_FRAME_AWARE, drop=0.3)), "frame_aware(0.3)")
        self.assertEqual(qc.policy_text(P(kind=types_pb2.POLICY_KIND_FRAME_AWARE, drop=0.3,
                                          order=types_pb2.DROP_ORDER_TAIL)), "frame_aware(0.3,tail)")
        self.assertEqual(qc.policy_text(P(kind=types_pb2.POLICY_KIND_FRAME_AWARE, drop=0.3,
                                          order=types_pb2.DROP_ORDER_THIN)), "frame_aware(0.3,thin)")

    def test_register_request(self):
        # No address in it: qocnetd takes the copies' destination from the
        # caller's own veth.
        req = qc.register_request("detector", [STREAM, "[fd00::1]:1->:2"], required=0.9, udp_port=6000)
        self.assertIsInstance(req, qoc_pb2.RegisterProcessRequest)
        self.assertEqual((req.name, req.udp_port, req.interface), ("detector", 6000, ""))
        self.assertEqual([qc.stream_text(s) for s in req.streams], [STREAM, "[fd00::1]:1->:2"])
        self.assertAlmostEqual(req.required, 0.9)
        self.assertEqual(qc.register_request("d", [STREAM], interface="eth1").interface, "eth1")
        with self.assertRaises(qc.QocError):
            qc.register_request("detector", [])
        with self.assertRaises(qc.QocError):
            qc.register_request("", [STREAM])
        with self.assertRaises(qc.QocError):
            qc.register_request("p", [STREAM], udp_port=70000)

    def test_requirement_and_measured_requests(self):
        r = qc.requirement_request("detector", 0.8)
        self.assertEqual(r.name, "detector")
        self.assertEqual(qc.token_metadata("tok"), (("authorization", "Bearer tok"),))
        self.assertAlmostEqual(r.required, 0.8)
        self.assertFalse(r.HasField("stream"))  # unset: every stream of the process
        r = qc.requirement_request("detector", 0.8, STREAM)
        self.assertEqual(qc.stream_text(r.stream), STREAM)
        m = qc.measured_request("detector", 0.75, STREAM)
        self.assertIsInstance(m, qoc_pb2.ReportMeasuredQocRequest)
        self.assertAlmostEqual(m.measured, 0.75)
        self.assertEqual(m.stream.destination_port, 5000)

    def test_addresses(self):
        self.assertEqual(qc.parse_address(qc.DEFAULT_ADDRESS), ("unix", "unix:/run/qocnet/process/qocnet.sock"))
        self.assertEqual(qc.parse_address("unix:///tmp/q.sock"), ("unix", "unix:/tmp/q.sock"))
        self.assertEqual(qc.parse_address("/tmp/q.sock"), ("unix", "unix:/tmp/q.sock"))
        self.assertEqual(qc.parse_address("tcp:10.0.0.5:7000"), ("tcp", "10.0.0.5:7000"))
        self.assertEqual(qc.parse_address("edge:7000"), ("tcp", "edge:7000"))
        self.assertEqual(qc.parse_address("[fd00::1]:7000"), ("tcp", "[fd00::1]:7000"))
        for bad in ["", "unix:", "edge", "edge:0", "fd00::1:7000", "http://edge:80"]:
            with self.subTest(address=bad), self.assertRaises(qc.QocError):
                qc.parse_address(bad)

    def test_tls_only_for_tcp(self):
        with self.assertRaises(qc.QocError) as e:
            qc.make_channel("unix:/tmp/q.sock", tls_ca="/etc/hostname")
        self.assertIn("TLS is for TCP", str(e.exception))
        with self.assertRaises(qc.QocError):
            qc.make_channel("tcp:127.0.0.1:7000", tls_cert="/etc/hostname")
        with self.assertRaises(qc.QocError) as e:
            qc.make_channel("tcp:127.0.0.1:7000", tls_ca="/nonexistent/ca.pem")
        self.assertIn("/nonexistent/ca.pem", str(e.exception))

    def test_calls_need_registration(self):
        client = qc.connect("unix:/nonexistent/q.sock")
        with self.assertRaises(qc.QocError) as e:
            client.report_requirement(0.9)
        self.assertIn("register()", str(e.exception))
        client.close()


class StubQoc(qoc_pb2_grpc.QocServiceServicer):
    """Records requests; answers fixed messages."""

    def __init__(self):
        self.requests = []
        self.tokens = []
        self.watching = threading.Event()
        self.release = threading.Event()

    def _policy(self, drop):
        return qoc_pb2.StreamPolicy(stream=qc.parse_stream(STREAM),
                                    policy=types_pb2.Policy(kind=types_pb2.POLICY_KIND_DIFFERENTIAL, drop=drop),
                                    required=0.9, target=0.9)

    def RegisterProcess(self, request, context):
        self.requests.append(request)
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))
        return qoc_pb2.RegisterProcessResponse(token="tok-1", policies=[self._policy(0.0)])

    def ReportRequirement(self, request, context):
        self.requests.append(request)
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))
        if dict(context.invocation_metadata()).get("authorization") != "Bearer tok-1":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "token: not this process's")
        if request.required > 1:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "required: above the best achievable 1")
        if request.required == 0.5:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the datapath is still compiling")
        return qoc_pb2.ReportRequirementResponse(policies=[self._policy(0.01)])

    def ReportMeasuredQoc(self, request, context):
        self.requests.append(request)
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))
        return qoc_pb2.ReportMeasuredQocResponse(policy=self._policy(0.005),
                                                 action=qoc_pb2.LOOP_ACTION_TIGHTENED)

    def WatchPolicy(self, request, context):
        self.requests.append(request)
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))
        self.watching.set()
        for gen, reason in [(1, "registered"), (2, "requirement")]:
            yield qoc_pb2.PolicyUpdate(policy=self._policy(0.01 * gen), reason=reason, generation=gen)
        self.release.wait(10)

    def UnregisterProcess(self, request, context):
        self.requests.append(request)
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))
        self.release.set()
        return qoc_pb2.UnregisterProcessResponse()


class Session(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.address = f"unix:{self.dir.name}/qoc.sock"
        self.stub = StubQoc()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        qoc_pb2_grpc.add_QocServiceServicer_to_server(self.stub, self.server)
        self.server.add_insecure_port(self.address)
        self.server.start()

    def tearDown(self):
        self.stub.release.set()
        self.server.stop(None)
        self.dir.cleanup()

    def test_register_report_watch_unregister(self):
        got = []
        done = threading.Event()

        def on_update(update):
            got.append(update)
            if len(got) == 2:
                done.set()

        with qc.connect(self.address, timeout=5) as client:
            policies = client.register("detector", [STREAM])
            self.assertEqual(client.token, "tok-1")
            self.assertEqual(qc.policy_text(policies[0].policy), "differential(0)")
            policies = client.report_requirement(0.9)
            self.assertEqual(qc.policy_text(policies[0].policy), "differential(0.01)")
            r = client.report_measured(0.85, STREAM)
            self.assertEqual(r.action, qoc_pb2.LOOP_ACTION_TIGHTENED)
            watch = client.follow_policy(on_update)
            self.assertTrue(done.wait(5), "two policy updates through the callback thread")
            self.assertEqual([u.reason for u in got], ["registered", "requirement"])
            self.assertTrue(watch.running)
            client.unregister()
            self.assertIsNone(client.token)
            self.assertFalse(watch.running)

        kinds = [type(r).__name__ for r in self.stub.requests]
        self.assertEqual(kinds, ["RegisterProcessRequest", "ReportRequirementRequest",
                                 "ReportMeasuredQocRequest", "WatchPolicyRequest", "UnregisterProcessRequest"])
        for r in self.stub.requests[1:]:
            self.assertEqual(r.name, "detector")
        # The token travels in the metadata of every call after registration.
        self.assertEqual(self.stub.tokens, [None] + ["Bearer tok-1"] * 4)
        self.assertFalse(self.stub.requests[1].HasField("stream"))
        self.assertEqual(qc.stream_text(self.stub.requests[2].stream), STREAM)

    def test_refusals_carry_code_and_message(self):
        with qc.connect(self.address) as client:
            client.register("detector", [STREAM])
            with self.assertRaises(qc.QocError) as e:
                client.report_requirement(1.5)
            self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(str(e.exception), "FAILED_PRECONDITION: required: above the best achievable 1")

    def test_unavailable_from_a_connected_daemon_is_its_own_answer(self):
        with qc.connect(self.address) as client:
            client.register("detector", [STREAM])
            with self.assertRaises(qc.QocError) as e:
                client.report_requirement(0.5)
            self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(str(e.exception), "UNAVAILABLE: the datapath is still compiling")

    def test_unreachable_daemon_names_the_address(self):
        address = f"unix:{self.dir.name}/nobody.sock"
        client = qc.connect(address, timeout=2)
        with self.assertRaises(qc.QocError) as e:
            client.register("detector", [STREAM])
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertIn(f"cannot reach qocnetd at {address}", str(e.exception))
        client.close()



class Package(unittest.TestCase):
    def test_the_package_exports_the_client_and_its_version(self):
        self.assertEqual(qocnet.__version__, "0.1.0")
        self.assertIs(qocnet.connect, qc.connect)
        self.assertIs(qocnet.QocError, qc.QocError)
        self.assertIs(qocnet.qoc_pb2, qoc_pb2)
        root = pathlib.Path(qocnet.__file__).parent
        self.assertTrue((root / "py.typed").is_file())
        for stem in ("types", "qoc", "control", "sensor"):
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                self.assertTrue((root / "v1" / (stem + suffix)).is_file(), stem + suffix)


class AsyncSession(unittest.TestCase):
    """qocnet.aio against the same stub: the same calls, awaited."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.address = f"unix:{self.dir.name}/qoc.sock"
        self.stub = StubQoc()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        qoc_pb2_grpc.add_QocServiceServicer_to_server(self.stub, self.server)
        self.server.add_insecure_port(self.address)
        self.server.start()

    def tearDown(self):
        self.stub.release.set()
        self.server.stop(None)
        self.dir.cleanup()

    def test_register_report_watch_unregister(self):
        async def session():
            async with qocnet.aio.connect(self.address, timeout=5) as client:
                policies = await client.register("detector", [STREAM], required=0.9, udp_port=6000)
                self.assertEqual(client.token, "tok-1")
                self.assertEqual(qc.policy_text(policies[0].policy), "differential(0)")
                policies = await client.report_requirement(0.9)
                self.assertEqual(qc.policy_text(policies[0].policy), "differential(0.01)")
                r = await client.report_measured(0.85, STREAM)
                self.assertEqual(r.action, qoc_pb2.LOOP_ACTION_TIGHTENED)
                reasons = []
                async for update in client.watch_policy():
                    reasons.append(update.reason)
                    if len(reasons) == 2:
                        break
                self.assertEqual(reasons, ["registered", "requirement"])
                with self.assertRaises(qocnet.QocError) as e:
                    await client.report_requirement(1.5)
                self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
                await client.unregister()
                self.assertIsNone(client.token)

        asyncio.run(session())
        kinds = [type(r).__name__ for r in self.stub.requests]
        self.assertEqual(kinds, ["RegisterProcessRequest", "ReportRequirementRequest", "ReportMeasuredQocRequest",
                                 "WatchPolicyRequest", "ReportRequirementRequest", "UnregisterProcessRequest"])
        self.assertEqual(self.stub.requests[0].udp_port, 6000)
        self.assertEqual(self.stub.tokens, [None] + ["Bearer tok-1"] * 5)

    def test_unreachable_daemon_names_the_address(self):
        address = f"unix:{self.dir.name}/nobody.sock"

        async def session():
            client = qocnet.aio.connect(address, timeout=2)
            try:
                with self.assertRaises(qocnet.QocError) as e:
                    await client.register("detector", [STREAM])
                self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
                self.assertIn(f"cannot reach qocnetd at {address}", str(e.exception))
                with self.assertRaises(qocnet.QocError) as e:
                    await client.report_measured(0.5)
                self.assertIn("register()", str(e.exception))
            finally:
                await client.close()

        asyncio.run(session())


class EdgeStub(qoc_pb2_grpc.QocServiceServicer):
    """A QocService that knows the tokens it gave out (and those `known`
    from before, as a qocnetd restarted with its state would), refuses
    others with NOT_FOUND as qocnetd does, and keeps policy streams open."""

    def __init__(self, epoch, known=()):
        self.epoch = epoch
        self.tokens = set(known)
        self.requests = []
        self.lock = threading.Lock()
        self.closing = threading.Event()

    def _check(self, context):
        token = dict(context.invocation_metadata()).get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            context.abort(grpc.StatusCode.NOT_FOUND, "no process 'detector'")

    def _policy(self):
        return qoc_pb2.StreamPolicy(stream=qc.parse_stream(STREAM),
                                    policy=types_pb2.Policy(kind=types_pb2.POLICY_KIND_UNIFORM,
                                                            drop=0.1 * self.epoch))

    def RegisterProcess(self, request, context):
        with self.lock:
            self.requests.append(request)
            token = f"tok-{self.epoch}-{len(self.tokens)}"
            self.tokens.add(token)
        return qoc_pb2.RegisterProcessResponse(token=token, policies=[self._policy()])

    def ReportMeasuredQoc(self, request, context):
        self._check(context)
        with self.lock:
            self.requests.append(request)
        return qoc_pb2.ReportMeasuredQocResponse(policy=self._policy(), action=qoc_pb2.LOOP_ACTION_HELD)

    def ReportRequirement(self, request, context):
        self._check(context)
        with self.lock:
            self.requests.append(request)
        return qoc_pb2.ReportRequirementResponse(policies=[self._policy()])

    def WatchPolicy(self, request, context):
        self._check(context)
        with self.lock:
            self.requests.append(request)
        yield qoc_pb2.PolicyUpdate(policy=self._policy(), reason="current", generation=self.epoch)
        while not self.closing.wait(0.05) and context.is_active():
            pass

    def UnregisterProcess(self, request, context):
        self._check(context)
        with self.lock:
            self.requests.append(request)
        return qoc_pb2.UnregisterProcessResponse()


class ProcessAcrossRestarts(unittest.TestCase):
    """qocnet.Process when the service goes away and comes back."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = f"{self.dir.name}/qoc.sock"
        self.address = f"unix:{self.path}"
        self.server = None

    def serve(self, stub):
        self.stub = stub
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        qoc_pb2_grpc.add_QocServiceServicer_to_server(stub, self.server)
        self.server.add_insecure_port(self.address)
        self.server.start()

    def halt(self):
        self.stub.closing.set()
        self.server.stop(None)
        self.server = None
        pathlib.Path(self.path).unlink(missing_ok=True)

    def tearDown(self):
        if self.server is not None:
            self.halt()
        self.dir.cleanup()

    def wait_for(self, what, predicate, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.05)
        self.fail(f"not within {timeout} s: {what}")

    def test_registers_again_after_a_restart_that_lost_it(self):
        self.serve(EdgeStub(1))
        updates, events = [], []
        process = qocnet.Process("detector", [STREAM], required=0.8, udp_port=6000, address=self.address,
                                 on_policy=updates.append, on_event=events.append, max_backoff=0.5)
        with process:
            self.assertEqual(process.registrations, 1)
            self.wait_for("the first policy", lambda: len(updates) >= 1)
            self.assertEqual(qc.policy_text(updates[0].policy.policy), "uniform(0.1)")
            self.assertEqual(process.report_measured(0.9).action, qoc_pb2.LOOP_ACTION_HELD)
            process.report_requirement(0.7)  # kept for the next registration
            first = self.stub

            self.halt()  # qocnetd stops: the stream breaks, reports find nobody
            self.assertIsNone(process.report_measured(0.9))
            time.sleep(0.5)
            self.serve(EdgeStub(2))  # a new qocnetd without the old state
            self.assertTrue(process.wait_registrations(2, 15), f"registered again; events: {events}")
            self.wait_for("the policy again", lambda: any(u.generation == 2 for u in updates))
            self.assertEqual(qc.policy_text(process.policies[STREAM].policy), "uniform(0.2)")
            self.wait_for("a measured report to the new service",
                          lambda: process.report_measured(0.95) is not None)

        again = [r for r in self.stub.requests if isinstance(r, qoc_pb2.RegisterProcessRequest)]
        self.assertEqual(len(again), 1)
        r = again[0]
        self.assertEqual((r.name, r.udp_port, [qc.stream_text(s) for s in r.streams]), ("detector", 6000, [STREAM]))
        self.assertAlmostEqual(r.required, 0.7)  # the requirement reported since, not the first 0.8
        self.assertIsInstance(self.stub.requests[-1], qoc_pb2.UnregisterProcessRequest)
        self.assertIsInstance(first.requests[0], qoc_pb2.RegisterProcessRequest)
        self.assertIn("registered again", events)

    def test_resumes_with_its_token_when_the_restart_kept_it(self):
        self.serve(EdgeStub(1))
        updates = []
        process = qocnet.Process("detector", [STREAM], address=self.address, on_policy=updates.append,
                                 max_backoff=0.5)
        with process:
            self.wait_for("the first policy", lambda: len(updates) >= 1)
            token = process.client.token
            self.halt()
            self.serve(EdgeStub(2, known=[token]))  # restarted with its state: the token holds
            self.wait_for("the policy again", lambda: any(u.generation == 2 for u in updates))
            self.assertEqual(process.registrations, 1)
            self.assertEqual(process.client.token, token)
        kinds = [type(r).__name__ for r in self.stub.requests]
        self.assertEqual(kinds, ["WatchPolicyRequest", "UnregisterProcessRequest"])

    def test_start_waits_for_qocnetd_and_refusals_are_raised(self):
        process = qocnet.Process("detector", [STREAM], address=self.address, max_backoff=0.2)
        threading.Timer(0.5, lambda: self.serve(EdgeStub(1))).start()
        process.start(wait=10)
        self.assertEqual(process.registrations, 1)
        process.stop()
        with self.assertRaises(qocnet.QocError):
            qocnet.Process("detector", [])
        with self.assertRaises(qocnet.QocError) as e:
            qocnet.Process("detector", [STREAM], address=f"unix:{self.dir.name}/nobody.sock").start(wait=0.5)
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
