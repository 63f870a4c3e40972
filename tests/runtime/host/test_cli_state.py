"""`vplc run` with retain (warm/cold start, bad files) and online change on SIGHUP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[3] / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))


def _run(state: Path, *extra: str, duration: str = "2.5") -> subprocess.CompletedProcess[str]:
    env = os.environ | {"VPLC_STATE_DIR": str(state)}
    return subprocess.run(
        [
            VPLC,
            "--log-format",
            "json",
            "run",
            str(APP),
            "--no-view",
            "--duration",
            duration,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _events(stderr: str, name: str) -> list[dict[str, object]]:
    rows = [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]
    return [r for r in rows if r.get("event") == name]


def test_warm_start_restores_what_the_last_run_retained(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "bioreactor.retain").exists()
    second = _run(tmp_path)
    assert second.returncode == 0, second.stderr
    loaded = _events(second.stderr, "retain_loaded")
    assert loaded and loaded[0]["started"] == "warm" and int(loaded[0]["restored"]) > 10  # type: ignore[call-overload]
    cold = _run(tmp_path, "--cold")
    assert _events(cold.stderr, "retain_loaded")[0]["started"] == "cold"


def test_corrupt_retain_file_refused_then_moved_aside_on_request(tmp_path: Path) -> None:
    (tmp_path / "bioreactor.retain").write_text('{"truncated": ')
    refused = _run(tmp_path)
    assert refused.returncode == 2
    assert "bioreactor.retain" in refused.stderr and "--on-bad-retain cold" in refused.stderr
    assert (tmp_path / "bioreactor.retain").read_text() == '{"truncated": '
    started = _run(tmp_path, "--on-bad-retain", "cold")
    assert started.returncode == 0, started.stderr
    assert list(tmp_path.glob("bioreactor.retain.bad-*"))


def test_sighup_applies_an_online_change(tmp_path: Path) -> None:
    app = tmp_path / "bioreactor"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "scenarios"))
    env = os.environ | {"VPLC_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [VPLC, "--log-format", "json", "run", str(app), "--no-view", "--duration", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(2.5)
    manifest = (app / "app.yaml").read_text().replace("version: 1.1.0", "version: 1.1.1")
    (app / "app.yaml").write_text(manifest)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    changes = _events(err, "online_change")
    assert changes, err[-2000:]
    assert changes[-1]["status"] == "committed"
    assert changes[-1]["new_version"] == "1.1.1"
