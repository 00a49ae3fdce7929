# SPDX-License-Identifier: Apache-2.0
from qocnet.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
LOOP_ACTION_HELD: LoopAction
LOOP_ACTION_LOOSENED: LoopAction
LOOP_ACTION_TIGHTENED: LoopAction
LOOP_ACTION_UNSPECIFIED: LoopAction

class PolicyUpdate(_message.Message):
    __slots__ = ["generation", "policy", "reason"]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    generation: int
    policy: StreamPolicy
    reason: str
    def __init__(self, policy: _Optional[_Union[StreamPolicy, _Mapping]] = ..., reason: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class RegisterProcessRequest(_message.Message):
    __slots__ = ["interface", "name", "required", "streams", "udp_port"]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    UDP_PORT_FIELD_NUMBER: _ClassVar[int]
    interface: str
    name: str
    required: float
    streams: _containers.RepeatedCompositeFieldContainer[_types_pb2.StreamId]
    udp_port: int
    def __init__(self, streams: _Optional[_Iterable[_Union[_types_pb2.StreamId, _Mapping]]] = ..., required: _Optional[float] = ..., name: _Optional[str] = ..., udp_port: _Optional[int] = ..., interface: _Optional[str] = ...) -> None: ...

class RegisterProcessResponse(_message.Message):
    __slots__ = ["policies", "process", "token"]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[StreamPolicy]
    process: _types_pb2.ProcessSpec
    token: str
    def __init__(self, token: _Optional[str] = ..., process: _Optional[_Union[_types_pb2.ProcessSpec, _Mapping]] = ..., policies: _Optional[_Iterable[_Union[StreamPolicy, _Mapping]]] = ...) -> None: ...

class ReportMeasuredQocRequest(_message.Message):
    __slots__ = ["measured", "name", "stream"]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    measured: float
    name: str
    stream: _types_pb2.StreamId
    def __init__(self, name: _Optional[str] = ..., stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., measured: _Optional[float] = ...) -> None: ...

class ReportMeasuredQocResponse(_message.Message):
    __slots__ = ["action", "policy"]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    action: LoopAction
    policy: StreamPolicy
    def __init__(self, policy: _Optional[_Union[StreamPolicy, _Mapping]] = ..., action: _Optional[_Union[LoopAction, str]] = ...) -> None: ...

class ReportRequirementRequest(_message.Message):
    __slots__ = ["name", "required", "stream"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    name: str
    required: float
    stream: _types_pb2.StreamId
    def __init__(self, name: _Optional[str] = ..., stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., required: _Optional[float] = ...) -> None: ...

class ReportRequirementResponse(_message.Message):
    __slots__ = ["policies"]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[StreamPolicy]
    def __init__(self, policies: _Optional[_Iterable[_Union[StreamPolicy, _Mapping]]] = ...) -> None: ...

class StreamPolicy(_message.Message):
    __slots__ = ["measured", "policy", "required", "stream", "target"]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    measured: float
    policy: _types_pb2.Policy
    required: float
    stream: _types_pb2.StreamId
    target: float
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ..., required: _Optional[float] = ..., target: _Optional[float] = ..., measured: _Optional[float] = ...) -> None: ...

class UnregisterProcessRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UnregisterProcessResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class WatchPolicyRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LoopAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
