"""Births, data by exception and deaths of the edge node, decoded by Eclipse Tahu's JS codec."""

from __future__ import annotations

import time
from typing import Any

from runtime import ScanEngine
from tests.sparkplug.conftest import (
    DBIRTH,
    DDATA,
    DDEATH,
    NBIRTH,
    NDEATH,
    Codec,
    Host,
    NodeFactory,
    metric_by_name,
    props,
)


def test_nbirth_and_dbirth_carry_every_metric_with_alias_datatype_and_properties(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine
) -> None:
    node = make_node()
    nbirth = codec.decode(host.wait_for(NBIRTH)[0].payload)
    dbirth = codec.decode(host.wait_for(DBIRTH)[0].payload)
    assert nbirth["seq"] == "0"
    bdseq = metric_by_name(nbirth, "bdSeq")
    assert bdseq["type"] == "Int64"
    assert metric_by_name(nbirth, "Node Control/Rebirth") | {"timestamp": None} == {
        "name": "Node Control/Rebirth",
        "type": "Boolean",
        "value": False,
        "timestamp": None,
    }
    assert metric_by_name(nbirth, "Node Info/App")["value"] == "testapp"
    assert dbirth["seq"] == "1"
    names = [m["name"] for m in dbirth["metrics"]]
    expected = ["State"] + [f"Points/{p.name}" for p in engine.image.points]
    expected += ["Parameters/gain", "Device Control/Start", "Device Control/Stop"]
    expected += ["Device Control/Reset"]
    expected += [f"Alarms/main.high/{p}" for p in ("Active", "Acked", "Severity", "Text")]
    expected += ["Alarms/main.high/Acknowledge"]
    expected += [f"Batch/main.phase/{p}" for p in ("State", "Step", "Command")]
    assert names == expected
    aliases = [int(m["alias"]) for m in dbirth["metrics"]]
    assert aliases == list(range(1, len(names) + 1))
    x = metric_by_name(dbirth, "Points/X")
    assert x["type"] == "Double"
    assert props(x) == {
        "engUnit": "degC",
        "engLow": -100.0,
        "engHigh": 100.0,
        "readOnly": True,
        "Quality": 192,
    }
    assert metric_by_name(dbirth, "Points/RUNNING")["type"] == "Boolean"
    n = metric_by_name(dbirth, "Points/N")
    assert n["type"] == "Int16" and isinstance(n["value"], int)
    assert props(metric_by_name(dbirth, "Points/Y"))["engUnit"] == "%"
    gain = metric_by_name(dbirth, "Parameters/gain")
    assert gain["type"] == "Double" and gain["value"] == 2.0
    assert props(gain) == {"engLow": 0.0, "engHigh": 10.0, "readOnly": False}
    assert metric_by_name(dbirth, "State")["value"] == "RUN"
    assert int(x["timestamp"]) > 1_600_000_000_000  # ms since the epoch, UTC
    node.stop()
    ddeath = codec.decode(host.wait_for(DDEATH)[0].payload)
    ndeath = codec.decode(host.wait_for(NDEATH)[0].payload)
    assert "seq" in ddeath
    assert metric_by_name(ndeath, "bdSeq")["value"] == bdseq["value"]
    assert "seq" not in ndeath  # NDEATH carries no seq (Sparkplug 3.0)


def test_ddata_by_exception_with_seq_increasing_and_wrapping(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine
) -> None:
    make_node()
    host.wait_for(DBIRTH)
    x = engine.image.points[0]
    alias_x = 2  # State is 1, then the points in order
    assert x.name == "X"
    # ~300 messages: N changes every 100 cycles; X is driven here, so seq passes 255 → 0.
    seen: list[dict[str, Any]] = []
    for i in range(300):
        value = float(i % 2) * 50.0
        engine.app.drivers["mem"].values["x"] = value  # type: ignore[attr-defined]
        time.sleep(0.03)
    got = host.wait_for(DDATA, count=280, timeout=30)
    seen = [codec.decode(m.payload) for m in got]
    seqs = [int(p["seq"]) for p in seen]
    # Every message's seq is the previous + 1 modulo 256 (birth was 1).
    expected = [(2 + i) % 256 for i in range(len(seqs))]
    assert seqs == expected
    assert 255 in seqs and seqs[seqs.index(255) + 1] == 0
    xs = [m for p in seen for m in p["metrics"] if int(m["alias"]) == alias_x]
    assert {m["value"] for m in xs} == {0.0, 50.0}
    assert all("name" not in m for p in seen for m in p["metrics"])  # aliases only
