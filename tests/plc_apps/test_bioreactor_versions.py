"""The bioreactor across versions: a 1.0.0 retain file warm-starts 1.1.0 (globals) bumplessly.

``data/bioreactor-1.0.0-retain.json`` was written by bioreactor 1.0.0 (``control_on`` a variable
of the batch program) 2400 s into a batch, in GROW. 1.1.0 reads ``globals.control_on``; its
``migrate()`` (batch.py) carries the old value over. Without it the loops would see the
global's initial FALSE in the first cycle after power-up, track, and drop their integrals.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from plc_apps.bioreactor.batch import migrate
from runtime import ScanEngine, VirtualClock, load_app
from runtime.core._migrate import applies
from runtime.state import RetainStore, _file

APP = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
OLD_RETAIN = Path(__file__).parent / "data" / "bioreactor-1.0.0-retain.json"


def _warm_start(tmp_path: Path, *, with_migrate: bool) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / "bioreactor.retain"
    shutil.copy(OLD_RETAIN, path)
    app = load_app(APP)
    if not with_migrate:
        app.migrate = None
    report = RetainStore(path, app).load()
    assert report.started == "warm" and report.saved_version == "1.0.0"
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    engine.run_until(1)  # the first cycle of each task (t = 0): the loops run before the batch
    assert [t.stats.cycles for t in engine.tasks] == [1, 1]
    return engine, report.plan


def test_the_old_retain_file_carries_control_on_into_the_global(tmp_path: Path) -> None:
    saved = _file.decode(OLD_RETAIN.read_bytes())["data"]["variables"]
    assert saved["batch.control_on"] is True and saved["batch.step"] == "GROW"
    engine, plan = _warm_start(tmp_path, with_migrate=True)
    app = engine.app
    assert plan["counts"]["migrated"] == 2 and plan["counts"]["refused"] == 0
    assert plan["counts"]["dropped"] == plan["counts"]["added"] == 0
    changes = {c["path"]: c for c in plan["changes"]}
    assert changes["globals.control_on"]["value"] is True
    assert changes["globals.growing"]["value"] is True  # GROW under control
    assert app.globals["control_on"].value is True and app.programs["batch"].step == "GROW"
    loops: Any = app.programs["loops"]
    # in control from the first cycle: the integrals go on from the saved ones
    assert loops.tic101.I == pytest.approx(saved["loops.tic101.I"], abs=0.01)
    assert loops.aic201.I == pytest.approx(saved["loops.aic201.I"], abs=0.5)
    assert loops.tic101.I != 0.0 and loops.aic301.I != 0.0
    engine.close()


def test_without_migrate_the_loops_would_lose_their_integrals(tmp_path: Path) -> None:
    engine, plan = _warm_start(tmp_path, with_migrate=False)
    counts = plan["counts"]
    assert (counts["dropped"], counts["added"], counts["migrated"]) == (1, 2, 0)
    loops: Any = engine.app.programs["loops"]
    assert loops.tic101.I == 0.0 and loops.aic201.I == 0.0  # tracked: the bump migrate avoids
    engine.close()


def test_migrate_renames_per_unit_paths_and_leaves_current_state_alone() -> None:
    old = {
        "R3_batch.control_on": True,
        "R3_batch.step": "GROW",
        "R4_batch.control_on": True,
        "R4_batch.step": "HEAT",
        "R5_batch.control_on": False,
        "batch.control_on": True,
        "loops.tic101.I": 0.4,
    }
    assert migrate("1.0.0", dict(old)) == {
        "R3_batch.step": "GROW",
        "R4_batch.step": "HEAT",
        "loops.tic101.I": 0.4,
        "globals.R3_control_on": True,
        "globals.R3_growing": True,
        "globals.R4_control_on": True,
        "globals.R4_growing": False,
        "globals.R5_control_on": False,
        "globals.control_on": True,
    }
    current = {"globals.control_on": True, "batch.step": "GROW", "loops.tic101.I": 0.4}
    assert migrate("1.1.0", dict(current)) == current
    # declared for 1.0.x only: a change between later versions keeps the fast swap
    assert applies(migrate, "1.0.0") and applies(migrate, "1.0.7")
    assert not applies(migrate, "1.1.0") and not applies(migrate, "1.2.0")
