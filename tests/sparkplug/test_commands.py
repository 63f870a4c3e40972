"""DCMD and NCMD through the one command path: the user's role, refusals, audit, bad payloads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runtime import ScanEngine
from runtime.sparkplug import SparkplugNode
from tests.sparkplug.conftest import (
    DBIRTH,
    DCMD,
    DDATA,
    NBIRTH,
    NCMD,
    Codec,
    Host,
    NodeFactory,
    audited,
    metric_by_name,
    poll,
)

GAIN_ALIAS = 6  # State, X, Y, RUNNING, N, then gain


def _dcmd(codec: Codec, *metrics: dict[str, Any], ts_ms: int | None = None) -> bytes:
    stamp = ts_ms if ts_ms is not None else time.time_ns() // 1_000_000
    return codec.encode({"timestamp": stamp, "metrics": list(metrics)})


def _stats(node: SparkplugNode, key: str) -> Any:
    return node.statistics().get("sparkplug", {}).get(key)


def test_dcmd_writes_a_parameter_through_the_command_path_with_audit(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    make_node(command_user="olga")
    host.wait_for(DBIRTH)
    host.publish(DCMD, _dcmd(codec, {"name": "Parameters/gain", "type": "Double", "value": 3.5}))
    poll(lambda: engine.app.parameters["gain"].value == 3.5)
    record = poll(lambda: audited(tmp_path))[0]
    assert record["cmd"] == "set_parameter" and record["status"] == "accepted"
    assert record["user"] == "olga" and record["role"] == "operator"
    assert record["source"] == DCMD and record["target"] == "gain"
    assert record["old"] == 2.0 and record["new"] == 3.5
    # The new value is reported back by DDATA, by alias.
    deadline = time.monotonic() + 10
    found = False
    while not found and time.monotonic() < deadline:
        for m in host.on(DDATA):
            p = codec.decode(m.payload)
            found |= any(int(x["alias"]) == GAIN_ALIAS and x["value"] == 3.5 for x in p["metrics"])
        time.sleep(0.05)
    assert found
    # By alias too (a host sends aliases after the birth).
    host.publish(DCMD, _dcmd(codec, {"alias": GAIN_ALIAS, "type": "Double", "value": 4.0}))
    poll(lambda: engine.app.parameters["gain"].value == 4.0)
    # The same message again is a replay: refused, audited, nothing done.
    engine.app.parameters["gain"].value  # noqa: B018
    raw = _dcmd(codec, {"alias": GAIN_ALIAS, "type": "Double", "value": 5.0})
    host.publish(DCMD, raw)
    poll(lambda: engine.app.parameters["gain"].value == 5.0)
    host.publish(DCMD, raw)
    refused = poll(lambda: [r for r in audited(tmp_path) if r["status"] == "refused"])
    assert "already" in refused[0]["reason"] or "used" in refused[0]["reason"], refused


def test_dcmd_refusals_out_of_range_role_readonly_stale_and_retained(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    # A retained command would run again at every reconnect: the copy the broker hands a
    # new subscription is refused.
    host.publish(
        DCMD,
        _dcmd(codec, {"name": "Parameters/gain", "type": "Double", "value": 1.5}),
        retain=True,
    )
    node = make_node(command_user="olga")
    host.wait_for(DBIRTH)
    retained = poll(lambda: [r for r in audited(tmp_path) if "retained" in r["reason"]])
    assert retained[0]["status"] == "refused" and retained[0]["cmd"] == "set_parameter"
    host.publish(DCMD, b"", retain=True)  # clears it from the broker (and is not a command)
    # Out of the parameter's range (0..10): the command path refuses, audited.
    host.publish(DCMD, _dcmd(codec, {"name": "Parameters/gain", "type": "Double", "value": 50.0}))
    rec = poll(lambda: [r for r in audited(tmp_path) if "above max" in r["reason"]])[0]
    assert rec["status"] == "refused" and rec["cmd"] == "set_parameter"
    # Stop needs an engineer; olga is an operator.
    host.publish(
        DCMD, _dcmd(codec, {"name": "Device Control/Stop", "type": "Boolean", "value": True})
    )
    rec = poll(lambda: [r for r in audited(tmp_path) if r["cmd"] == "stop"])[0]
    assert rec["status"] == "refused" and "engineer" in rec["reason"]
    assert engine.running
    # A stale command (older than the policy's 30 s) is refused.
    old = time.time_ns() // 1_000_000 - 120_000
    host.publish(
        DCMD, _dcmd(codec, {"name": "Parameters/gain", "type": "Double", "value": 1.0}, ts_ms=old)
    )
    rec = poll(lambda: [r for r in audited(tmp_path) if "stale" in r["reason"]])[0]
    assert rec["status"] == "refused" and rec["cmd"] == "set_parameter"
    # Points are read-only over Sparkplug: the whole message is refused before any command.
    host.publish(
        DCMD,
        _dcmd(
            codec,
            {"name": "Parameters/gain", "type": "Double", "value": 1.0},
            {"name": "Points/X", "type": "Double", "value": 1.0},
        ),
    )
    poll(lambda: (node.statistics().get("commands") or {}).get("malformed", 0) >= 1)
    time.sleep(0.3)
    assert engine.app.parameters["gain"].value == 2.0  # nothing of all that was done
    assert all(r["status"] == "refused" for r in audited(tmp_path))


def test_malformed_payloads_are_refused_counted_and_the_node_goes_on(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    node = make_node(command_user="olga")
    host.wait_for(DBIRTH)
    bad = [
        b"\xff\xff\xff",  # truncated varint
        b"\x12\x05\x0a\x03abc" + b"\x99",  # trailing garbage after a metric
        b"\x18\x90\x03",  # seq 400: outside 0..255
        _dcmd(codec, {"name": "Parameters/nope", "type": "Double", "value": 1.0}),
        _dcmd(codec, {"alias": 999, "type": "Double", "value": 1.0}),
        _dcmd(codec, {"name": "Parameters/gain", "type": "String", "value": "high"}),
        codec.encode({"metrics": [{"name": "Parameters/gain", "type": "Double", "value": 1.0}]}),
    ]
    for payload in bad:
        host.publish(DCMD, payload)
    host.publish(NCMD, b"\x0a")  # truncated
    poll(lambda: (node.statistics().get("commands") or {}).get("malformed", 0) >= len(bad) + 1)
    assert _stats(node, "payloads_refused") >= 4
    assert engine.app.parameters["gain"].value == 2.0
    assert engine.running
    # Still serving: a good command after the junk is done.
    host.publish(DCMD, _dcmd(codec, {"name": "Parameters/gain", "type": "Double", "value": 7.0}))
    poll(lambda: engine.app.parameters["gain"].value == 7.0)
    # No command record for the junk: it is summarised (CommandGuard), not audited one by one.
    assert [r["status"] for r in audited(tmp_path)] == ["accepted"]


def test_without_a_command_user_every_dcmd_is_refused(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine
) -> None:
    node = make_node()
    host.wait_for(DBIRTH)
    host.publish(DCMD, _dcmd(codec, {"name": "Parameters/gain", "type": "Double", "value": 3.0}))
    poll(lambda: (node.statistics().get("commands") or {}).get("disabled", 0) >= 1)
    assert engine.app.parameters["gain"].value == 2.0


def test_rebirth_command_republishes_both_births(
    make_node: NodeFactory, host: Host, codec: Codec
) -> None:
    make_node()
    first = codec.decode(host.wait_for(NBIRTH)[0].payload)
    host.wait_for(DBIRTH)
    host.wait_for(DDATA, count=3)
    rebirth = {"name": "Node Control/Rebirth", "type": "Boolean", "value": True}
    host.publish(
        NCMD, codec.encode({"timestamp": time.time_ns() // 1_000_000, "metrics": [rebirth]})
    )
    again = codec.decode(host.wait_for(NBIRTH, since=1)[0].payload)
    dbirth = codec.decode(host.wait_for(DBIRTH, since=1)[0].payload)
    assert again["seq"] == "0" and dbirth["seq"] == "1"
    # Same connection, same death certificate: the same bdSeq.
    assert metric_by_name(again, "bdSeq")["value"] == metric_by_name(first, "bdSeq")["value"]
    assert len(dbirth["metrics"]) == 17  # 9, then 5 of the alarm, 3 of the phase
    # A storm of rebirth requests costs one birth per second, not one each.
    for _ in range(10):
        host.publish(
            NCMD, codec.encode({"timestamp": time.time_ns() // 1_000_000, "metrics": [rebirth]})
        )
    host.wait_for(NBIRTH, since=2)
    time.sleep(2.0)
    assert len(host.on(NBIRTH)) == 3
