"""Live terminal view (rich): key values, lifecycle and phase state, task statistics, alarms."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from hal import Point, Quality
from runtime.blocks import ALARM, PHASE
from runtime.core._engine import RuntimeState, ScanEngine
from runtime.host._connections import mqtt_connections

_STATE_STYLE = {
    RuntimeState.RUN: "bold green",
    RuntimeState.STOP: "bold yellow",
    RuntimeState.FAULT: "bold white on red",
}
_MAX_POINTS = 40


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "ON" if value else "off"
    if isinstance(value, float):
        return f"{value:10.3f}"
    return str(value)


class LiveView:
    """Builds a renderable of the engine's state; the scan is only read, never locked."""

    def __init__(self, engine: ScanEngine, key_points: list[str] | None = None) -> None:
        self.engine = engine
        image = engine.image
        names = key_points or [p.name for p in image.points][:_MAX_POINTS]
        self.points: list[Point] = [image[n] for n in names]
        self._app: object = None
        self.alarms: list[tuple[str, Any]] = []
        self.phases: list[tuple[str, Any]] = []
        self._find_blocks()

    def _find_blocks(self) -> None:
        """Alarm and phase instances of the app now running (an online change swaps them)."""
        app = self.engine.app
        if app is self._app:
            return
        self._app = app
        tree = app.tree  # the one matching rule: instances of ALARM / PHASE (subclasses too)
        self.alarms = list(tree.of_type(ALARM))
        self.phases = list(tree.of_type(PHASE))

    def render(self) -> Group:
        self._find_blocks()
        eng = self.engine
        head = Text.assemble(
            (f" {eng.app.name} {eng.app.version} ", "bold"),
            (f" {eng.state.value} ", _STATE_STYLE[eng.state]),
            f"  t = {eng.now_ns / 1e9:10.1f} s",
        )
        if eng.fault_reason:
            head.append(f"  FAULT: {eng.fault_reason}", style="red")
        for path, ph in self.phases:
            head.append(f"  {path}: {ph.STATE_NAME}", style="cyan")
        parts: list[Text | Table] = [
            head,
            self._points_table(),
            self._tasks_table(),
            self._alarms_table(),
        ]
        conns = mqtt_connections()
        if conns:
            parts.append(_mqtt_table(conns))
        return Group(*parts)

    def _points_table(self) -> Table:
        table = Table(title="I/O", expand=False, box=None, padding=(0, 1))
        for col in ("point", "value", "unit", "quality", "dir"):
            table.add_column(col)
        for p in self.points:
            q = p.quality
            style = "" if q is Quality.GOOD else ("yellow" if q is Quality.UNCERTAIN else "red")
            value = _fmt(p.value) + (" FORCED" if p.forced else "")
            table.add_row(p.name, value, p.spec.unit, Text(q.name, style=style), p.direction.value)
        return table

    def _tasks_table(self) -> Table:
        table = Table(title="tasks", box=None, padding=(0, 1))
        for col in (
            "task",
            "period ms",
            "cycles",
            "exec avg/max µs",
            "latency p99/max µs",
            "overruns",
        ):
            table.add_column(col)
        for t in self.engine.tasks:
            s = t.stats
            ex, lat = s.exec_hist, s.latency_hist
            n = ex.count
            avg = ex.total / n / 1000 if n else 0.0
            table.add_row(
                t.name,
                f"{t.period_ns / 1e6:g}",
                str(s.cycles),
                f"{avg:.0f} / {ex.max / 1000:.0f}",
                f"{lat.percentile(0.99) / 1000:.0f} / {lat.max / 1000:.0f}",
                str(s.overruns),
            )
        return table

    def _alarms_table(self) -> Table:
        table = Table(title="alarms", box=None, padding=(0, 1))
        table.add_column("alarm")
        table.add_column("state")
        active = 0
        for path, blk in self.alarms:
            if blk.ACTIVE or blk.UNACKED:
                active += 1
                state = ("ACTIVE" if blk.ACTIVE else "cleared") + (" UNACK" if blk.UNACKED else "")
                table.add_row(getattr(blk, "TEXT", "") or path, Text(state, style="red"))
        if not active:
            table.add_row("(none)", "")
        return table


def _mqtt_table(conns: list[dict[str, Any]]) -> Table:
    """Each MQTT session: up, or down with the reason; a client-id collision stands out."""
    table = Table(title="MQTT", box=None, padding=(0, 1))
    for col in ("connection", "state", "detail"):
        table.add_column(col)
    for c in conns:
        if c.get("collision"):
            state, detail = Text("COLLISION", style="bold white on red"), c["collision"]
        elif c.get("connected"):
            state, detail = Text("connected", style="green"), c.get("endpoint", "")
        elif c.get("stopped"):
            state, detail = Text("stopped", style="yellow"), c.get("endpoint", "")
        else:
            why = c.get("reason") or "connecting"
            state = Text(f"DOWN {why} {c.get('down_s', 0):.0f} s", style="bold red")
            detail = c.get("last_error") or c.get("endpoint", "")
        table.add_row(str(c.get("who")), state, detail)
    return table
