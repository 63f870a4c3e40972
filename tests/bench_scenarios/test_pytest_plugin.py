"""The pytest plugin: scenario files next to an app are collected and run as test items."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.bench_scenarios.conftest import write_scenario

ROOT = Path(__file__).resolve().parents[2]


def _pytest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_bioreactor_scenarios_are_collected_and_pass() -> None:
    scenarios = sorted(p.stem for p in (ROOT / "plc_apps/bioreactor/scenarios").glob("*.yaml"))
    assert len(scenarios) >= 6
    res = _pytest(str(ROOT / "plc_apps" / "bioreactor"), "-v")
    assert res.returncode == 0, res.stdout[-3000:]
    for name in scenarios:
        assert f"{name}.yaml::{name} PASSED" in res.stdout, res.stdout[-3000:]
    assert f"{len(scenarios)} passed" in res.stdout


def test_failing_and_invalid_scenarios_are_reported(ramp_app: Path) -> None:
    write_scenario(ramp_app, "fails", {"duration": 2, "assertions": [{"always": "Y < 1"}]})
    write_scenario(ramp_app, "invalid", {"duration": 2, "assertions": [{"always": "Q > 1"}]})
    write_scenario(ramp_app, "passes", {"duration": 2, "assertions": [{"always": "Y < 2"}]})
    res = _pytest(str(ramp_app), "-q")
    assert res.returncode == 1
    assert "2 failed, 1 passed" in res.stdout, res.stdout
    assert "failed at t=1.000 s: Y = 1" in res.stdout
    assert "at assertions.0.always: unknown signal 'Q'" in res.stdout
