"""Sparkplug B payload values: datatypes, metric values and properties, and checked decoding."""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any

from google.protobuf.message import DecodeError

from hal import IecType, Quality
from runtime.sparkplug import sparkplug_b_pb2 as pb

__all__ = [
    "IEC_DATATYPE",
    "QUALITY_CODE",
    "DataType",
    "Metric",
    "Payload",
    "PayloadError",
    "decode",
    "metric_value",
    "set_property",
    "set_value",
]

Payload = pb.Payload
Metric = pb.Payload.Metric

_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1


class DataType(IntEnum):
    """The specification's datatype numbers (the ones a metric of ours or a command uses)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21


IEC_DATATYPE: dict[IecType, DataType] = {
    IecType.BOOL: DataType.Boolean,
    IecType.INT: DataType.Int16,
    IecType.DINT: DataType.Int32,
    IecType.REAL: DataType.Float,
    IecType.LREAL: DataType.Double,
    IecType.STRING: DataType.String,
}
# Sparkplug 3.0 quality codes (the "Quality" property, Int32): 0 BAD, 192 GOOD, 500 STALE.
# vplc's UNCERTAIN (a held last value, a simulated sensor's doubt) is nearest to STALE.
QUALITY_CODE: dict[Quality, int] = {Quality.BAD: 0, Quality.UNCERTAIN: 500, Quality.GOOD: 192}
QUALITY_STALE = 500

_SMALL_INTS = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32}
_UNSIGNED = {DataType.UInt8: 8, DataType.UInt16: 16, DataType.UInt32: 32, DataType.UInt64: 64}
_FIELD = {
    DataType.Int8: "int_value",
    DataType.Int16: "int_value",
    DataType.Int32: "int_value",
    DataType.UInt8: "int_value",
    DataType.UInt16: "int_value",
    DataType.UInt32: "int_value",
    DataType.Int64: "long_value",
    DataType.UInt64: "long_value",
    DataType.DateTime: "long_value",
    DataType.Float: "float_value",
    DataType.Double: "double_value",
    DataType.Boolean: "boolean_value",
    DataType.String: "string_value",
    DataType.Text: "string_value",
    DataType.UUID: "string_value",
}


class PayloadError(ValueError):
    """A payload (or one of its metrics) that is not valid Sparkplug B; ``str()`` says why."""


def set_value(target: Any, datatype: DataType, value: Any) -> None:
    """Store ``value`` in a Metric or PropertyValue as the specification encodes ``datatype``.

    Signed integers travel as two's complement in the unsigned field (Int8/16/32 in the
    32-bit ``int_value``, Int64 in ``long_value``); ``None`` is ``is_null``.
    """
    if value is None:
        target.is_null = True
        return
    if datatype in _SMALL_INTS:
        target.int_value = int(value) & _U32
    elif datatype is DataType.Int64:
        target.long_value = int(value) & _U64
    elif datatype in (DataType.UInt8, DataType.UInt16, DataType.UInt32):
        target.int_value = int(value)
    elif datatype in (DataType.UInt64, DataType.DateTime):
        target.long_value = int(value)
    elif datatype is DataType.Float:
        target.float_value = float(value)
    elif datatype is DataType.Double:
        target.double_value = float(value)
    elif datatype is DataType.Boolean:
        target.boolean_value = bool(value)
    elif datatype in (DataType.String, DataType.Text, DataType.UUID):
        target.string_value = str(value)
    else:
        raise ValueError(f"datatype {datatype.name} is not one vplc publishes")


def set_property(props: Any, key: str, datatype: DataType, value: Any) -> None:
    """Append ``key`` = ``value`` to a PropertySet (keys[i] belongs to values[i])."""
    props.keys.append(key)
    pv = props.values.add()
    pv.type = datatype
    set_value(pv, datatype, value)


def metric_value(metric: Any, datatype: DataType) -> Any:
    """The value a received metric carries for ``datatype``; PayloadError if it does not fit."""
    if metric.HasField("is_null") and metric.is_null:
        return None
    field = _FIELD.get(datatype)
    if field is None:
        raise PayloadError(f"datatype {datatype.name} is not accepted in a command")
    if metric.WhichOneof("value") != field:
        found = metric.WhichOneof("value") or "no value"
        raise PayloadError(f"a {datatype.name} metric needs {field}, found {found}")
    raw = getattr(metric, field)
    if datatype in _SMALL_INTS:
        bits = _SMALL_INTS[datatype]
        raw &= (1 << bits) - 1  # the low bits carry the value; the rest is sign extension
        return raw - (1 << bits) if raw >= 1 << (bits - 1) else raw
    if datatype is DataType.Int64:
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if datatype in _UNSIGNED and raw >= 1 << _UNSIGNED[datatype]:
        raise PayloadError(f"{raw} does not fit {datatype.name}")
    if datatype in (DataType.Float, DataType.Double) and not math.isfinite(raw):
        raise PayloadError(f"{raw} is not a finite number")
    return raw


def decode(data: bytes, *, max_bytes: int) -> Any:
    """Parse a Payload; PayloadError for oversized, undecodable or inconsistent ones."""
    if len(data) > max_bytes:
        raise PayloadError(f"payload of {len(data)} bytes exceeds the {max_bytes} byte limit")
    payload = Payload()
    try:
        payload.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise PayloadError(f"not a Sparkplug B payload (protobuf: {exc})") from None
    if payload.HasField("seq") and payload.seq > 255:
        raise PayloadError(f"seq {payload.seq} is outside 0..255")
    for i, metric in enumerate(payload.metrics):
        if not metric.HasField("name") and not metric.HasField("alias"):
            raise PayloadError(f"metrics[{i}] has neither a name nor an alias")
        if metric.HasField("datatype") and metric.datatype not in DataType._value2member_map_:
            raise PayloadError(f"metrics[{i}]: unknown datatype {metric.datatype}")
    return payload
