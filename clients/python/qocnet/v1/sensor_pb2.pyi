# SPDX-License-Identifier: Apache-2.0
from qocnet.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetSensorStatusRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetSensorStatusResponse(_message.Message):
    __slots__ = ["default_policy", "dpi", "epoch", "generation", "program_id", "streams", "uplink"]
    DEFAULT_POLICY_FIELD_NUMBER: _ClassVar[int]
    DPI_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    UPLINK_FIELD_NUMBER: _ClassVar[int]
    default_policy: _types_pb2.Policy
    dpi: _types_pb2.DpiCounters
    epoch: int
    generation: int
    program_id: int
    streams: _containers.RepeatedCompositeFieldContainer[SensorStream]
    uplink: str
    def __init__(self, uplink: _Optional[str] = ..., program_id: _Optional[int] = ..., default_policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ..., generation: _Optional[int] = ..., epoch: _Optional[int] = ..., streams: _Optional[_Iterable[_Union[SensorStream, _Mapping]]] = ..., dpi: _Optional[_Union[_types_pb2.DpiCounters, _Mapping]] = ...) -> None: ...

class SensorStream(_message.Message):
    __slots__ = ["codec", "dropped", "frames", "held_until_rap", "held_until_rap_bytes", "misaligned", "policy", "sent", "stream"]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    HELD_UNTIL_RAP_BYTES_FIELD_NUMBER: _ClassVar[int]
    HELD_UNTIL_RAP_FIELD_NUMBER: _ClassVar[int]
    MISALIGNED_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    codec: _types_pb2.Codec
    dropped: _types_pb2.ClassCounts
    frames: int
    held_until_rap: int
    held_until_rap_bytes: int
    misaligned: int
    policy: _types_pb2.Policy
    sent: _types_pb2.ClassCounts
    stream: _types_pb2.StreamId
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ..., sent: _Optional[_Union[_types_pb2.ClassCounts, _Mapping]] = ..., dropped: _Optional[_Union[_types_pb2.ClassCounts, _Mapping]] = ..., frames: _Optional[int] = ..., codec: _Optional[_Union[_types_pb2.Codec, str]] = ..., misaligned: _Optional[int] = ..., held_until_rap: _Optional[int] = ..., held_until_rap_bytes: _Optional[int] = ...) -> None: ...

class SetDefaultPolicyRequest(_message.Message):
    __slots__ = ["policy"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _types_pb2.Policy
    def __init__(self, policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ...) -> None: ...

class SetDefaultPolicyResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SetStreamPolicyRequest(_message.Message):
    __slots__ = ["epoch", "generation", "policy", "stream"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    generation: int
    policy: _types_pb2.Policy
    stream: _types_pb2.StreamId
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ..., generation: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class SetStreamPolicyResponse(_message.Message):
    __slots__ = ["applied"]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: _types_pb2.Policy
    def __init__(self, applied: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ...) -> None: ...
