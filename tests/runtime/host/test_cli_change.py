"""Version changes from the command line: SIGHUP, warm start on a newer version, `change plan`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runtime import load_manifest
from runtime.state import _file

APP = Path(__file__).resolve().parents[3] / "plc_apps" / "bioreactor"
BASE = load_manifest(APP).version  # the copies below are made newer versions of it
VPLC = str(Path(sys.executable).with_name("vplc"))
ADDED = "  - {name: spare_gain, type: REAL, default: 1.5, min: 0.0, max: 10.0, retain: true}\n"


def _copy(tmp_path: Path) -> Path:
    app = tmp_path / "bioreactor"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "scenarios"))
    return app


def _edit(
    app: Path,
    version: str,
    *,
    kc: float | None = None,
    added: bool = False,
    batch: tuple[str, str] | None = None,
) -> None:
    """Make the copy a new version: a new TIC101 gain, an added parameter, a changed VAR."""
    manifest = (app / "app.yaml").read_text()
    manifest, found = re.subn(r"(?m)^version: .*$", f"version: {version}", manifest)
    assert found == 1
    if added:
        last = next(ln for ln in manifest.splitlines(True) if "{name: auto_start," in ln)
        manifest = manifest.replace(last, last + ADDED)  # the last of the parameters
    (app / "app.yaml").write_text(manifest)
    if kc is not None:
        loops = (app / "loops.py").read_text()
        (app / "loops.py").write_text(loops.replace("KC=20.0, TI=3000.0", f"KC={kc}, TI=3000.0"))
    if batch is not None:
        text = (app / "batch.py").read_text()
        assert batch[0] in text
        (app / "batch.py").write_text(text.replace(*batch))


def _env(tmp_path: Path) -> dict[str, str]:
    return os.environ | {"VPLC_STATE_DIR": str(tmp_path / "state")}


def _run(app: Path, tmp_path: Path, *extra: str, duration: str = "2.5") -> Any:
    return subprocess.run(
        [
            VPLC,
            "--log-format",
            "json",
            "run",
            str(app),
            "--no-view",
            "--duration",
            duration,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=90,
    )


def _events(stderr: str, name: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]
    return [r for r in rows if r.get("event") == name]


def _change(plan: dict[str, Any], path: str) -> dict[str, Any]:
    found = [c for c in plan["changes"] if c["path"] == path]
    assert found, f"{path} not in the plan: {plan}"
    return found[0]


def _retained(tmp_path: Path) -> dict[str, Any]:
    return _file.decode((tmp_path / "state" / "bioreactor.retain").read_bytes())["data"]


def test_sighup_takes_a_changed_gain_and_an_added_parameter(tmp_path: Path) -> None:
    app = _copy(tmp_path)
    proc = subprocess.Popen(
        [VPLC, "--log-format", "json", "run", str(app), "--no-view", "--duration", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    time.sleep(2.5)
    _edit(app, "1.1.1", kc=25.0, added=True)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    changes = _events(err, "online_change")
    assert changes and changes[-1]["status"] == "committed", err[-3000:]
    plan = changes[-1]["plan"]
    kc = _change(plan, "loops.tic101.KC")
    assert (kc["outcome"], kc["old_initial"], kc["running"], kc["value"]) == (
        "new_value",
        20.0,
        20.0,
        25.0,
    )
    assert _change(plan, "parameter:spare_gain") == {
        "path": "parameter:spare_gain",
        "outcome": "added",
        "new_initial": 1.5,
        "value": 1.5,
    }
    assert plan["counts"]["refused"] == 0 and plan["counts"]["kept"] > 300
    # the final checkpoint is taken from the running instances: the new gain runs
    data = _retained(tmp_path)
    assert data["variables"]["loops.tic101.KC"] == 25.0
    assert data["parameters"]["spare_gain"] == 1.5
    assert data["initials"]["variables"]["loops.tic101.KC"] == 25.0


def test_warm_start_on_a_newer_version_merges_the_retain_file(tmp_path: Path) -> None:
    app = _copy(tmp_path)
    first = _run(app, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = _retained(tmp_path)
    assert before["variables"]["loops.tic101.KC"] == 20.0
    _edit(app, "1.2.0", kc=25.0, added=True)
    second = _run(app, tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    loaded = _events(second.stderr, "retain_loaded")[0]
    assert loaded["started"] == "warm" and loaded["saved_version"] == BASE
    assert _change(loaded["plan"], "loops.tic101.KC")["outcome"] == "new_value"
    assert _change(loaded["plan"], "parameter:spare_gain")["outcome"] == "added"
    after = _retained(tmp_path)
    assert after["variables"]["loops.tic101.KC"] == 25.0
    assert after["variables"]["batch.batches"] == before["variables"]["batch.batches"]


def test_change_plan_against_the_retain_file(tmp_path: Path) -> None:
    app = _copy(tmp_path)
    assert _run(app, tmp_path).returncode == 0
    retain = tmp_path / "state" / "bioreactor.retain"
    saved = retain.read_bytes()

    def plan(*args: str) -> Any:
        return subprocess.run(
            [VPLC, "change", "plan", str(app), *args],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=60,
        )

    same = plan()  # against $VPLC_STATE_DIR/bioreactor.retain
    assert same.returncode == 0, same.stderr
    assert f"plan: bioreactor {BASE} (retain file" in same.stdout
    assert "kept" in same.stdout and "new value" not in same.stdout
    _edit(app, "1.1.1", kc=25.0, batch=('"step_time": 0.0', '"step_time": 5.0'))
    changed = plan("--changes-only")
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    assert any(
        line.split()[:4] == ["new", "value", "loops.tic101.KC", "="]
        and "(initial 20.0 → 25.0, running 20.0)" in line
        for line in lines
    ), changed.stdout
    conflict = [line for line in lines if "batch.step_time" in line]
    assert conflict and conflict[0].lstrip().startswith("conflict (unresolved)")
    assert "kept " not in changed.stdout  # --changes-only
    strict = plan("--strict")
    assert strict.returncode == 2
    assert "batch.step_time: unresolved conflict" in strict.stderr
    resolved = plan("--strict", "--prefer", "new", "--json")
    assert resolved.returncode == 0, resolved.stderr
    doc = json.loads(resolved.stdout)
    step_time = next(d for d in doc["decisions"] if d["path"] == "batch.step_time")
    assert step_time["outcome"] == "conflict" and step_time["value"] == 5.0 and doc["ok"]
    assert retain.read_bytes() == saved  # a plan only reads
    _edit(app, "2.0.0", batch=('"step_time": 5.0', '"step_time": ""'))
    lossy = plan()
    assert lossy.returncode == 2
    assert "batch.step_time: type changed: float" in lossy.stderr and "cannot become str" in (
        lossy.stderr
    )
    missing = plan("--against", str(tmp_path / "nope.retain"))
    assert missing.returncode == 2 and "nope.retain: no retain file" in missing.stderr


def test_strict_change_refuses_a_warm_start_with_a_conflict(tmp_path: Path) -> None:
    app = _copy(tmp_path)
    assert _run(app, tmp_path).returncode == 0
    retain = tmp_path / "state" / "bioreactor.retain"
    saved = retain.read_bytes()
    _edit(app, "1.1.1", batch=('"step_time": 0.0', '"step_time": 5.0'))
    refused = _run(app, tmp_path, "--strict-change")
    assert refused.returncode == 2
    assert "batch.step_time: unresolved conflict" in refused.stderr
    assert retain.read_bytes() == saved  # untouched, nothing started
    preferred = _run(app, tmp_path, "--strict-change", "--prefer", "running")
    assert preferred.returncode == 0, preferred.stderr[-2000:]


def test_change_plan_against_a_snapshot(tmp_path: Path) -> None:
    from runtime import ScanEngine, VirtualClock, load_app
    from runtime.state import take_snapshot

    old = load_app(APP)
    engine = ScanEngine(old, clock=VirtualClock())
    engine.start()
    engine.run_until(5_000_000_000)
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps({"snapshot": take_snapshot(engine)}))  # as a release answer
    app = _copy(tmp_path)
    _edit(app, "1.2.0", kc=25.0)
    res = subprocess.run(
        [VPLC, "change", "plan", str(app), "--against-snapshot", str(snap), "--changes-only"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert f"plan: bioreactor {BASE} (snapshot" in res.stdout
    assert "new value              loops.tic101.KC = 25.0" in res.stdout
