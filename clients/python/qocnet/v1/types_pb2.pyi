# SPDX-License-Identifier: Apache-2.0
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CODEC_H264: Codec
CODEC_HEVC: Codec
CODEC_UNSPECIFIED: Codec
DESCRIPTOR: _descriptor.FileDescriptor
DROP_ORDER_DISP: DropOrder
DROP_ORDER_TAIL: DropOrder
DROP_ORDER_THIN: DropOrder
FRAME_CLASS_DIFF: FrameClass
FRAME_CLASS_DISP: FrameClass
FRAME_CLASS_OTHER: FrameClass
FRAME_CLASS_REF: FrameClass
POLICY_KIND_DIFFERENTIAL: PolicyKind
POLICY_KIND_FRAME_AWARE: PolicyKind
POLICY_KIND_KEEP: PolicyKind
POLICY_KIND_UNIFORM: PolicyKind
POLICY_KIND_UNSPECIFIED: PolicyKind

class Bandwidth(_message.Message):
    __slots__ = ["naive_bytes", "qocnet_bytes", "reduction", "replication_bytes", "stream_bytes"]
    NAIVE_BYTES_FIELD_NUMBER: _ClassVar[int]
    QOCNET_BYTES_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_BYTES_FIELD_NUMBER: _ClassVar[int]
    STREAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    naive_bytes: float
    qocnet_bytes: float
    reduction: float
    replication_bytes: float
    stream_bytes: float
    def __init__(self, stream_bytes: _Optional[float] = ..., naive_bytes: _Optional[float] = ..., replication_bytes: _Optional[float] = ..., qocnet_bytes: _Optional[float] = ..., reduction: _Optional[float] = ...) -> None: ...

class ClassCounts(_message.Message):
    __slots__ = ["bytes", "datagrams"]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    DATAGRAMS_FIELD_NUMBER: _ClassVar[int]
    bytes: _containers.RepeatedScalarFieldContainer[int]
    datagrams: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, datagrams: _Optional[_Iterable[int]] = ..., bytes: _Optional[_Iterable[int]] = ...) -> None: ...

class DpiCounters(_message.Message):
    __slots__ = ["all_dropped", "by_class", "clones", "fragments", "gso_packets", "gso_segments", "ipv6_ext_too_deep", "not_ts", "not_udp", "peer_redirects", "pulled", "replicated", "seen", "stream_table_full", "targets_cut", "truncated", "ts", "udp_length_bad", "vlan_too_deep"]
    ALL_DROPPED_FIELD_NUMBER: _ClassVar[int]
    BY_CLASS_FIELD_NUMBER: _ClassVar[int]
    CLONES_FIELD_NUMBER: _ClassVar[int]
    FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    GSO_PACKETS_FIELD_NUMBER: _ClassVar[int]
    GSO_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    IPV6_EXT_TOO_DEEP_FIELD_NUMBER: _ClassVar[int]
    NOT_TS_FIELD_NUMBER: _ClassVar[int]
    NOT_UDP_FIELD_NUMBER: _ClassVar[int]
    PEER_REDIRECTS_FIELD_NUMBER: _ClassVar[int]
    PULLED_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    STREAM_TABLE_FULL_FIELD_NUMBER: _ClassVar[int]
    TARGETS_CUT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    UDP_LENGTH_BAD_FIELD_NUMBER: _ClassVar[int]
    VLAN_TOO_DEEP_FIELD_NUMBER: _ClassVar[int]
    all_dropped: int
    by_class: _containers.RepeatedScalarFieldContainer[int]
    clones: int
    fragments: int
    gso_packets: int
    gso_segments: int
    ipv6_ext_too_deep: int
    not_ts: int
    not_udp: int
    peer_redirects: int
    pulled: int
    replicated: int
    seen: int
    stream_table_full: int
    targets_cut: int
    truncated: int
    ts: int
    udp_length_bad: int
    vlan_too_deep: int
    def __init__(self, seen: _Optional[int] = ..., not_udp: _Optional[int] = ..., not_ts: _Optional[int] = ..., ts: _Optional[int] = ..., by_class: _Optional[_Iterable[int]] = ..., truncated: _Optional[int] = ..., vlan_too_deep: _Optional[int] = ..., ipv6_ext_too_deep: _Optional[int] = ..., fragments: _Optional[int] = ..., udp_length_bad: _Optional[int] = ..., gso_packets: _Optional[int] = ..., gso_segments: _Optional[int] = ..., pulled: _Optional[int] = ..., stream_table_full: _Optional[int] = ..., replicated: _Optional[int] = ..., clones: _Optional[int] = ..., all_dropped: _Optional[int] = ..., peer_redirects: _Optional[int] = ..., targets_cut: _Optional[int] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ["drop", "kind", "order"]
    DROP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    drop: float
    kind: PolicyKind
    order: DropOrder
    def __init__(self, kind: _Optional[_Union[PolicyKind, str]] = ..., drop: _Optional[float] = ..., order: _Optional[_Union[DropOrder, str]] = ...) -> None: ...

class ProcessSpec(_message.Message):
    __slots__ = ["ip", "mac", "name", "port", "udp_port"]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    UDP_PORT_FIELD_NUMBER: _ClassVar[int]
    ip: str
    mac: str
    name: str
    port: str
    udp_port: int
    def __init__(self, name: _Optional[str] = ..., port: _Optional[str] = ..., mac: _Optional[str] = ..., ip: _Optional[str] = ..., udp_port: _Optional[int] = ...) -> None: ...

class QocCurve(_message.Message):
    __slots__ = ["kind", "loss", "qoc"]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    QOC_FIELD_NUMBER: _ClassVar[int]
    kind: PolicyKind
    loss: _containers.RepeatedScalarFieldContainer[float]
    qoc: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, kind: _Optional[_Union[PolicyKind, str]] = ..., loss: _Optional[_Iterable[float]] = ..., qoc: _Optional[_Iterable[float]] = ...) -> None: ...

class QocTable(_message.Message):
    __slots__ = ["curves", "lossless", "metric"]
    CURVES_FIELD_NUMBER: _ClassVar[int]
    LOSSLESS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    curves: _containers.RepeatedCompositeFieldContainer[QocCurve]
    lossless: float
    metric: str
    def __init__(self, metric: _Optional[str] = ..., lossless: _Optional[float] = ..., curves: _Optional[_Iterable[_Union[QocCurve, _Mapping]]] = ...) -> None: ...

class StreamId(_message.Message):
    __slots__ = ["destination_port", "source", "source_port"]
    DESTINATION_PORT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PORT_FIELD_NUMBER: _ClassVar[int]
    destination_port: int
    source: str
    source_port: int
    def __init__(self, source: _Optional[str] = ..., source_port: _Optional[int] = ..., destination_port: _Optional[int] = ...) -> None: ...

class StreamStats(_message.Message):
    __slots__ = ["cc_errors", "codec", "frames", "hevc_pps_unknown", "misaligned", "pmt_pid", "seen", "stream", "ts_bad_sync", "ts_malformed", "ts_partial", "ts_unparsed", "video_pid"]
    CC_ERRORS_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    HEVC_PPS_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    MISALIGNED_FIELD_NUMBER: _ClassVar[int]
    PMT_PID_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TS_BAD_SYNC_FIELD_NUMBER: _ClassVar[int]
    TS_MALFORMED_FIELD_NUMBER: _ClassVar[int]
    TS_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    TS_UNPARSED_FIELD_NUMBER: _ClassVar[int]
    VIDEO_PID_FIELD_NUMBER: _ClassVar[int]
    cc_errors: int
    codec: Codec
    frames: int
    hevc_pps_unknown: int
    misaligned: int
    pmt_pid: int
    seen: ClassCounts
    stream: StreamId
    ts_bad_sync: int
    ts_malformed: int
    ts_partial: int
    ts_unparsed: int
    video_pid: int
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., pmt_pid: _Optional[int] = ..., video_pid: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ..., frames: _Optional[int] = ..., seen: _Optional[_Union[ClassCounts, _Mapping]] = ..., misaligned: _Optional[int] = ..., cc_errors: _Optional[int] = ..., ts_partial: _Optional[int] = ..., ts_bad_sync: _Optional[int] = ..., ts_malformed: _Optional[int] = ..., ts_unparsed: _Optional[int] = ..., hevc_pps_unknown: _Optional[int] = ...) -> None: ...

class TargetStats(_message.Message):
    __slots__ = ["clones", "delivered", "dropped", "held_until_rap", "held_until_rap_bytes", "partial", "policy", "process"]
    CLONES_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    HELD_UNTIL_RAP_BYTES_FIELD_NUMBER: _ClassVar[int]
    HELD_UNTIL_RAP_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    clones: int
    delivered: ClassCounts
    dropped: ClassCounts
    held_until_rap: int
    held_until_rap_bytes: int
    partial: int
    policy: Policy
    process: str
    def __init__(self, process: _Optional[str] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., delivered: _Optional[_Union[ClassCounts, _Mapping]] = ..., dropped: _Optional[_Union[ClassCounts, _Mapping]] = ..., clones: _Optional[int] = ..., partial: _Optional[int] = ..., held_until_rap: _Optional[int] = ..., held_until_rap_bytes: _Optional[int] = ...) -> None: ...

class PolicyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class DropOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class FrameClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
