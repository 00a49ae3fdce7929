# SPDX-License-Identifier: Apache-2.0
"""qocnet.Process: a computation process's registration, kept alive.

    import qocnet

    def on_policy(update):
        print(update.reason, qocnet.policy_text(update.policy.policy))

    with qocnet.Process("detector", ["10.0.0.1:40000->:5000"], required=0.9, udp_port=6000,
                        on_policy=on_policy) as process:
        while running:
            process.report_measured(measure())   # None while qocnetd is away

start() registers (retrying while qocnetd is not up yet) and follows the
process's policies in a thread. When qocnetd goes away (UNAVAILABLE, the
policy stream broken) the thread backs off and retries; a restarted qocnetd
that kept the registration (pinned state) takes the old token and the
stream resumes; one that lost it (NOT_FOUND, PERMISSION_DENIED) gets the
registration again with the same arguments, and the requirements reported
since. Either way on_policy sees every stream's policy again ("current" or
"registered").
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Sequence

import grpc

from qocnet.client import (
    DEFAULT_ADDRESS,
    PolicyCallback,
    QocClient,
    QocError,
    StreamLike,
    connect,
    parse_stream,
    register_request,
    stream_text,
)
from qocnet.v1 import qoc_pb2

# qocnetd is away (or still compiling its datapath): wait and call again.
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# qocnetd does not know the token (it restarted without its state): register again.
_UNKNOWN = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)

EventCallback = Callable[[str], None]


class Process:
    """One computation process registered with qocnetd, kept registered.

    `name`, `streams`, `required`, `udp_port` and `interface` are
    RegisterProcess's (qocnet.client.QocClient.register). `on_policy(update)`
    is called from the process's thread for every PolicyUpdate; `on_event(text)`
    for what happens to the session ("registered", "qocnetd away: ...",
    "registered again"). Use it as a context manager, or start() and stop().
    """

    def __init__(self, name: str, streams: Sequence[StreamLike], required: float = 0.0, udp_port: int = 0,
                 interface: str = "", *, address: str = DEFAULT_ADDRESS, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None, timeout: float = 5.0,
                 on_policy: Optional[PolicyCallback] = None, on_event: Optional[EventCallback] = None,
                 backoff: float = 0.2, max_backoff: float = 5.0):
        # Checked now: a malformed argument is the caller's error, not a reason to retry.
        register_request(name, streams, required, udp_port, interface)
        self.name = name
        self.streams = [parse_stream(s) for s in streams]
        self.required = float(required)
        self.udp_port = int(udp_port)
        self.interface = interface
        self.address = address
        self.on_policy = on_policy
        self.on_event = on_event
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.client: QocClient = connect(address, tls_ca, tls_cert, tls_key, timeout)
        self.registrations = 0  # successful RegisterProcess calls
        self.error: Optional[QocError] = None  # the last refusal that was not qocnetd being away
        self._policies: Dict[str, qoc_pb2.StreamPolicy] = {}
        self._stream_required: Dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._watch: Optional[grpc.Call] = None
        self._thread: Optional[threading.Thread] = None

    # --- the caller's side ------------------------------------------------------------

    def start(self, wait: Optional[float] = 30.0) -> "Process":
        """Registers (retrying for up to `wait` seconds while qocnetd is away;
        None: until it answers) and starts following the policies. Raises
        QocError if qocnetd refuses the registration, or stays away."""
        deadline = None if wait is None else time.monotonic() + wait
        delay = self.backoff
        while True:
            try:
                self._register()
                break
            except QocError as e:
                if e.code not in _TRANSIENT or (deadline is not None and time.monotonic() + delay > deadline):
                    raise
            if self._stop.wait(delay):
                raise QocError(f"process '{self.name}': stopped before it registered")
            delay = min(delay * 2, self.max_backoff)
        self._thread = threading.Thread(target=self._run, name=f"qocnet-process-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def registered(self) -> bool:
        """Whether the process holds a token qocnetd gave it (it may be away)."""
        return self.client.token is not None

    @property
    def policies(self) -> Dict[str, qoc_pb2.StreamPolicy]:
        """The last policy of each stream, by stream text ("10.0.0.1:40000->:5000")."""
        with self._cond:
            return dict(self._policies)

    def wait_registrations(self, count: int, timeout: Optional[float] = None) -> bool:
        """Waits until RegisterProcess succeeded `count` times in all."""
        with self._cond:
            return self._cond.wait_for(lambda: self.registrations >= count, timeout)

    def report_measured(self, measured: float,
                        stream: Optional[StreamLike] = None) -> Optional[qoc_pb2.ReportMeasuredQocResponse]:
        """Reports the QoC measured over the last interval; the edge's answer,
        or None while qocnetd is away or the process is registering again."""
        if not self.registered:
            return None
        try:
            return self.client.report_measured(measured, stream)
        except QocError as e:
            if e.code in _TRANSIENT or e.code in _UNKNOWN:
                return None
            raise

    def report_requirement(self, required: float,
                           stream: Optional[StreamLike] = None) -> Optional[list[qoc_pb2.StreamPolicy]]:
        """Changes the required QoC (one stream, or all); kept for a later
        registration. None while qocnetd is away (it is sent on registering again)."""
        if stream is None:
            self.required = float(required)
            self._stream_required.clear()
        else:
            self._stream_required[stream_text(parse_stream(stream))] = float(required)
        if not self.registered:
            return None
        try:
            return self.client.report_requirement(required, stream)
        except QocError as e:
            if e.code in _TRANSIENT or e.code in _UNKNOWN:
                return None
            raise

    def stop(self, unregister: bool = True) -> None:
        """Stops following the policies and unregisters (if qocnetd is there)."""
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.cancel()
        if self._thread is not None:
            self._thread.join(10)
        if unregister and self.client.token:
            try:
                self.client.unregister()
            except QocError:
                pass  # qocnetd is away: it forgets the process when it restarts without state
        self.client.close()

    def __enter__(self) -> "Process":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the process's thread -----------------------------------------------------------

    def _event(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)

    def _register(self) -> None:
        self.client.register(self.name, self.streams, self.required, self.udp_port, self.interface)
        for text, required in self._stream_required.items():
            self.client.report_requirement(required, text)
        with self._cond:
            self.registrations += 1
            self._cond.notify_all()
        self._event("registered" if self.registrations == 1 else "registered again")

    def _follow(self) -> Optional[grpc.StatusCode]:
        """Follows WatchPolicy until it ends; the status it ended with (None: ended cleanly)."""
        call = self.client.watch_policy()
        self._watch = call  # type: ignore[assignment]
        if self._stop.is_set():
            call.cancel()  # type: ignore[attr-defined]
        try:
            for update in call:
                with self._cond:
                    self._policies[stream_text(update.policy.stream)] = update.policy
                if self.on_policy is not None:
                    self.on_policy(update)
            return None
        except grpc.RpcError as e:
            return e.code()  # type: ignore[attr-defined, no-any-return]
        finally:
            self._watch = None

    def _run(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            started = time.monotonic()
            code = self._follow()
            if self._stop.is_set():
                return
            if time.monotonic() - started > 10:
                delay = self.backoff  # the stream had been up: qocnetd was there
            if code in _UNKNOWN:
                self._event(f"qocnetd does not know the token ({code.name}): registering again")
                self._reregister()
                delay = self.backoff
                continue
            what = "the policy stream ended" if code is None else code.name
            self._event(f"qocnetd away ({what}): retrying in {delay:g} s")
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_backoff)

    def _reregister(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            try:
                self._register()
                self.error = None
                return
            except QocError as e:
                if e.code not in _TRANSIENT:
                    self.error = e
                    self._event(f"registering again refused: {e}")
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_backoff)


__all__ = ["EventCallback", "Process"]
