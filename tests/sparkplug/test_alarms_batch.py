"""Alarms/* and Batch/* metrics: births, DDATA by exception, Acknowledge and Command by DCMD."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import ScanEngine
from runtime.sparkplug import SparkplugNode
from tests.conftest import MakeApp
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import APP_LOGIC, app_manifest, scanning
from tests.sparkplug.conftest import (
    DBIRTH,
    DCMD,
    DDATA,
    Codec,
    Host,
    NodeFactory,
    audited,
    metric_by_name,
    node_config,
    poll,
    props,
)

ALARM, PHASE = "main.high", "main.phase"
ALARM_METRICS = [f"Alarms/{ALARM}/{p}" for p in ("Active", "Acked", "Severity", "Text")]
ALARM_METRICS.append(f"Alarms/{ALARM}/Acknowledge")
BATCH_METRICS = [f"Batch/{PHASE}/{p}" for p in ("State", "Step", "Command")]


def _dcmd(codec: Codec, name: str, type_: str, value: Any) -> bytes:
    metric = {"name": name, "type": type_, "value": value}
    return codec.encode({"timestamp": time.time_ns() // 1_000_000, "metrics": [metric]})


def _aliases(codec: Codec, host: Host) -> dict[str, int]:
    dbirth = codec.decode(host.wait_for(DBIRTH)[0].payload)
    return {m["name"]: int(m["alias"]) for m in dbirth["metrics"]}


def _ddata_values(codec: Codec, host: Host, alias: int) -> list[Any]:
    """Every value DDATA has carried for ``alias``, in order."""
    return [
        m["value"]
        for msg in host.on(DDATA)
        for m in codec.decode(msg.payload)["metrics"]
        if int(m["alias"]) == alias
    ]


def _set_x(engine: ScanEngine, value: float) -> None:
    engine.app.drivers["mem"].values["x"] = value  # type: ignore[attr-defined]


def test_births_carry_alarm_and_batch_metrics_after_the_others(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine
) -> None:
    make_node()
    dbirth = codec.decode(host.wait_for(DBIRTH)[0].payload)
    names = [m["name"] for m in dbirth["metrics"]]
    # The existing metrics keep aliases 1..9 (State, 4 points, gain, 3 controls); the new
    # ones follow in a fixed order.
    first = ["State", "Points/X", "Points/Y", "Points/RUNNING", "Points/N", "Parameters/gain"]
    first += ["Device Control/Start", "Device Control/Stop", "Device Control/Reset"]
    assert names[:9] == first
    assert names[9:] == ALARM_METRICS + BATCH_METRICS
    assert [int(m["alias"]) for m in dbirth["metrics"]] == list(range(1, len(names) + 1))
    types = {m["name"]: m["type"] for m in dbirth["metrics"]}
    alarm_types = ["Boolean", "Boolean", "Int32", "String", "Boolean"]
    assert [types[n] for n in ALARM_METRICS] == alarm_types
    assert [types[n] for n in BATCH_METRICS] == ["String", "String", "String"]
    read_only = {m["name"]: props(m)["readOnly"] for m in dbirth["metrics"]}
    assert [read_only[n] for n in ALARM_METRICS] == [True, True, True, True, False]
    assert [read_only[n] for n in BATCH_METRICS] == [True, True, False]
    values = {m["name"]: m.get("value") for m in dbirth["metrics"]}
    assert values[f"Alarms/{ALARM}/Active"] is False
    assert values[f"Alarms/{ALARM}/Acked"] is True
    assert values[f"Alarms/{ALARM}/Severity"] == 0
    assert values[f"Alarms/{ALARM}/Acknowledge"] is False
    assert values[f"Batch/{PHASE}/State"] == "IDLE"
    assert values[f"Batch/{PHASE}/Step"] == ""  # the test program has no step variable
    assert values[f"Batch/{PHASE}/Command"] == ""
    doc = props(metric_by_name(dbirth, f"Batch/{PHASE}/Command"))["Documentation"]
    assert "HOLD" in doc and "ABORT" in doc
    # The alarm's text comes by pipe: in the birth or in a DDATA soon after.
    text_alias = names.index(f"Alarms/{ALARM}/Text") + 1
    poll(
        lambda: (
            values[f"Alarms/{ALARM}/Text"] == "X high"
            or "X high" in _ddata_values(codec, host, text_alias)
        )
    )


def test_alarm_goes_active_in_ddata_and_a_dcmd_acknowledges_it_with_audit(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    make_node(command_user="olga")
    alias = _aliases(codec, host)
    block = engine.app.tree.find(ALARM)
    _set_x(engine, 80.0)  # above H = 50
    poll(lambda: True in _ddata_values(codec, host, alias[f"Alarms/{ALARM}/Active"]))
    poll(lambda: False in _ddata_values(codec, host, alias[f"Alarms/{ALARM}/Acked"]))
    poll(lambda: 1 in _ddata_values(codec, host, alias[f"Alarms/{ALARM}/Severity"]))
    assert block.UNACKED
    host.publish(DCMD, _dcmd(codec, f"Alarms/{ALARM}/Acknowledge", "Boolean", True))
    poll(lambda: not block.UNACKED)
    acked = _ddata_values(codec, host, alias[f"Alarms/{ALARM}/Acked"])
    poll(lambda: _ddata_values(codec, host, alias[f"Alarms/{ALARM}/Acked"])[-1] is True)
    assert acked[0] is False
    assert block.ACTIVE  # acknowledging does not clear an active alarm
    record = poll(lambda: audited(tmp_path))[0]
    assert record["cmd"] == "ack_alarm" and record["status"] == "accepted"
    assert record["user"] == "olga" and record["role"] == "operator"
    assert record["target"] == ALARM and record["source"] == DCMD
    assert record["old"] == {"unacked": True} and record["new"] == {"unacked": False}
    assert f"Alarms/{ALARM}/Acknowledge" in record["why"]
    # false is the metric's resting value: no command.
    host.publish(DCMD, _dcmd(codec, f"Alarms/{ALARM}/Acknowledge", "Boolean", False))
    time.sleep(0.5)
    assert len(audited(tmp_path)) == 1


def test_batch_command_hold_holds_the_phase_and_state_follows(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    make_node(command_user="olga")
    alias = _aliases(codec, host)
    block = engine.app.tree.find(PHASE)
    state_alias = alias[f"Batch/{PHASE}/State"]
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "START"))
    poll(lambda: "RUNNING" in _ddata_values(codec, host, state_alias))
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "hold"))
    poll(lambda: block.STATE_NAME == "HELD")
    poll(lambda: _ddata_values(codec, host, state_alias)[-1] == "HELD")
    records = poll(lambda: len(audited(tmp_path)) >= 2 and audited(tmp_path))
    assert [(r["cmd"], r["status"], r["target"]) for r in records] == [
        ("phase", "accepted", f"{PHASE}:START"),
        ("phase", "accepted", f"{PHASE}:HOLD"),
    ]
    assert records[1]["old"] == "RUNNING" and records[1]["new"] == "HOLDING"
    assert all(r["user"] == "olga" and r["source"] == DCMD for r in records)


def test_wrong_phase_commands_are_refused_through_the_command_path_and_audited(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    make_node(command_user="olga")
    _aliases(codec, host)
    block = engine.app.tree.find(PHASE)
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "JUMP"))
    rec = poll(lambda: audited(tmp_path))[0]
    assert rec["cmd"] == "phase" and rec["status"] == "refused"
    assert "unknown phase command 'JUMP'" in rec["reason"] and "HOLD" in rec["reason"]
    assert rec["user"] == "olga" and rec["source"] == DCMD
    # A known command the phase does not take in its state (HOLD while IDLE).
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "HOLD"))
    rec = poll(lambda: len(audited(tmp_path)) >= 2 and audited(tmp_path))[1]
    assert rec["status"] == "refused" and "not allowed in IDLE" in rec["reason"]
    # Text far longer than any command is refused the same way (not a crash of the node).
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "X" * 500))
    rec = poll(lambda: len(audited(tmp_path)) >= 3 and audited(tmp_path))[2]
    assert rec["status"] == "refused" and "unknown phase command" in rec["reason"]
    # The wrong datatype is refused before any command (the whole message).
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "Boolean", True))
    time.sleep(0.5)
    assert len(audited(tmp_path)) == 3
    assert block.STATE_NAME == "IDLE"


def test_a_viewer_may_neither_acknowledge_nor_command_a_phase(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine, tmp_path: Path
) -> None:
    make_node(command_user="vera")
    _aliases(codec, host)
    alarm, phase = engine.app.tree.find(ALARM), engine.app.tree.find(PHASE)
    _set_x(engine, 80.0)
    poll(lambda: alarm.UNACKED)
    host.publish(DCMD, _dcmd(codec, f"Alarms/{ALARM}/Acknowledge", "Boolean", True))
    host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "START"))
    records = poll(lambda: len(audited(tmp_path)) >= 2 and audited(tmp_path))
    assert [(r["cmd"], r["status"]) for r in records] == [
        ("ack_alarm", "refused"),
        ("phase", "refused"),
    ]
    assert all("operator" in r["reason"] and r["user"] == "vera" for r in records), records
    assert alarm.UNACKED and phase.STATE_NAME == "IDLE"


# ---------------------------------------------------------------------------- gmp.critical
STEP_LOGIC = APP_LOGIC.replace('VARS = {"count": 0}', 'VARS = {"count": 0, "step": "FILL"}')


@pytest.fixture
def gmp_engine(make_app: MakeApp) -> Iterator[ScanEngine]:
    """The test app with a program ``step`` and ABORT of its phase a critical action."""
    critical = [{"cmd": "phase", "targets": [PHASE], "commands": ["ABORT"]}]
    manifest = app_manifest() | {"gmp": {"critical": critical}}
    with scanning(make_app(manifest, STEP_LOGIC)) as eng:
        yield eng


def test_a_command_that_needs_e_signatures_is_refused_saying_sparkplug_cannot_sign(
    gmp_engine: ScanEngine, broker: Broker, host: Host, codec: Codec, tmp_path: Path
) -> None:
    node = SparkplugNode(gmp_engine, node_config(broker.port, tmp_path, command_user="olga"))
    node.start()
    try:
        dbirth = codec.decode(host.wait_for(DBIRTH)[0].payload)
        assert metric_by_name(dbirth, f"Batch/{PHASE}/Step")["value"] == "FILL"
        block = gmp_engine.app.tree.find(PHASE)
        host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "START"))
        poll(lambda: block.STATE_NAME == "RUNNING")
        host.publish(DCMD, _dcmd(codec, f"Batch/{PHASE}/Command", "String", "ABORT"))
        records = poll(lambda: len(audited(tmp_path)) >= 2 and audited(tmp_path))
        rec = records[1]
        assert rec["cmd"] == "phase" and rec["status"] == "refused"
        assert rec["target"] == f"{PHASE}:ABORT" and rec["user"] == "olga"
        assert "electronic signature" in rec["reason"]
        assert "Sparkplug B DCMD cannot carry electronic signatures" in rec["reason"]
        assert "preview" not in rec["reason"]  # no advice a DCMD cannot follow
        time.sleep(0.2)
        assert block.STATE_NAME == "RUNNING"
    finally:
        node.stop()
