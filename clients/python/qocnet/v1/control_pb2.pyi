# SPDX-License-Identifier: Apache-2.0
from qocnet.v1 import types_pb2 as _types_pb2
from qocnet.v1 import qoc_pb2 as _qoc_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddProcessRequest(_message.Message):
    __slots__ = ["process"]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    process: _types_pb2.ProcessSpec
    def __init__(self, process: _Optional[_Union[_types_pb2.ProcessSpec, _Mapping]] = ...) -> None: ...

class AddProcessResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class AddSensorRequest(_message.Message):
    __slots__ = ["sensor"]
    SENSOR_FIELD_NUMBER: _ClassVar[int]
    sensor: Sensor
    def __init__(self, sensor: _Optional[_Union[Sensor, _Mapping]] = ...) -> None: ...

class AddSensorResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class AttachPortRequest(_message.Message):
    __slots__ = ["port"]
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: str
    def __init__(self, port: _Optional[str] = ...) -> None: ...

class AttachPortResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DetachPortRequest(_message.Message):
    __slots__ = ["port"]
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: str
    def __init__(self, port: _Optional[str] = ...) -> None: ...

class DetachPortResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetDpiCountersRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetDpiCountersResponse(_message.Message):
    __slots__ = ["counters"]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    counters: _types_pb2.DpiCounters
    def __init__(self, counters: _Optional[_Union[_types_pb2.DpiCounters, _Mapping]] = ...) -> None: ...

class GetEffectivePolicyRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _types_pb2.StreamId
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ...) -> None: ...

class GetEffectivePolicyResponse(_message.Message):
    __slots__ = ["policy"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _types_pb2.Policy
    def __init__(self, policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ...) -> None: ...

class GetPortCountersRequest(_message.Message):
    __slots__ = ["ports"]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ports: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ports: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPortCountersResponse(_message.Message):
    __slots__ = ["counters"]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    counters: _containers.RepeatedCompositeFieldContainer[PortCounters]
    def __init__(self, counters: _Optional[_Iterable[_Union[PortCounters, _Mapping]]] = ...) -> None: ...

class GetQocTableRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetQocTableResponse(_message.Message):
    __slots__ = ["table"]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: _types_pb2.QocTable
    def __init__(self, table: _Optional[_Union[_types_pb2.QocTable, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ["adopted", "bcc_version", "compile_seconds", "generation", "git_describe", "ports", "programs", "uptime_seconds", "version"]
    ADOPTED_FIELD_NUMBER: _ClassVar[int]
    BCC_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPILE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    GIT_DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    adopted: bool
    bcc_version: str
    compile_seconds: float
    generation: int
    git_describe: str
    ports: _containers.RepeatedScalarFieldContainer[str]
    programs: _containers.RepeatedCompositeFieldContainer[ProgramInfo]
    uptime_seconds: float
    version: str
    def __init__(self, version: _Optional[str] = ..., ports: _Optional[_Iterable[str]] = ..., programs: _Optional[_Iterable[_Union[ProgramInfo, _Mapping]]] = ..., adopted: bool = ..., compile_seconds: _Optional[float] = ..., generation: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., git_describe: _Optional[str] = ..., bcc_version: _Optional[str] = ...) -> None: ...

class GetStreamBandwidthRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _types_pb2.StreamId
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ...) -> None: ...

class GetStreamBandwidthResponse(_message.Message):
    __slots__ = ["bandwidth", "processes"]
    BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    bandwidth: _types_pb2.Bandwidth
    processes: int
    def __init__(self, bandwidth: _Optional[_Union[_types_pb2.Bandwidth, _Mapping]] = ..., processes: _Optional[int] = ...) -> None: ...

class GetTargetStatsRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _types_pb2.StreamId
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ...) -> None: ...

class GetTargetStatsResponse(_message.Message):
    __slots__ = ["departed", "targets"]
    DEPARTED_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    departed: _containers.RepeatedCompositeFieldContainer[_types_pb2.TargetStats]
    targets: _containers.RepeatedCompositeFieldContainer[_types_pb2.TargetStats]
    def __init__(self, targets: _Optional[_Iterable[_Union[_types_pb2.TargetStats, _Mapping]]] = ..., departed: _Optional[_Iterable[_Union[_types_pb2.TargetStats, _Mapping]]] = ...) -> None: ...

class ListPortPairsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListPortPairsResponse(_message.Message):
    __slots__ = ["pairs"]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    pairs: _containers.RepeatedCompositeFieldContainer[PortPair]
    def __init__(self, pairs: _Optional[_Iterable[_Union[PortPair, _Mapping]]] = ...) -> None: ...

class ListProcessesRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListProcessesResponse(_message.Message):
    __slots__ = ["processes"]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    processes: _containers.RepeatedCompositeFieldContainer[_types_pb2.ProcessSpec]
    def __init__(self, processes: _Optional[_Iterable[_Union[_types_pb2.ProcessSpec, _Mapping]]] = ...) -> None: ...

class ListSensorsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListSensorsResponse(_message.Message):
    __slots__ = ["sensors"]
    SENSORS_FIELD_NUMBER: _ClassVar[int]
    sensors: _containers.RepeatedCompositeFieldContainer[Sensor]
    def __init__(self, sensors: _Optional[_Iterable[_Union[Sensor, _Mapping]]] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ["streams"]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[_types_pb2.StreamStats]
    def __init__(self, streams: _Optional[_Iterable[_Union[_types_pb2.StreamStats, _Mapping]]] = ...) -> None: ...

class PortCounters(_message.Message):
    __slots__ = ["fwd_bytes", "fwd_packets", "ifindex", "name", "pass_bytes", "pass_packets", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets"]
    FWD_BYTES_FIELD_NUMBER: _ClassVar[int]
    FWD_PACKETS_FIELD_NUMBER: _ClassVar[int]
    IFINDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASS_BYTES_FIELD_NUMBER: _ClassVar[int]
    PASS_PACKETS_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    fwd_bytes: int
    fwd_packets: int
    ifindex: int
    name: str
    pass_bytes: int
    pass_packets: int
    rx_bytes: int
    rx_packets: int
    tx_bytes: int
    tx_packets: int
    def __init__(self, name: _Optional[str] = ..., ifindex: _Optional[int] = ..., rx_packets: _Optional[int] = ..., rx_bytes: _Optional[int] = ..., fwd_packets: _Optional[int] = ..., fwd_bytes: _Optional[int] = ..., pass_packets: _Optional[int] = ..., pass_bytes: _Optional[int] = ..., tx_packets: _Optional[int] = ..., tx_bytes: _Optional[int] = ...) -> None: ...

class PortPair(_message.Message):
    __slots__ = ["egress", "egress_ifindex", "ingress", "ingress_ifindex"]
    EGRESS_FIELD_NUMBER: _ClassVar[int]
    EGRESS_IFINDEX_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    INGRESS_IFINDEX_FIELD_NUMBER: _ClassVar[int]
    egress: str
    egress_ifindex: int
    ingress: str
    ingress_ifindex: int
    def __init__(self, ingress: _Optional[str] = ..., egress: _Optional[str] = ..., ingress_ifindex: _Optional[int] = ..., egress_ifindex: _Optional[int] = ...) -> None: ...

class ProgramInfo(_message.Message):
    __slots__ = ["id", "name", "verified_insns", "xlated_insns"]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_INSNS_FIELD_NUMBER: _ClassVar[int]
    XLATED_INSNS_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    verified_insns: int
    xlated_insns: int
    def __init__(self, name: _Optional[str] = ..., id: _Optional[int] = ..., verified_insns: _Optional[int] = ..., xlated_insns: _Optional[int] = ...) -> None: ...

class RemovePortPairRequest(_message.Message):
    __slots__ = ["ingress"]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    ingress: str
    def __init__(self, ingress: _Optional[str] = ...) -> None: ...

class RemovePortPairResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class RemoveProcessRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveProcessResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class RemoveSensorRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveSensorResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ResetStreamsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ResetStreamsResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Sensor(_message.Message):
    __slots__ = ["address", "applied", "last_error", "name", "streams"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    address: str
    applied: _types_pb2.Policy
    last_error: str
    name: str
    streams: _containers.RepeatedCompositeFieldContainer[_types_pb2.StreamId]
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., streams: _Optional[_Iterable[_Union[_types_pb2.StreamId, _Mapping]]] = ..., applied: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class SetCloneTargetsRequest(_message.Message):
    __slots__ = ["processes", "stream"]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    processes: _containers.RepeatedScalarFieldContainer[str]
    stream: _types_pb2.StreamId
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., processes: _Optional[_Iterable[str]] = ...) -> None: ...

class SetCloneTargetsResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ["policy", "process", "stream"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    policy: _types_pb2.Policy
    process: str
    stream: _types_pb2.StreamId
    def __init__(self, process: _Optional[str] = ..., stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., policy: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SetPortPairRequest(_message.Message):
    __slots__ = ["pair"]
    PAIR_FIELD_NUMBER: _ClassVar[int]
    pair: PortPair
    def __init__(self, pair: _Optional[_Union[PortPair, _Mapping]] = ...) -> None: ...

class SetPortPairResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SetQocTableRequest(_message.Message):
    __slots__ = ["table", "yaml"]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    table: _types_pb2.QocTable
    yaml: str
    def __init__(self, table: _Optional[_Union[_types_pb2.QocTable, _Mapping]] = ..., yaml: _Optional[str] = ...) -> None: ...

class SetQocTableResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SetRequirementRequest(_message.Message):
    __slots__ = ["process", "required", "stream"]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    process: str
    required: float
    stream: _types_pb2.StreamId
    def __init__(self, process: _Optional[str] = ..., stream: _Optional[_Union[_types_pb2.StreamId, _Mapping]] = ..., required: _Optional[float] = ...) -> None: ...

class SetRequirementResponse(_message.Message):
    __slots__ = ["policy"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _qoc_pb2.StreamPolicy
    def __init__(self, policy: _Optional[_Union[_qoc_pb2.StreamPolicy, _Mapping]] = ...) -> None: ...

class StatsUpdate(_message.Message):
    __slots__ = ["dpi", "generation", "monotonic_seconds", "ports", "sequence", "streams"]
    DPI_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MONOTONIC_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    dpi: _types_pb2.DpiCounters
    generation: int
    monotonic_seconds: float
    ports: _containers.RepeatedCompositeFieldContainer[PortCounters]
    sequence: int
    streams: _containers.RepeatedCompositeFieldContainer[StreamReport]
    def __init__(self, sequence: _Optional[int] = ..., monotonic_seconds: _Optional[float] = ..., streams: _Optional[_Iterable[_Union[StreamReport, _Mapping]]] = ..., ports: _Optional[_Iterable[_Union[PortCounters, _Mapping]]] = ..., dpi: _Optional[_Union[_types_pb2.DpiCounters, _Mapping]] = ..., generation: _Optional[int] = ...) -> None: ...

class StreamReport(_message.Message):
    __slots__ = ["bandwidth", "effective", "requirements", "stream", "targets"]
    BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    bandwidth: _types_pb2.Bandwidth
    effective: _types_pb2.Policy
    requirements: _containers.RepeatedCompositeFieldContainer[_qoc_pb2.StreamPolicy]
    stream: _types_pb2.StreamStats
    targets: _containers.RepeatedCompositeFieldContainer[_types_pb2.TargetStats]
    def __init__(self, stream: _Optional[_Union[_types_pb2.StreamStats, _Mapping]] = ..., effective: _Optional[_Union[_types_pb2.Policy, _Mapping]] = ..., bandwidth: _Optional[_Union[_types_pb2.Bandwidth, _Mapping]] = ..., targets: _Optional[_Iterable[_Union[_types_pb2.TargetStats, _Mapping]]] = ..., requirements: _Optional[_Iterable[_Union[_qoc_pb2.StreamPolicy, _Mapping]]] = ...) -> None: ...

class WatchStatsRequest(_message.Message):
    __slots__ = ["count", "interval_ms"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    interval_ms: int
    def __init__(self, interval_ms: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...
