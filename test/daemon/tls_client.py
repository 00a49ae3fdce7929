#!/usr/bin/python3
"""One gRPC call to qocnetd over TLS, for the daemon tests (run inside the
daemon's namespace with nsenter). Prints "OK" or "<STATUS_CODE> <details>"."""
import argparse
import sys

import grpc

ap = argparse.ArgumentParser()
ap.add_argument("--stubs", required=True, help="directory of the generated Python stubs")
ap.add_argument("--address", required=True)
ap.add_argument("--ca", required=True)
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--call", choices=["list-processes", "unregister"], required=True)
a = ap.parse_args()
sys.path.insert(0, a.stubs)
from qocnet.v1 import control_pb2, control_pb2_grpc, qoc_pb2, qoc_pb2_grpc  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


creds = grpc.ssl_channel_credentials(
    root_certificates=read(a.ca),
    private_key=read(a.key) if a.key else None,
    certificate_chain=read(a.cert) if a.cert else None)
channel = grpc.secure_channel(a.address, creds)
try:
    if a.call == "list-processes":
        control_pb2_grpc.ControlServiceStub(channel).ListProcesses(control_pb2.ListProcessesRequest(), timeout=5)
    else:
        qoc_pb2_grpc.QocServiceStub(channel).UnregisterProcess(
            qoc_pb2.UnregisterProcessRequest(name="nobody", token="t"), timeout=5)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details())
