"""The one Runtime assembly: its order, what close() closes, and a refused part undone."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from runtime import RuntimeState, VirtualClock, load_app
from runtime.host import AssemblyError, Runtime
from runtime.host._trace import TraceRecorder
from runtime.state import RetainStore
from tests.conftest import MakeApp, memory_manifest


def test_hooks_then_trace_then_retain_and_close_closes_every_part(
    make_app: MakeApp, tmp_path: Path
) -> None:
    manifest = memory_manifest(retain={"variables": ["main.count"], "interval_s": 0.05})
    app = load_app(make_app(manifest))
    trace = TraceRecorder(tmp_path / "t.csv", app.image, threaded=False)
    retain = RetainStore(tmp_path / "app.retain", app)
    retain.load(mode="cold")
    rows_when_hook_ran: list[int] = []

    def hook(task: Any, now_ns: int) -> None:
        rows_when_hook_ran.append(trace.rows)

    runtime = Runtime(
        app,
        clock=VirtualClock(),
        hooks=[hook],
        trace=trace,
        retain=retain,
        heartbeat=tmp_path / "hb.json",
    )
    hooks = runtime.engine.fastest.hooks
    assert hooks[0] is hook and hooks[1] is trace and len(hooks) == 4  # + retain, heartbeat
    runtime.start()
    runtime.run_until(100_000_000)
    assert rows_when_hook_ran[:3] == [0, 1, 2]  # the caller's hook sees a cycle before the trace
    assert runtime.engine.statistics()["retain"]["checkpoints"] >= 1
    runtime.close()
    assert runtime.engine.state is RuntimeState.STOP
    assert trace.rows == 10 and (tmp_path / "t.csv").read_text().count("\n") == 11
    assert json.loads((tmp_path / "hb.json").read_text())["stopped"] is True
    assert (tmp_path / "app.retain").exists()  # the final checkpoint, through the close hook


def test_a_refused_part_undoes_what_was_started(make_app: MakeApp, tmp_path: Path) -> None:
    app = load_app(make_app())
    before = set(threading.enumerate())
    trace = TraceRecorder(tmp_path / "t.csv", app.image, threaded=True)
    assert any(t.name == "trace-writer" for t in set(threading.enumerate()) - before)
    with pytest.raises(AssemblyError) as caught:
        Runtime(app, clock=VirtualClock(), trace=trace, standby=True)
    assert caught.value.part == "handover" and "--standby needs a driver" in str(caught.value)
    left = {t.name for t in set(threading.enumerate()) - before}
    assert "trace-writer" not in left  # the trace was closed, its writer thread not leaked
