"""Test-bench speed (issue 4): simulated seconds per wall second, and a 14-day batch projected."""

from __future__ import annotations

from typing import Any

from runtime.bench import Scenario, run_scenario
from runtime.blocks import IMPLEMENTATION as BLOCKS
from sim_hardware._accel import fallback_reason, implementation
from tests.bench._util import BIOREACTOR, app_variant

DAY_S = 86400.0
BATCH_DAYS = 14
GOAL_WALL_S = 60.0  # issue 4: a 14-day batch at a 1 s control cycle in under a minute


def normal_batch() -> dict[str, Any]:
    result = run_scenario(BIOREACTOR / "scenarios" / "normal_batch.yaml")
    return {
        "scenario": "normal_batch",
        "passed": result.passed,
        "simulated_s": result.sim_s,
        "wall_s": round(result.wall_s, 2),
        "sim_s_per_wall_s": round(result.speed, 1),
    }


def _one_second(manifest: dict[str, Any]) -> None:
    for task in manifest["tasks"]:
        task["period_ms"] = 1000


def fourteen_day_projection(days: float = 1.0) -> dict[str, Any]:
    """Every task at 1 s for ``days`` of plant time, in GROW for the whole run."""
    app = app_variant(BIOREACTOR, _one_second)
    scenario = Scenario.model_validate(
        {
            "app": str(app),
            "duration": days * DAY_S,
            "parameters": {"heat_settle_s": 60, "grow_duration_h": BATCH_DAYS * 24},
            "assertions": [
                {"always": "abs(TT101 - temp_sp) < 1", "from": "2 h"},
                {"at_end": 'batch.step == "GROW"'},
            ],
        }
    )
    result = run_scenario(scenario)
    projected = BATCH_DAYS * DAY_S / result.speed
    return {
        "control_period_ms": 1000,
        "simulated_days": days,
        "wall_s": round(result.wall_s, 2),
        "sim_s_per_wall_s": round(result.speed, 1),
        "assertions_passed": result.passed,
        "failures": result.failures,
        "projected_14_day_batch_wall_s": round(projected, 1),
        "projected_14_day_batch_wall_min": round(projected / 60, 1),
        "goal_wall_s": GOAL_WALL_S,
        "goal_met": projected <= GOAL_WALL_S,
        "speed_needed_for_goal": round(BATCH_DAYS * DAY_S / GOAL_WALL_S, 1),
        "blocks": BLOCKS,
        "simulator": implementation(),
        "simulator_fallback_reason": fallback_reason(),
    }


def run() -> dict[str, Any]:
    return {"normal_batch": normal_batch(), "batch_14_days_at_1s": fourteen_day_projection()}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
