"""Report folder (JSON, JUnit XML, CSV trace, PNG plots), divergence and FAULT handling."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hal import MemoryDriver, register_driver
from runtime.bench import Scenario, run_scenario
from tests.bench_scenarios.conftest import RAMP_LOGIC, write_scenario
from tests.conftest import memory_manifest, write_app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_folder(ramp_app: Path, tmp_path: Path) -> None:
    path = write_scenario(
        ramp_app,
        "report",
        {
            "duration": 5,
            "timeline": [{"at": 1, "set": {"gain": 2}, "note": "double the gain"}],
            "assertions": [
                {"name": "ramp", "always": "Y <= 2 * t + 1e-9"},
                {"always": "Y < 3", "from": 1},
                {"at_end": {"signal": "main.phase.STATE_NAME", "equals": "IDLE"}},
            ],
        },
    )
    out = tmp_path / "report"
    result = run_scenario(path, out=out)
    assert not result.passed
    data = json.loads((out / "results.json").read_text())
    assert data["passed"] is False and data["scenario"] == "report"
    assert [a["passed"] for a in data["assertions"]] == [True, False, True]
    assert data["assertions"][1]["t"] == 1.5 and data["assertions"][1]["values"] == {"Y": 3.0}
    assert data["events"][0]["result"] == "gain: 1.0 → 2.0"
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "4" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == 1 and "Y = 3" in (failed[0].find("failure").get("message") or "")  # type: ignore[union-attr]
    header = (out / "trace.csv").read_text().splitlines()[0]
    assert header == "t,X,Y,inputs.quality,parameters.changed"
    pngs = sorted((out / "plots").glob("*.png"))
    assert len(pngs) == 3
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)


class _Exploding(MemoryDriver):
    """A plant model that diverges: its input grows tenfold per cycle until it is inf."""

    def __init__(self, *, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name=name, options=options)
        self.values["x"] = 1.0

    def read_inputs(self, now_ns: int) -> None:
        self.values["x"] *= 1e10
        super().read_inputs(now_ns)


def test_diverging_plant_fails_with_a_clear_message(tmp_path: Path) -> None:
    register_driver("exploding", _Exploding)
    manifest = memory_manifest()
    manifest["drivers"]["mem"]["type"] = "exploding"
    app = write_app(tmp_path / "boom", manifest, RAMP_LOGIC)
    path = write_scenario_at(app, {"duration": 3600, "assertions": [{"always": "Y == Y"}]})
    result = run_scenario(path)
    assert not result.passed
    assert "input X is inf" in result.failures[0] and "diverged" in result.failures[0]
    assert result.sim_s < 10  # stopped at once, not after an hour of garbage


def write_scenario_at(app: Path, data: dict[str, Any]) -> Path:
    (app / "scenarios").mkdir(exist_ok=True)
    return write_scenario(app, "s", data)


def test_runtime_fault_fails_the_run(tmp_path: Path) -> None:
    logic = """
from runtime import Program

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.gain = app.param("gain")

    def execute(self, ctx):
        if self.gain.value > 5:
            raise RuntimeError("gain too high")
"""
    app = write_app(tmp_path / "faulty", memory_manifest(), logic)
    path = write_scenario_at(app, {"duration": 2, "timeline": [{"at": 1, "set": {"gain": 6}}]})
    result = run_scenario(path)
    assert not result.passed
    assert (
        "entered FAULT at t=1.000 s" in result.failures[0] and "gain too high" in result.failures[0]
    )


def test_a_diverging_simulated_plant_fails_the_run_with_a_clear_message() -> None:
    bioreactor = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
    scenario = Scenario.model_validate(
        {
            "app": str(bioreactor),
            "duration": 1800,
            "drivers": {"sim": {"params": {"jacket_volume_l": 1e-4}}},
            "assertions": [{"always": "TT101 < 150"}],
        }
    )
    result = run_scenario(scenario)
    assert not result.passed
    assert "entered FAULT" in result.failures[0] and "model diverged" in result.failures[0]
