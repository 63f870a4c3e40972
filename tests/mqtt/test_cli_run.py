"""`vplc run APP --mqtt CONFIG` as a user starts it: birth, telemetry, an audited command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from runtime.ops._audit import verify_audit_log
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import hmi_client, now_ts, write_run_config

APP = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))
PREFIX = "vplc/site9/node3/bioreactor"


def _config(tmp_path: Path, port: int) -> Path:
    return write_run_config(tmp_path, port, "site9", "node3", stats_s=0.5)


def test_run_with_mqtt_publishes_and_takes_commands(broker: Broker, tmp_path: Path) -> None:
    config = _config(tmp_path, broker.port)
    proc = subprocess.Popen(
        [VPLC, "run", str(APP), "--mqtt", str(config), "--no-view", "--duration", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(_as_hmi(broker.port))
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "state STOP" in out
    report = verify_audit_log(tmp_path / "audit.jsonl")
    assert report.ok and report.records >= 2


async def _as_hmi(port: int) -> None:
    async with hmi_client(port, topic=f"{PREFIX}/#") as hmi:
        birth = await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online", 20)
        assert {p["name"] for p in birth["points"]} >= {"TT101", "AT201", "AT301"}
        await hmi.wait_for(f"{PREFIX}/points/TT101", lambda b: b["q"] == "GOOD", 10)
        ok = await _command(
            hmi,
            {
                "id": "c1",
                "ts": now_ts(),
                "cmd": "set_parameter",
                "name": "temp_sp",
                "value": 36.5,
                "user": "olga",
                "token": "op-secret",
                "reason": "cell line spec",
            },
        )
        assert ok["status"] == "accepted" and ok["old"] == 37.0 and ok["new"] == 36.5
        bad = await _command(
            hmi,
            {
                "id": "c2",
                "ts": now_ts(),
                "cmd": "set_parameter",
                "name": "temp_sp",
                "value": 55,
                "user": "olga",
                "token": "op-secret",
            },
        )
        assert bad["status"] == "refused" and "above max" in bad["reason"]
        assert bad["code"] == "out_of_limits"  # through the scan process's pipe too


async def _command(hmi: Any, body: dict[str, Any]) -> Any:
    await hmi.client.publish(f"{PREFIX}/cmd", json.dumps(body).encode(), qos=1)
    return await hmi.wait_for(f"{PREFIX}/cmd/response", lambda r: r.get("id") == body["id"], 10)


def test_bad_mqtt_config_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "mqtt.yaml"
    path.write_text("host: 127.0.0.1\nprot: 1883\nsite: a\nnode: b\n")
    res = subprocess.run(
        [VPLC, "run", str(APP), "--mqtt", str(path)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2
    assert "mqtt.yaml" in res.stderr and "at prot: unknown key" in res.stderr
