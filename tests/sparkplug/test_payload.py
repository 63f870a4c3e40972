"""Payload values both ways between vplc's protobuf module and Eclipse Tahu's JS codec."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runtime.sparkplug._payload import (
    DataType,
    Payload,
    PayloadError,
    decode,
    metric_value,
    set_property,
    set_value,
)
from tests.sparkplug.conftest import Codec

CASES: list[tuple[DataType, Any]] = [
    (DataType.Int8, -128),
    (DataType.Int8, 127),
    (DataType.Int16, -32768),
    (DataType.Int16, 32767),
    (DataType.Int32, -(2**31)),
    (DataType.Int32, 2**31 - 1),
    (DataType.Int64, -(2**53)),  # JS numbers: exact to 2**53
    (DataType.UInt8, 255),
    (DataType.UInt16, 65535),
    (DataType.Float, 36.5),
    (DataType.Double, -1.0e300),
    (DataType.Boolean, True),
    (DataType.Boolean, False),
    (DataType.String, "Grüße, 温度 ✓"),
]


def _ours(datatype: DataType, value: Any) -> bytes:
    payload = Payload(timestamp=1, seq=7)
    m = payload.metrics.add(name="m", alias=3, datatype=datatype)
    set_value(m, datatype, value)
    set_property(m.properties, "Quality", DataType.Int32, 192)
    set_property(m.properties, "engUnit", DataType.String, "°C")
    return payload.SerializeToString()


@pytest.mark.parametrize(("datatype", "value"), CASES)
def test_tahu_decodes_what_we_encode(codec: Codec, datatype: DataType, value: Any) -> None:
    got = codec.decode(_ours(datatype, value))
    metric = got["metrics"][0]
    assert metric["type"] == datatype.name
    decoded = metric["value"]
    if datatype is DataType.Int64:
        decoded = int(decoded)
    assert decoded == value
    props = {k: v["value"] for k, v in metric["properties"].items()}
    assert props == {"Quality": 192, "engUnit": "°C"}
    assert got["seq"] == "7"


@pytest.mark.parametrize(("datatype", "value"), CASES)
def test_we_decode_what_tahu_encodes(codec: Codec, datatype: DataType, value: Any) -> None:
    raw = codec.encode(
        {"timestamp": 5, "metrics": [{"name": "m", "type": datatype.name, "value": value}]}
    )
    payload = decode(raw, max_bytes=1024)
    metric = payload.metrics[0]
    assert metric.datatype == datatype
    got = metric_value(metric, datatype)
    if datatype is DataType.Float:
        assert math.isclose(got, value, rel_tol=1e-7)
    else:
        assert got == value


def test_null_is_a_flag_not_a_value(codec: Codec) -> None:
    payload = Payload(timestamp=1)
    m = payload.metrics.add(name="m", datatype=DataType.Double)
    set_value(m, DataType.Double, None)
    assert codec.decode(payload.SerializeToString())["metrics"][0]["value"] is None
    assert (
        metric_value(decode(payload.SerializeToString(), max_bytes=100).metrics[0], DataType.Double)
        is None
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xff\xff", "not a Sparkplug B payload"),
        (b"\x18\x90\x03", "seq 400"),
        (b"\x12\x02\x20\x0a", "neither a name nor an alias"),
        (b"\x12\x05\x0a\x01m\x20\x63", "unknown datatype 99"),
        (b"\x08\x01" * 600, "exceeds"),
    ],
)
def test_decode_refuses_malformed_payloads(raw: bytes, why: str) -> None:
    with pytest.raises(PayloadError, match=why):
        decode(raw, max_bytes=1000)


def test_a_value_in_the_wrong_field_or_out_of_range_is_refused() -> None:
    payload = Payload()
    m = payload.metrics.add(name="m", datatype=DataType.Double)
    m.string_value = "1.5"
    with pytest.raises(PayloadError, match="needs double_value"):
        metric_value(m, DataType.Double)
    m.int_value = 300
    with pytest.raises(PayloadError, match="does not fit UInt8"):
        metric_value(m, DataType.UInt8)
    m.double_value = math.inf
    with pytest.raises(PayloadError, match="finite"):
        metric_value(m, DataType.Double)
