"""The heartbeat file of `vplc run --heartbeat` and the container health check that reads it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from containers.health import check, main

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()


def beat(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "host": HOST,
        "written_at": 1000.0,
        "stopped": False,
        "state": "RUN",
        "cycles": {"control": 10},
    }
    return base | over


def test_healthy_only_for_a_fresh_running_scan_of_this_host() -> None:
    assert check(beat(), max_age_s=5, now=1002.0, host=HOST) is None
    assert "old" in str(check(beat(), max_age_s=5, now=1010.0, host=HOST))
    assert "not this container" in str(check(beat(host="other"), max_age_s=5, now=1000, host=HOST))
    assert "stopped" in str(check(beat(stopped=True), max_age_s=5, now=1000.0, host=HOST))
    fault = check(beat(state="FAULT", fault_reason="boom"), max_age_s=5, now=1000.0, host=HOST)
    assert fault == "engine state FAULT: boom"
    assert "no cycle" in str(check(beat(cycles={"control": 0}), max_age_s=5, now=1000, host=HOST))


def test_main_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    assert main([str(path)]) == 1  # missing file
    path.write_text(json.dumps(beat(written_at=time.time(), app_time_s=1.0)))
    assert main([str(path)]) == 0


def test_vplc_run_writes_the_heartbeat(tmp_path: Path) -> None:
    hb = tmp_path / "hb.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.host.cli",
            "run",
            str(ROOT / "plc_apps" / "bioreactor"),
            "--no-view",
            "--duration",
            "2.5",
            "--heartbeat",
            str(hb),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    final = json.loads(hb.read_text())
    assert final["stopped"] is True
    assert final["host"] == HOST
    assert final["fastest_period_ms"] == 200.0
    assert final["cycles"]["control"] >= 10
    assert final["first_cycle_at"] < final["last_cycle_at"] <= final["written_at"]
