"""The live terminal view renders what an operator needs: values, state, phase, alarms."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from runtime import ScanEngine, VirtualClock, load_app
from runtime.host._view import LiveView

APP = Path(__file__).resolve().parents[3] / "plc_apps" / "bioreactor"


def _text(view: LiveView) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(view.render())
    return console.export_text()


def test_view_shows_points_state_phase_tasks_and_active_alarms() -> None:
    app = load_app(APP)
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    engine.run_until(5 * 10**9)
    view = LiveView(engine)
    text = _text(view)
    assert "RUN" in text and "batch.phase: RUNNING" in text
    assert "TT101" in text and "degC" in text and "GOOD" in text
    assert "control" in text and "sequence" in text
    assert "(none)" in text  # no alarm yet
    level = app.programs["alarms"].level  # type: ignore[attr-defined]
    level.ACTIVE = level.UNACKED = True
    text = _text(view)
    assert "LT401 vessel level" in text and "ACTIVE UNACK" in text
    app.image["TT101"].force(36.0)
    assert "FORCED" in _text(view)
    engine.close()
