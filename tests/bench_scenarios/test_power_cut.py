"""The power_cut event: warm restart from the retain file vs cold, on a plant that runs on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime.bench import Scenario, ScenarioError, run_scenario

BIOREACTOR = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
CUT, OFF = 1505.6, 30.0  # in GROW, 0.6 s after the retain checkpoint at 1505 s (interval 1 s)
CHECKPOINT = 1505.0
LOOPS = ["loops.tic101.I", "loops.tic102.I", "loops.aic201.I", "loops.aic301.I"]


def _scenario(cut: dict[str, Any], **extra: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "app": str(BIOREACTOR),
            "duration": CUT + OFF + 60,
            "parameters": {"heat_settle_s": 60},
            "timeline": [{"at": CUT, "power_cut": cut}],
            "assertions": [
                *({"always": f"{s} > -1e9"} for s in LOOPS),
                {"always": 'batch.step != "" and batch.phase.STATE_NAME != ""'},
                {"always": "batch.batches >= 0 and WT401 >= 0 and AV301A >= 0"},
            ],
            **extra,
        }
    )


def _at(result: Any, t: float) -> dict[str, Any]:
    i = min(range(len(result.times)), key=lambda k: abs(result.times[k] - t))
    assert abs(result.times[i] - t) < 1e-6, f"no sample at t={t}"
    return {n: s[i] for n, s in result.series.items()}


def test_warm_restart_resumes_from_the_last_checkpoint_on_the_same_plant() -> None:
    result = run_scenario(_scenario({"off_for": OFF}), record=True)
    assert result.passed, result.failures
    assert result.events[0]["ok"] and "warm start" in result.events[0]["result"]
    # No cycle while the PLC is dark; scenario time runs on across the restart.
    assert not [t for t in result.times if CUT < t < CUT + OFF - 1e-9]
    checkpoint, last, first = _at(result, 1505.0), _at(result, CUT - 0.2), _at(result, CUT + OFF)
    assert first["batch.step"] == "GROW" and first["batch.phase.STATE_NAME"] == "RUNNING"
    assert first["batch.batches"] == 0
    # The integrals are those of the last periodic checkpoint, not of the last cycle: the
    # cut took no final checkpoint.
    for name in LOOPS:
        assert first[name] == checkpoint[name], name
    assert any(first[n] != last[n] for n in LOOPS)
    # The plant was not reset (a fresh one starts at 60 L and 25 °C).
    assert abs(first["WT401"] - last["WT401"]) < 0.5 and first["WT401"] > 65
    # The outputs fell to safe values for 30 s: without air, DO dropped; the air valve opens
    # at once, from its learnt integral.
    assert first["AV301A"] > last["AV301A"] > 30


def test_cold_power_up_restarts_the_batch_from_fill_with_zero_integrals() -> None:
    result = run_scenario(_scenario({"off_for": OFF, "cold": True}), record=True)
    assert result.passed, result.failures
    assert "cold start" in result.events[0]["result"]
    last, first = _at(result, CUT - 0.2), _at(result, CUT + OFF)
    assert last["batch.step"] == "GROW"
    assert first["batch.step"] == "FILL" and first["batch.phase.STATE_NAME"] == "IDLE"
    assert all(first[n] == 0.0 for n in LOOPS)
    assert first["AV301A"] == 0.0  # the loops start over: no learnt air flow
    # The plant kept its liquid, so FILL is over at once and the batch heats again.
    assert _at(result, CUT + OFF + 1.0)["batch.step"] == "HEAT"
    assert first["WT401"] > 65


def test_power_cut_with_a_report_keeps_the_trace_in_scenario_time(tmp_path: Path) -> None:
    sc = _scenario({"off_for": OFF}, duration=CUT + OFF + 2)
    result = run_scenario(sc, out=tmp_path)
    assert result.passed, result.failures
    rows = (tmp_path / "trace.csv").read_text().splitlines()
    times = [float(r.split(",", 1)[0]) for r in rows[1:]]
    assert times == sorted(times) and CUT + OFF in times and max(times) < CUT + OFF + 2


@pytest.mark.parametrize(
    ("timeline", "where"),
    [
        ([{"at": 50, "power_cut": {"off_for": 60}}], "timeline.0.power_cut.off_for"),
        (
            [{"at": 10, "power_cut": {"off_for": 30}}, {"at": 20, "command": "stop"}],
            "timeline.1.at",
        ),
    ],
)
def test_power_cut_refused_before_the_run(
    ramp_app: Path, timeline: list[dict[str, Any]], where: str
) -> None:
    sc = Scenario.model_validate({"app": str(ramp_app), "duration": 100, "timeline": timeline})
    with pytest.raises(ScenarioError, match=rf"at {where}"):
        run_scenario(sc)


def test_power_cut_on_a_memory_driver_app_keeps_counting(ramp_app: Path) -> None:
    """Without retained variables a warm restart is a restart: ``main.count`` starts over."""
    sc = Scenario.model_validate(
        {
            "app": str(ramp_app),
            "duration": 10,
            "timeline": [{"at": 5, "power_cut": {"off_for": 2}}],
            "assertions": [{"at": 7, "check": "main.count == 1 and t == 7"}],
        }
    )
    result = run_scenario(sc)
    assert result.passed, result.failures


def test_phase_state_time_continues_across_a_cut_after_hold_and_restart() -> None:
    """STATE_TIME is retained as a duration: after HOLD, RESTART and a power cut the phase is
    as long in RUNNING as at the last checkpoint (it read -1521 s when the stamp was kept as an
    absolute app time of the runtime that died)."""
    sc = _scenario(
        {"off_for": OFF},
        timeline=[
            {"at": 1200, "phase": {"block": "batch.phase", "command": "HOLD"}},
            {"at": 1220, "phase": {"block": "batch.phase", "command": "RESTART"}},
            {"at": CUT, "power_cut": {"off_for": OFF}},
        ],
        assertions=[{"always": 'batch.phase.STATE_TIME >= 0 and batch.phase.STATE_NAME != ""'}],
    )
    result = run_scenario(sc, record=True)
    assert result.passed, result.failures
    checkpoint = _at(result, CHECKPOINT)["batch.phase.STATE_TIME"]
    assert 280 < checkpoint < 290  # in RUNNING since the RESTART at ~1221 s
    # After power-up the series repeats the one from the checkpoint on: the cut loses the
    # 0.6 s since the checkpoint and the time off, nothing else.
    for k in range(3):  # the samples between the checkpoint and the cut
        before, after = _at(result, CHECKPOINT + 0.2 * k), _at(result, CUT + OFF + 0.2 * k)
        assert after["batch.phase.STATE_TIME"] == before["batch.phase.STATE_TIME"], k
        assert after["batch.phase.STATE_NAME"] == "RUNNING"
