# SPDX-License-Identifier: Apache-2.0
"""qocnet: the Python SDK of qocnet's computation processes.

    import qocnet

    client = qocnet.connect()                 # synchronous (qocnet.client)
    process = qocnet.Process("detector", ["10.0.0.1:40000->:5000"], required=0.9,
                             udp_port=6000, on_policy=print)
    process.start()                           # registers; re-registers after a qocnetd restart
    process.report_measured(0.93)

qocnet.aio has the client's calls for asyncio; qocnet.v1 holds the messages
and stubs generated from proto/qocnet/v1. Needs grpcio and protobuf only
(Debian: python3-grpcio, python3-protobuf). docs/PYTHON.md has the rest.
"""

from qocnet.client import (
    CHANNEL_OPTIONS,
    DEFAULT_ADDRESS,
    PolicyWatch,
    QocClient,
    QocError,
    StreamLike,
    channel_credentials,
    connect,
    make_channel,
    measured_request,
    parse_address,
    parse_stream,
    policy_text,
    register_request,
    requirement_request,
    stream_text,
    token_metadata,
)
from qocnet.process import Process
from qocnet.v1 import qoc_pb2, qoc_pb2_grpc, types_pb2

__version__ = "0.1.0"

__all__ = [
    "CHANNEL_OPTIONS", "DEFAULT_ADDRESS", "PolicyWatch", "Process", "QocClient", "QocError", "StreamLike",
    "__version__", "channel_credentials", "connect", "make_channel", "measured_request", "parse_address",
    "parse_stream", "policy_text", "qoc_pb2", "qoc_pb2_grpc", "register_request", "requirement_request",
    "stream_text", "token_metadata", "types_pb2",
]
