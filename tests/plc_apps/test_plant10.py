"""plant10: ten bioreactor skids generated from the single-reactor app, in closed loop."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hal import Direction, IecType
from plc_apps.plant10 import generate
from runtime import RuntimeState, ScanEngine, VirtualClock, load_app
from runtime.blocks import ALARM

APP = Path(__file__).resolve().parents[2] / "plc_apps" / "plant10"
VPLC = str(Path(sys.executable).with_name("vplc"))
UNITS = [f"R{i}" for i in range(1, 11)]
NEAR_SP = {"volume": 70.0, "temperature": 37.0, "jacket_temperature": 37.0, "ph": 7.0, "do": 40.0}


def test_committed_manifest_is_the_generators_output() -> None:
    assert (APP / "app.yaml").read_text(encoding="utf-8") == generate.render(), (
        "plc_apps/plant10/app.yaml is stale: run `python -m plc_apps.plant10.generate`"
    )


def test_validate_passes_and_counts_the_plant() -> None:
    res = subprocess.run([VPLC, "validate", str(APP)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "2610 point(s)" in res.stdout


@pytest.fixture(scope="module")
def near_setpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ten reactors started near their setpoints, heat-settling shortened: 240 s of app time."""
    dst = tmp_path_factory.mktemp("plant10") / "plant10"
    shutil.copytree(APP, dst, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = yaml.safe_load((dst / "app.yaml").read_text())
    for cfg in manifest["drivers"].values():
        cfg["options"]["initial"] = dict(NEAR_SP)
    (dst / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    app = load_app(dst)
    for unit in UNITS:
        app.parameters[f"{unit}_heat_settle_s"].set(60.0)
    engine = ScanEngine(app, clock=VirtualClock())
    temps = {u: app.image[f"{u}_TT101"] for u in UNITS}
    worst = dict.fromkeys(UNITS, 0.0)
    steps: dict[str, set[str]] = {u: set() for u in UNITS}
    batches = {u: app.programs[f"{u}_batch"] for u in UNITS}

    def record(task: Any, now_ns: int) -> None:
        for u in UNITS:
            worst[u] = max(worst[u], abs(temps[u].value - 37.0))
            steps[u].add(batches[u].step)  # type: ignore[attr-defined]

    engine.add_cycle_hook(record)
    engine.start()
    engine.run_until(240 * 10**9)
    result = {"app": app, "engine": engine, "worst": worst, "steps": steps}
    engine.close()
    return result


def test_every_reactor_reaches_grow_and_holds_temperature(near_setpoint: dict[str, Any]) -> None:
    engine: ScanEngine = near_setpoint["engine"]
    assert engine.fault_reason == ""
    assert all(t.stats.faults == 0 for t in engine.tasks)
    for unit in UNITS:
        assert "GROW" in near_setpoint["steps"][unit], unit
        assert near_setpoint["worst"][unit] <= 0.5, (unit, near_setpoint["worst"][unit])


def test_an_alarm_on_every_analogue_input(near_setpoint: dict[str, Any]) -> None:
    app = near_setpoint["app"]
    analog = [
        p.name
        for p in app.image
        if p.direction is Direction.IN and p.type in (IecType.REAL, IecType.LREAL)
    ]
    assert len(analog) == 10 * 84
    instruments = tuple(f"{unit}_instruments." for unit in UNITS)
    unit_alarms = [blk for p, blk in app.tree.of_type(ALARM) if p.startswith(instruments)]
    watched = {blk.TEXT.split()[0] for blk in unit_alarms}
    assert set(analog) <= watched
    # Nothing in the plant is outside its instrument limits in a normal start.
    active = [blk.TEXT for blk in unit_alarms if blk.ACTIVE]
    assert active == []


def test_each_reactor_shares_its_own_globals_and_retains_them(
    near_setpoint: dict[str, Any],
) -> None:
    app = near_setpoint["app"]
    assert list(app.globals) == [f"{u}_{g}" for u in UNITS for g in ("control_on", "growing")]
    for unit in UNITS:
        on = app.globals[f"{unit}_control_on"]
        readers = [app.programs[f"{unit}_{p}"] for p in ("loops", "batch")]
        assert all(p.control_on is on for p in readers), unit
        assert app.programs[f"{unit}_alarms"].growing is app.globals[f"{unit}_growing"]
        assert on.value is True and on.spec.retain  # every unit is in GROW by now
    from runtime.state.retain import retained_leaves

    retained = retained_leaves(app)
    assert {f"globals.{u}_control_on" for u in UNITS} <= set(retained)
    assert not [p for p in retained if p.endswith("batch.control_on")]


def test_reactors_have_independent_noise(near_setpoint: dict[str, Any]) -> None:
    image = near_setpoint["app"].image
    readings = {image[f"{u}_TT101"].value for u in UNITS}
    assert len(readings) == 10  # ten seeds: ten different noise sequences


def test_plant10_runs_ten_minutes_from_the_cli_without_fault() -> None:
    res = subprocess.run(
        [VPLC, "run", str(APP), "--virtual", "--duration", "600"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "FAULT" not in res.stdout + res.stderr
    assert RuntimeState.STOP.value in res.stdout


def test_program_args_must_be_scalars(tmp_path: Path) -> None:
    from runtime import ManifestError, load_manifest

    manifest = yaml.safe_load((APP / "app.yaml").read_text())
    manifest["programs"][0]["args"] = {"unit": ["R1", "R2"]}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    with pytest.raises(ManifestError, match=r"at programs\.0\.args\.unit"):
        load_manifest(tmp_path)
