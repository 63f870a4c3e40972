"""The bioreactor app in closed loop with the simulated plant, in virtual time."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime import RuntimeState, ScanEngine, VirtualClock, load_app, load_manifest
from runtime.blocks import ALARM

APP = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))


@pytest.fixture(scope="module")
def four_hours() -> dict[str, Any]:
    app = load_app(APP)
    engine = ScanEngine(app, clock=VirtualClock())
    image, batch = app.image, app.programs["batch"]
    rows: list[tuple[float, float, float, float]] = []
    steps: set[str] = set()

    def record(task: Any, now_ns: int) -> None:
        rows.append(
            (now_ns / 1e9, image["TT101"].value, image["AT201"].value, image["AT301"].value)
        )
        steps.add(batch.step)  # type: ignore[attr-defined]

    engine.add_cycle_hook(record)
    engine.start()
    engine.run_until(4 * 3600 * 10**9)
    # Paths inside the "alarms" program (its ALARM instances, from the app's instance tree).
    alarms = {p.split(".", 1)[1]: b for p, b in app.tree.of_type(ALARM) if p.startswith("alarms.")}
    result = {
        "rows": rows,
        "steps": steps,
        "engine": engine,
        "alarms": alarms,
        "phase": batch.phase.STATE_NAME,
    }  # type: ignore[attr-defined]
    engine.close()
    return result


def _max_dev(rows: list[tuple[float, ...]], col: int, sp: float, t0: float) -> float:
    return max(abs(r[col] - sp) for r in rows if r[0] >= t0)


def test_holds_the_control_bands_after_settling(four_hours: dict[str, Any]) -> None:
    rows = four_hours["rows"]
    assert rows[0][1] < 30.0  # starts cold: the band is earned, not given
    settled = 1800.0
    assert _max_dev(rows, 1, 37.0, settled) <= 0.2
    assert _max_dev(rows, 2, 7.00, settled) <= 0.05
    assert _max_dev(rows, 3, 40.0, settled) <= 5.0


def test_batch_runs_fill_heat_grow(four_hours: dict[str, Any]) -> None:
    assert {"FILL", "HEAT", "GROW"} <= four_hours["steps"]
    assert four_hours["phase"] == "RUNNING"
    engine: ScanEngine = four_hours["engine"]
    assert engine.state is RuntimeState.STOP  # closed by the fixture, outputs safe
    assert all(t.stats.overruns == 0 for t in engine.tasks)


def test_no_process_alarm_in_a_normal_batch(four_hours: dict[str, Any]) -> None:
    alarms = four_hours["alarms"]
    assert len(alarms) >= 6
    assert not [p for p, blk in alarms.items() if blk.ACTIVE]


def test_bioreactor_trace_is_byte_identical_across_runs(tmp_path: Path) -> None:
    digests = []
    for i in range(2):
        out = tmp_path / f"run{i}.csv"
        res = subprocess.run(
            [VPLC, "run", str(APP), "--virtual", "--duration", "900", "--trace", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert len(out.read_text().splitlines()) == 1 + 900 * 5


def test_installed_app_resolves_by_name() -> None:
    res = subprocess.run(
        [VPLC, "validate", "bioreactor"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert f"bioreactor {load_manifest(APP).version}" in res.stdout
