# SPDX-License-Identifier: Apache-2.0
"""qocnet.client: the synchronous client of qocnetd's QocService.

A computation process registers itself (its name, the UDP port it receives
on and the streams it consumes), says which QoC it requires, reports what it
measures, and follows the policy the edge applies to it. Where its copies go
is not for it to say: qocnetd finds the process's own veth toward the edge
from the caller's network namespace (docs/SECURITY.md, Tenancy).

    import qocnet

    client = qocnet.connect()                    # unix:/run/qocnet/process/qocnet.sock
    client.register("detector", ["10.0.0.1:40000->:5000"], required=0.9, udp_port=6000)
    client.follow_policy(lambda update: print(update.policy))
    client.report_measured(0.93)
    client.unregister()

qocnet.aio has the same calls for asyncio; qocnet.Process keeps a
registration alive across qocnetd restarts. The messages and stubs are
qocnet.v1's, generated from proto/qocnet/v1 (clients/python/generate-stubs.sh).
"""

from __future__ import annotations

import ipaddress
import pathlib
import re
import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Tuple, Union

import grpc

from qocnet.v1 import qoc_pb2, qoc_pb2_grpc, types_pb2

DEFAULT_ADDRESS = "unix:/run/qocnet/process/qocnet.sock"

# How soon a channel dials qocnetd again after losing it (gRPC's own default
# starts at 1 s and grows to 120 s): a restarted qocnetd is found within 2 s.
CHANNEL_OPTIONS: Tuple[Tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


class QocError(Exception):
    """A call qocnetd refused or that did not reach it.

    `code` is the grpc.StatusCode (None for errors found before any call);
    the message names the field and the fix, as qocnetd wrote it.
    """

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None):
        super().__init__(message)
        self.code = code


# Streams: "10.0.0.1:40000->:5000", "[fd00::1]:40000->:5000" (the library's
# to_string(StreamId)), also "10.0.0.1:40000:5000" or a (source, sport, dport) tuple.

_STREAM = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<v4>[^:\[\]]+)):(?P<sport>[^:]*?)(?:->:|:)(?P<dport>[^:]*)$")

StreamLike = Union[str, Sequence[Any], types_pb2.StreamId]
"""A stream: "10.0.0.1:40000->:5000", a (source, sport, dport) tuple or a StreamId."""


def _port(text: str, which: str, whole: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise QocError(f"stream '{whole}': {which} '{text}' is not a number")
    value = int(text)
    if not 1 <= value <= 65535:
        raise QocError(f"stream '{whole}': {which} {value} is not in 1..65535")
    return value


def parse_stream(stream: StreamLike) -> types_pb2.StreamId:
    """A StreamId message from its text, a (source, sport, dport) tuple or a StreamId."""
    if isinstance(stream, types_pb2.StreamId):
        return stream
    if isinstance(stream, str):
        m = _STREAM.match(stream.strip())
        if not m:
            raise QocError(f"stream '{stream}': write SOURCE:SPORT->:DPORT, e.g. "
                           "10.0.0.1:40000->:5000 or [fd00::1]:40000->:5000")
        source = m.group("v6") if m.group("v6") is not None else m.group("v4")
        sport = _port(m.group("sport"), "source port", stream)
        dport = _port(m.group("dport"), "destination port", stream)
    else:
        try:
            source, sport, dport = stream
        except (TypeError, ValueError):
            raise QocError(f"stream {stream!r}: give 'SOURCE:SPORT->:DPORT' or (source, sport, dport)")
        whole = f"{stream!r}"
        sport = _port(str(sport), "source port", whole)
        dport = _port(str(dport), "destination port", whole)
    try:
        ipaddress.ip_address(source)
    except ValueError:
        raise QocError(f"stream '{stream}': source '{source}' is not an IPv4 or IPv6 address")
    return types_pb2.StreamId(source=source, source_port=sport, destination_port=dport)


def stream_text(stream: types_pb2.StreamId) -> str:
    """The library's spelling: 10.0.0.1:40000->:5000, [fd00::1]:40000->:5000."""
    source = f"[{stream.source}]" if ":" in stream.source else stream.source
    return f"{source}:{stream.source_port}->:{stream.destination_port}"


_KIND_NAMES = {
    types_pb2.POLICY_KIND_KEEP: "keep",
    types_pb2.POLICY_KIND_UNIFORM: "uniform",
    types_pb2.POLICY_KIND_DIFFERENTIAL: "differential",
    types_pb2.POLICY_KIND_FRAME_AWARE: "frame_aware",
}


_ORDER_SUFFIXES = {
    types_pb2.DROP_ORDER_DISP: "",  # frame_aware's default, not spelt out
    types_pb2.DROP_ORDER_TAIL: ",tail",
    types_pb2.DROP_ORDER_THIN: ",thin",
}


def policy_text(policy: types_pb2.Policy) -> str:
    """keep, uniform(0.05), differential(0.1), frame_aware(0.3), frame_aware(0.3,tail)."""
    name = _KIND_NAMES.get(policy.kind, "unspecified")
    if policy.kind in (types_pb2.POLICY_KIND_KEEP, types_pb2.POLICY_KIND_UNSPECIFIED):
        return name
    order = _ORDER_SUFFIXES.get(policy.order, f",order {policy.order}")
    return f"{name}({policy.drop:g}{order})"


# Addresses: unix:/PATH (or /PATH), tcp:HOST:PORT, tcp://HOST:PORT, HOST:PORT, [IPV6]:PORT.

def parse_address(address: str) -> Tuple[str, str]:
    """(kind, target): kind 'unix' or 'tcp', target what gRPC dials."""
    if not address:
        raise QocError("address is empty: write unix:/PATH or tcp:HOST:PORT")
    if address.startswith("unix:"):
        path = address[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise QocError(f"address '{address}': no socket path after 'unix:'")
        return "unix", "unix:" + path
    if address.startswith(("/", "./", "../")):
        return "unix", "unix:" + address
    hostport = address
    for prefix in ("tcp://", "tcp:"):
        if address.startswith(prefix):
            hostport = address[len(prefix):]
            break
    else:
        if "://" in address:
            raise QocError(f"address '{address}': unknown scheme; write unix:/PATH or tcp:HOST:PORT")
    m = re.match(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$", hostport)
    if not m or not 1 <= int(m.group("port")) <= 65535:
        raise QocError(f"address '{address}': write unix:/PATH, tcp:HOST:PORT or HOST:PORT "
                       "(IPv6 as [ADDR]:PORT, port 1..65535)")
    return "tcp", hostport


def _read(path: Optional[str], what: str) -> Optional[bytes]:
    if not path:
        return None
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise QocError(f"{what} '{path}' cannot be read: {e.strerror}") from None


def channel_credentials(address: str, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                        tls_key: Optional[str] = None) -> Tuple[str, Optional[grpc.ChannelCredentials]]:
    """(target, credentials) of a channel to qocnetd; credentials None for an
    insecure channel (a Unix socket, or TCP without TLS files)."""
    kind, target = parse_address(address)
    tls = any((tls_ca, tls_cert, tls_key))
    if kind == "unix":
        if tls:
            raise QocError(f"TLS files were given for the Unix socket {address}: TLS is for TCP addresses")
        return target, None
    if not tls:
        return target, None
    if bool(tls_cert) != bool(tls_key):
        raise QocError("give both the TLS client certificate and its key, or neither")
    creds = grpc.ssl_channel_credentials(root_certificates=_read(tls_ca, "TLS CA file"),
                                         private_key=_read(tls_key, "TLS key"),
                                         certificate_chain=_read(tls_cert, "TLS certificate"))
    return target, creds


def make_channel(address: str = DEFAULT_ADDRESS, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None) -> grpc.Channel:
    """A channel to qocnetd: a Unix socket, plain TCP, or TCP with TLS (a CA
    to verify the daemon, and a certificate + key for mutual TLS)."""
    target, creds = channel_credentials(address, tls_ca, tls_cert, tls_key)
    if creds is None:
        return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.secure_channel(target, creds, options=CHANNEL_OPTIONS)


# Requests, built apart from the calls so they can be checked without a server.

def register_request(name: str, streams: Iterable[StreamLike], required: float = 0.0,
                     udp_port: int = 0, interface: str = "") -> qoc_pb2.RegisterProcessRequest:
    if not name:
        raise QocError("register: name is empty")
    if not 0 <= int(udp_port) <= 65535:
        raise QocError(f"process '{name}': udp_port {udp_port} is not in 0..65535")
    ids = [parse_stream(s) for s in streams]
    if not ids:
        raise QocError(f"process '{name}': register at least one stream")
    if required < 0:
        raise QocError(f"process '{name}': required {required} is below 0")
    return qoc_pb2.RegisterProcessRequest(name=name, streams=ids, required=float(required),
                                          udp_port=int(udp_port), interface=interface)


def token_metadata(token: str) -> Tuple[Tuple[str, str], ...]:
    """The call metadata that carries a process's token."""
    return (("authorization", f"Bearer {token}"),)


def requirement_request(name: str, required: float,
                        stream: Optional[StreamLike] = None) -> qoc_pb2.ReportRequirementRequest:
    req = qoc_pb2.ReportRequirementRequest(name=name, required=float(required))
    if stream is not None:
        req.stream.CopyFrom(parse_stream(stream))
    return req


def measured_request(name: str, measured: float,
                     stream: Optional[StreamLike] = None) -> qoc_pb2.ReportMeasuredQocRequest:
    req = qoc_pb2.ReportMeasuredQocRequest(name=name, measured=float(measured))
    if stream is not None:
        req.stream.CopyFrom(parse_stream(stream))
    return req


PolicyCallback = Callable[[qoc_pb2.PolicyUpdate], None]
ErrorCallback = Callable[["QocError"], None]


class PolicyWatch:
    """A thread that follows WatchPolicy and calls back for every update."""

    def __init__(self, calls: Iterator[qoc_pb2.PolicyUpdate], callback: PolicyCallback,
                 on_error: Optional[ErrorCallback]):
        self._calls = calls
        self._callback = callback
        self._on_error = on_error
        self.error: Optional[QocError] = None
        self._thread = threading.Thread(target=self._run, name="qocnet-watch-policy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for update in self._calls:
                self._callback(update)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                return
            self.error = QocError(f"{e.code().name}: {e.details()}", e.code())
            if self._on_error:
                self._on_error(self.error)

    def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Cancels the stream and waits for the thread."""
        self._calls.cancel()  # type: ignore[attr-defined]  # a grpc call object
        self._thread.join(timeout)

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class QocClient:
    """One computation process's session with qocnetd's QocService."""

    def __init__(self, channel: grpc.Channel, address: str = "", timeout: float = 5.0):
        self.channel = channel
        self.address = address
        self.timeout = timeout
        self.stub = qoc_pb2_grpc.QocServiceStub(channel)
        self.name: Optional[str] = None
        self.token: Optional[str] = None
        # Where its copies go, as qocnetd found it (RegisterProcessResponse.process).
        self.process: Optional[types_pb2.ProcessSpec] = None
        self._watches: list[PolicyWatch] = []

    def _call(self, method: Callable[..., Any], request: Any, **kwargs: Any) -> Any:
        try:
            return method(request, timeout=self.timeout, **kwargs)
        except grpc.RpcError as e:
            raise self._error(e) from None

    def _error(self, e: grpc.RpcError) -> QocError:
        code = e.code()
        # UNAVAILABLE over a connected channel is qocnetd's own answer (its
        # datapath still compiling, or it is shutting down), not a failure to
        # reach it.
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not self._connected():
            return QocError(f"cannot reach qocnetd at {self.address or 'its address'} "
                            f"({code.name}: {e.details()}): qocnetd must be running and serving "
                            "that address", code)
        return QocError(f"{code.name}: {e.details()}", code)

    def _connected(self) -> bool:
        try:
            grpc.channel_ready_future(self.channel).result(timeout=0.2)
            return True
        except grpc.FutureTimeoutError:
            return False

    def _session(self) -> Tuple[str, str]:
        if not self.token or not self.name:
            raise QocError("not registered: call register() first")
        return self.name, self.token

    def register(self, name: str, streams: Iterable[StreamLike], required: float = 0.0,
                 udp_port: int = 0, interface: str = "") -> list[qoc_pb2.StreamPolicy]:
        """Registers the process; keeps its token. Returns the StreamPolicy list.
        `udp_port`: where it receives (0: the sensor's destination port);
        `interface`: its own interface toward the edge, only if it has several."""
        request = register_request(name, streams, required, udp_port, interface)
        response = self._call(self.stub.RegisterProcess, request)
        self.name, self.token = name, response.token
        self.process = response.process
        return list(response.policies)

    def report_requirement(self, required: float,
                           stream: Optional[StreamLike] = None) -> list[qoc_pb2.StreamPolicy]:
        """The process needs QoC >= required (on one stream, or all of them)."""
        name, token = self._session()
        return list(self._call(self.stub.ReportRequirement, requirement_request(name, required, stream),
                               metadata=token_metadata(token)).policies)

    def report_measured(self, measured: float,
                        stream: Optional[StreamLike] = None) -> qoc_pb2.ReportMeasuredQocResponse:
        """The QoC measured over the last interval; returns the ReportMeasuredQocResponse
        (the policy now applied and whether it was tightened, loosened or held)."""
        name, token = self._session()
        return self._call(self.stub.ReportMeasuredQoc, measured_request(name, measured, stream),
                          metadata=token_metadata(token))

    def watch_policy(self) -> Iterator[qoc_pb2.PolicyUpdate]:
        """PolicyUpdate messages as the edge changes this process's policies;
        the first lists every stream's. Blocks; cancel with .cancel() on the
        returned iterator (a grpc call object)."""
        name, token = self._session()
        return self.stub.WatchPolicy(qoc_pb2.WatchPolicyRequest(name=name), metadata=token_metadata(token))

    def follow_policy(self, callback: PolicyCallback, on_error: Optional[ErrorCallback] = None) -> PolicyWatch:
        """watch_policy() in a thread: callback(update) for each PolicyUpdate,
        on_error(QocError) if the stream fails. Stop it with .stop()."""
        watch = PolicyWatch(self.watch_policy(), callback, on_error)
        self._watches.append(watch)
        return watch

    def unregister(self) -> None:
        """Stops the policy watches and unregisters the process."""
        for w in self._watches:
            w.stop()
        self._watches.clear()
        if not self.token:
            return
        name, token = self._session()
        self._call(self.stub.UnregisterProcess, qoc_pb2.UnregisterProcessRequest(name=name),
                   metadata=token_metadata(token))
        self.token = None

    def close(self) -> None:
        for w in self._watches:
            w.stop()
        self._watches.clear()
        self.channel.close()

    def __enter__(self) -> "QocClient":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.token:
                self.unregister()
        finally:
            self.close()


def connect(address: str = DEFAULT_ADDRESS, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
            tls_key: Optional[str] = None, timeout: float = 5.0) -> QocClient:
    """A QocClient for qocnetd at `address` (nothing is dialled until the first call)."""
    return QocClient(make_channel(address, tls_ca, tls_cert, tls_key), address, timeout)


__all__ = [
    "CHANNEL_OPTIONS", "DEFAULT_ADDRESS", "ErrorCallback", "PolicyCallback", "PolicyWatch", "QocClient", "QocError",
    "StreamLike", "channel_credentials", "connect", "make_channel", "measured_request", "parse_address",
    "parse_stream", "policy_text", "register_request", "requirement_request", "stream_text", "token_metadata",
    "qoc_pb2", "qoc_pb2_grpc", "types_pb2",
]
