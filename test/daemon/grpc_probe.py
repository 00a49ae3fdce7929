#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One gRPC call to qocnetd, for the daemon tests: over TLS (run inside the
daemon's namespace with nsenter) or over its Unix socket. Prints "OK" (for
reflection: the services it lists, one per line) or "<STATUS_CODE> <details>"."""
import argparse
import pathlib
import sys

import grpc

ap = argparse.ArgumentParser()
ap.add_argument("--stubs", default=str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"),
                help="directory holding qocnet/v1 (default: the Python SDK's checked-in stubs, clients/python)")
ap.add_argument("--address", required=True)
ap.add_argument("--ca", help="CA of the server certificate (TLS); without it: plaintext (unix: addresses)")
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--call", choices=["list-processes", "unregister", "reflection", "sensor-set-policy",
                                   "sensor-status"], required=True)
ap.add_argument("--stream", default="10.77.0.1:40000:5000", help="sensor-set-policy: SOURCE:SPORT:DPORT")
a = ap.parse_args()
sys.path.insert(0, a.stubs)
from qocnet.v1 import control_pb2, control_pb2_grpc, qoc_pb2, qoc_pb2_grpc  # noqa: E402
from qocnet.v1 import sensor_pb2, sensor_pb2_grpc, types_pb2  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


def reflection_services(channel):
    """ServerReflectionInfo with list_services (field 7) = "*", read raw: the
    response's list_services_response (field 6) holds ServiceResponse
    messages whose field 1 is the name."""
    call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                 request_serializer=lambda b: b, response_deserializer=lambda b: b)
    names = []
    for resp in call(iter([b"\x3a\x01*"]), timeout=5):
        names += [n.decode() for n in parse_names(resp)]
        break
    return names


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << shift
        shift += 7
        if c < 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        if key & 7 == 2:
            n, i = varint(b, i)
            yield key >> 3, b[i:i + n]
            i += n
        elif key & 7 == 0:
            _, i = varint(b, i)
        else:
            raise ValueError("unexpected wire type")


def parse_names(resp):
    for num, body in fields(resp):
        if num == 6:  # ListServiceResponse
            for n2, svc in fields(body):
                if n2 == 1:
                    for n3, name in fields(svc):
                        if n3 == 1:
                            yield name


if a.ca:
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(a.ca),
        private_key=read(a.key) if a.key else None,
        certificate_chain=read(a.cert) if a.cert else None)
    channel = grpc.secure_channel(a.address, creds)
else:
    channel = grpc.insecure_channel(a.address)
try:
    if a.call == "reflection":
        print("\n".join(sorted(reflection_services(channel))))
        sys.exit(0)
    if a.call in ("sensor-set-policy", "sensor-status"):
        stub = sensor_pb2_grpc.SensorServiceStub(channel)
        if a.call == "sensor-status":
            stub.GetSensorStatus(sensor_pb2.GetSensorStatusRequest(), timeout=5)
        else:
            src, sport, dport = a.stream.rsplit(":", 2)
            stub.SetStreamPolicy(sensor_pb2.SetStreamPolicyRequest(
                stream=types_pb2.StreamId(source=src, source_port=int(sport), destination_port=int(dport)),
                policy=types_pb2.Policy(kind=types_pb2.POLICY_KIND_UNIFORM, drop=0.5)), timeout=5)
    elif a.call == "list-processes":
        control_pb2_grpc.ControlServiceStub(channel).ListProcesses(control_pb2.ListProcessesRequest(), timeout=5)
    else:
        qoc_pb2_grpc.QocServiceStub(channel).UnregisterProcess(
            qoc_pb2.UnregisterProcessRequest(name="nobody"), timeout=5,
            metadata=(("authorization", "Bearer t"),))
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details())
