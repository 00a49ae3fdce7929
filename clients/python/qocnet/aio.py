# SPDX-License-Identifier: Apache-2.0
"""qocnet.aio: qocnetd's QocService for asyncio programs (grpc.aio).

The same calls as qocnet.client.QocClient, awaited:

    import qocnet.aio

    async with qocnet.aio.connect() as client:
        await client.register("detector", ["10.0.0.1:40000->:5000"], required=0.9, udp_port=6000)
        await client.report_measured(0.93)
        async for update in client.watch_policy():
            print(qocnet.policy_text(update.policy.policy))

Requests are built and checked by qocnet.client's functions; errors are
the same QocError with the gRPC status code.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional, Tuple

import grpc
import grpc.aio

from qocnet.client import (
    CHANNEL_OPTIONS,
    DEFAULT_ADDRESS,
    QocError,
    StreamLike,
    channel_credentials,
    measured_request,
    register_request,
    requirement_request,
    token_metadata,
)
from qocnet.v1 import qoc_pb2, qoc_pb2_grpc, types_pb2


def make_channel(address: str = DEFAULT_ADDRESS, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None) -> grpc.aio.Channel:
    """An asyncio channel to qocnetd (the address forms of qocnet.client.make_channel)."""
    target, creds = channel_credentials(address, tls_ca, tls_cert, tls_key)
    if creds is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(target, creds, options=CHANNEL_OPTIONS)


class AsyncQocClient:
    """One computation process's session with qocnetd's QocService, for asyncio."""

    def __init__(self, channel: grpc.aio.Channel, address: str = "", timeout: float = 5.0):
        self.channel = channel
        self.address = address
        self.timeout = timeout
        self.stub = qoc_pb2_grpc.QocServiceStub(channel)
        self.name: Optional[str] = None
        self.token: Optional[str] = None
        self.process: Optional[types_pb2.ProcessSpec] = None
        self._watches: list[grpc.aio.UnaryStreamCall] = []

    async def _call(self, method: Callable[..., Awaitable[Any]], request: Any, **kwargs: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout, **kwargs)
        except grpc.aio.AioRpcError as e:
            raise await self._error(e) from None

    async def _error(self, e: grpc.aio.AioRpcError) -> QocError:
        code = e.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not await self._connected():
            return QocError(f"cannot reach qocnetd at {self.address or 'its address'} "
                            f"({code.name}: {e.details()}): qocnetd must be running and serving "
                            "that address", code)
        return QocError(f"{code.name}: {e.details()}", code)

    async def _connected(self) -> bool:
        try:
            await asyncio.wait_for(self.channel.channel_ready(), 0.2)
            return True
        except asyncio.TimeoutError:
            return False

    def _session(self) -> Tuple[str, str]:
        if not self.token or not self.name:
            raise QocError("not registered: call register() first")
        return self.name, self.token

    async def register(self, name: str, streams: Iterable[StreamLike], required: float = 0.0,
                       udp_port: int = 0, interface: str = "") -> list[qoc_pb2.StreamPolicy]:
        """Registers the process; keeps its token. Returns the StreamPolicy list."""
        request = register_request(name, streams, required, udp_port, interface)
        response = await self._call(self.stub.RegisterProcess, request)
        self.name, self.token = name, response.token
        self.process = response.process
        return list(response.policies)

    async def report_requirement(self, required: float,
                                 stream: Optional[StreamLike] = None) -> list[qoc_pb2.StreamPolicy]:
        """The process needs QoC >= required (on one stream, or all of them)."""
        name, token = self._session()
        response = await self._call(self.stub.ReportRequirement, requirement_request(name, required, stream),
                                    metadata=token_metadata(token))
        return list(response.policies)

    async def report_measured(self, measured: float,
                              stream: Optional[StreamLike] = None) -> qoc_pb2.ReportMeasuredQocResponse:
        """The QoC measured over the last interval; the edge's closed-loop answer."""
        name, token = self._session()
        return await self._call(self.stub.ReportMeasuredQoc, measured_request(name, measured, stream),
                                metadata=token_metadata(token))

    async def watch_policy(self) -> AsyncIterator[qoc_pb2.PolicyUpdate]:
        """PolicyUpdate messages as the edge changes this process's policies
        (the first lists every stream's), until the stream ends or the caller
        stops iterating. A failed stream raises QocError."""
        name, token = self._session()
        call = self.stub.WatchPolicy(qoc_pb2.WatchPolicyRequest(name=name), metadata=token_metadata(token))
        self._watches.append(call)
        try:
            async for update in call:
                yield update
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                raise QocError(f"{e.code().name}: {e.details()}", e.code()) from None
        finally:
            call.cancel()
            if call in self._watches:
                self._watches.remove(call)

    async def unregister(self) -> None:
        """Cancels the policy watches and unregisters the process."""
        for call in self._watches:
            call.cancel()
        self._watches.clear()
        if not self.token:
            return
        name, token = self._session()
        await self._call(self.stub.UnregisterProcess, qoc_pb2.UnregisterProcessRequest(name=name),
                         metadata=token_metadata(token))
        self.token = None

    async def close(self) -> None:
        for call in self._watches:
            call.cancel()
        self._watches.clear()
        await self.channel.close()

    async def __aenter__(self) -> "AsyncQocClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.token:
                await self.unregister()
        finally:
            await self.close()


def connect(address: str = DEFAULT_ADDRESS, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
            tls_key: Optional[str] = None, timeout: float = 5.0) -> AsyncQocClient:
    """An AsyncQocClient for qocnetd at `address` (nothing is dialled until the
    first call; create it inside the running event loop)."""
    return AsyncQocClient(make_channel(address, tls_ca, tls_cert, tls_key), address, timeout)


__all__ = ["AsyncQocClient", "QocError", "connect", "make_channel"]
