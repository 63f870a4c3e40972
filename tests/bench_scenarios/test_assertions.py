"""Every assertion kind, passing and failing, on the ramp app (Y = t * gain + X)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime.bench import Scenario, run_scenario
from tests.bench_scenarios.conftest import write_scenario


def _run(app: Path, assertions: list[dict[str, Any]], **extra: Any) -> Any:
    data = {"duration": 10, "assertions": assertions, **extra}
    return run_scenario(write_scenario(app, "s", data))


def test_every_kind_passes(ramp_app: Path) -> None:
    result = _run(
        ramp_app,
        [
            {"always": "Y >= 0 and abs(Y - t) < 1e-9", "to": 4.9},
            {"always": {"signal": "Y", "min": 0, "max": 20}},
            {"eventually": "Y > 5", "within": 6},
            {"never": "Y > 100 or not main.phase.STATE_NAME == 'RUNNING'", "from": 1},
            {"at": 3, "check": "Y == 3.0"},
            {"at": 6, "check": "Y == 12.0 and gain == 2"},
            {"at_end": "main.count == 100 and main.phase.REFUSED_COUNT == 0"},
            {"at_end": {"signal": "main.phase.STATE_NAME", "equals": "RUNNING"}},
        ],
        timeline=[
            {"at": 0, "phase": {"block": "main.phase", "command": "START"}},
            {"at": 5, "set": {"gain": 2.0}},
        ],
    )
    assert result.passed, result.failures
    assert [a.kind for a in result.assertions][:5] == [
        "always",
        "always",
        "eventually",
        "never",
        "at",
    ]
    eventually = result.assertions[2]
    assert eventually.t == pytest.approx(5.0)  # gain 2 from t=5: Y = 10


def test_always_failure_names_signal_time_value_and_bound(ramp_app: Path) -> None:
    result = _run(ramp_app, [{"name": "ramp below 5", "always": "Y < 5"}])
    assert not result.passed
    (msg,) = result.failures
    assert "ramp below 5" in msg
    assert "t=5.000 s" in msg
    assert "Y = 5" in msg
    assert "bound: Y < 5" in msg
    assert "50 of 100 samples failed" in msg


def test_bound_failure(ramp_app: Path) -> None:
    result = _run(ramp_app, [{"always": {"signal": "Y", "max": 2.5}, "from": 1}])
    (msg,) = result.failures
    assert "t=2.600 s" in msg and "Y = 2.6" in msg and "Y in [-inf, 2.5]" in msg


def test_never_failure(ramp_app: Path) -> None:
    result = _run(ramp_app, [{"never": "Y > 7"}])
    (msg,) = result.failures
    assert "t=7.100 s" in msg and "Y = 7.1" in msg and "never Y > 7" in msg


def test_eventually_failure_reports_window_and_last_value(ramp_app: Path) -> None:
    result = _run(ramp_app, [{"eventually": "Y > 50", "from": 2, "within": 3}])
    (msg,) = result.failures
    assert "not true at any time in t=[2, 5] s" in msg
    assert "Y = " in msg


def test_at_and_at_end_failures(ramp_app: Path) -> None:
    result = _run(ramp_app, [{"at": 4, "check": "Y == 3"}, {"at_end": "main.count < 10"}])
    assert len(result.failures) == 2
    assert "t=4.000 s: Y = 4" in result.failures[0]
    assert "main.count = 100" in result.failures[1]


def test_refused_phase_command_fails_the_run(ramp_app: Path) -> None:
    result = _run(
        ramp_app, [], timeline=[{"at": 1, "phase": {"block": "main.phase", "command": "RESTART"}}]
    )
    assert not result.passed
    # refused by the one command path (runtime.ops), with the phase's reason
    assert "'RESTART' not allowed in IDLE" in result.failures[0]
    assert result.events[0]["ok"] is False


def test_force_and_lifecycle_events(ramp_app: Path) -> None:
    result = _run(
        ramp_app,
        [{"at": 2.5, "check": "Y == 102.5 and X.forced"}, {"at": 4.5, "check": "Y == -1"}],
        timeline=[
            {"at": 2, "force": {"X": 100.0}},
            {"at": 3, "unforce": ["X"]},
            {"at": 4, "command": "stop"},
        ],
    )
    assert result.passed, result.failures


def test_python_scenario(ramp_app: Path) -> None:
    scenario = Scenario.model_validate(
        {"app": str(ramp_app), "duration": "2 s", "assertions": [{"at_end": "main.count == 20"}]}
    )
    result = run_scenario(scenario)
    assert result.passed and result.failures == []
    assert result.speed > 0
