"""An online change after an operator's write: the write is kept, the conflict is audited."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.ops._audit import verify_audit_log
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import hmi_client, now_ts, write_run_config

APP = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))
PREFIX = "vplc/site5/node8/bioreactor"


def _config(tmp_path: Path, port: int) -> Path:
    return write_run_config(tmp_path, port, "site5", "node8")


def _new_version(app: Path) -> None:
    manifest = (app / "app.yaml").read_text().replace("version: 1.1.0", "version: 1.1.1")
    manifest = manifest.replace(
        "{name: temp_sp, type: REAL, default: 37.0,", "{name: temp_sp, type: REAL, default: 38.0,"
    )
    (app / "app.yaml").write_text(manifest)
    loops = (app / "loops.py").read_text()
    (app / "loops.py").write_text(loops.replace("KC=20.0, TI=3000.0", "KC=25.0, TI=3000.0"))


def _audit_records(path: Path, event: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["event"] == event]


def test_operator_value_survives_a_new_default_as_a_reported_conflict(
    broker: Broker, tmp_path: Path
) -> None:
    app = tmp_path / "bioreactor"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "scenarios"))
    config = _config(tmp_path, broker.port)
    proc = subprocess.Popen(
        [
            VPLC,
            "--log-format",
            "json",
            "run",
            str(app),
            "--mqtt",
            str(config),
            "--no-view",
            "--duration",
            "40",
            "--retain-file",
            str(tmp_path / "br.retain"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    audit = tmp_path / "audit.jsonl"
    try:
        after = asyncio.run(_operate(broker.port, proc, app, audit))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    # the running value after the change is the operator's, as the next write's "old" shows
    assert after["status"] == "accepted" and after["old"] == 39.0
    record = _audit_records(audit, "online_change")[0]
    assert (record["status"], record["old_version"], record["new_version"]) == (
        "committed",
        "1.1.0",
        "1.1.1",
    )
    changes = {c["path"]: c for c in record["plan"]["changes"]}
    temp = changes["parameter:temp_sp"]
    assert temp["outcome"] == "conflict" and temp["unresolved"]
    assert (temp["old_initial"], temp["running"], temp["new_initial"], temp["value"]) == (
        37.0,
        39.0,
        38.0,
        39.0,
    )
    assert changes["loops.tic101.KC"]["outcome"] == "new_value"
    # a second change with a lossy type change is refused, named, audited; 1.1.1 runs on
    refused = _audit_records(audit, "online_change")[-1]
    assert (refused["status"], refused["old_version"], refused["new_version"]) == (
        "refused",
        "1.1.1",
        "1.1.2",
    )
    assert "batch.step_time: type changed: float" in refused["reason"]
    assert verify_audit_log(audit).ok


async def _operate(port: int, proc: Any, app: Path, audit: Path) -> Any:
    async with hmi_client(port, topic=f"{PREFIX}/#") as hmi:
        await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online", 20)
        ok = await _command(hmi, "c1", 39.0)
        assert ok["status"] == "accepted" and ok["old"] == 37.0
        _new_version(app)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while not _audit_records(audit, "online_change") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert _audit_records(audit, "online_change"), "no online change in the audit trail"
        after = await _command(hmi, "c2", 39.5)
        batch = (app / "batch.py").read_text().replace('"step_time": 0.0', '"step_time": ""')
        (app / "batch.py").write_text(batch)
        manifest = (app / "app.yaml").read_text().replace("version: 1.1.1", "version: 1.1.2")
        (app / "app.yaml").write_text(manifest)
        proc.send_signal(signal.SIGHUP)
        while len(_audit_records(audit, "online_change")) < 2 and time.monotonic() < deadline + 30:
            await asyncio.sleep(0.2)
        return after


async def _command(hmi: Any, cid: str, value: float) -> Any:
    body = {
        "id": cid,
        "ts": now_ts(),
        "cmd": "set_parameter",
        "name": "temp_sp",
        "value": value,
        "user": "olga",
        "token": "op-secret",
        "reason": "cell line spec",
    }
    await hmi.client.publish(f"{PREFIX}/cmd", json.dumps(body).encode(), qos=1)
    return await hmi.wait_for(f"{PREFIX}/cmd/response", lambda r: r.get("id") == cid, 10)


def test_a_warm_start_is_audited_with_its_plan(broker: Broker, tmp_path: Path) -> None:
    config = _config(tmp_path, broker.port)
    cmd = [
        VPLC,
        "run",
        str(APP),
        "--mqtt",
        str(config),
        "--no-view",
        "--duration",
        "1.5",
        "--retain-file",
        str(tmp_path / "br.retain"),
    ]
    for _ in range(2):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr[-2000:]
    audit = tmp_path / "audit.jsonl"
    warm = _audit_records(audit, "warm_start")
    assert len(warm) == 1 and warm[0]["saved_version"] == warm[0]["version"] == "1.1.0"
    assert warm[0]["plan"]["counts"]["kept"] > 100 and warm[0]["retain_seq"] >= 1
    assert verify_audit_log(audit).ok


def test_state_time_after_hold_continues_across_a_warm_restart(
    broker: Broker, tmp_path: Path
) -> None:
    """HOLD over MQTT, stop, warm start: the phase's time in HELD goes on (ages, not stamps)."""
    config = _config(tmp_path, broker.port)
    retain = tmp_path / "br.retain"

    def run(seconds: str) -> Any:
        return subprocess.Popen(
            [
                VPLC,
                "run",
                str(APP),
                "--mqtt",
                str(config),
                "--no-view",
                "--duration",
                seconds,
                "--retain-file",
                str(retain),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # Stopped a while after the HOLD was accepted, not at a fixed time from the start: on
    # a loaded machine the bridge may connect seconds after the scan started.
    first = run("60")
    try:
        asyncio.run(_hold(broker.port))
        time.sleep(4.0)  # HOLDING at the next 1 s sequence cycle, HELD at the one after
    finally:
        first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-2000:]
    held, age = _phase(retain), _phase_age_s(retain)
    assert held["STATE_NAME"] == "HELD" and held["STATE_TIME"] >= 1.0
    # STATE_TIME is what the sequence task computed last; the age of the state's stamp was
    # taken by the final checkpoint, after the last 200 ms control cycle (up to 0.8 s later):
    # the time in HELD up to the stop, which the next run goes on from.
    assert held["STATE_TIME"] <= age < held["STATE_TIME"] + 1.0
    second = run("4")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err[-2000:]
    after = _phase(retain)
    assert after["STATE_NAME"] == "HELD"
    # Its last sequence cycle is at app time 3 s (a run of 4 s never runs the cycle released
    # at 4 s): the age plus 3 s, never a restart of the clock, never negative (as with a
    # stamp of the previous runtime's app time), and not the time between the runs.
    assert after["STATE_TIME"] == pytest.approx(age + 3.0, abs=1e-6)


def _phase(retain: Path) -> dict[str, Any]:
    from runtime.state import _file

    variables = _file.decode(retain.read_bytes())["data"]["variables"]
    prefix = "batch.phase."
    return {k[len(prefix) :]: v for k, v in variables.items() if k.startswith(prefix)}


def _phase_age_s(retain: Path) -> float:
    """How long the phase had been in its state when the file was written (its stamp's age)."""
    from runtime.state import _file

    ages = _file.decode(retain.read_bytes())["data"]["clock"]["ages"]
    return float(ages["batch.phase.SINCE_NS"]) / 1e9


async def _hold(port: int) -> None:
    async with hmi_client(port, topic=f"{PREFIX}/#") as hmi:
        await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online", 20)
        await asyncio.sleep(1.0)
        body = {
            "id": "h1",
            "ts": now_ts(),
            "cmd": "phase",
            "block": "batch.phase",
            "command": "HOLD",
            "user": "olga",
            "token": "op-secret",
            "reason": "sampling",
        }
        await hmi.client.publish(f"{PREFIX}/cmd", json.dumps(body).encode(), qos=1)
        answer = await hmi.wait_for(f"{PREFIX}/cmd/response", lambda r: r.get("id") == "h1", 10)
        assert answer["status"] == "accepted", answer
