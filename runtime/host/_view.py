"""Live terminal view (rich): what an operator needs first, fitted to the terminal's size."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from hal import Point, Quality
from runtime.blocks import ALARM, PHASE, PID
from runtime.core._engine import RuntimeState, ScanEngine
from runtime.host._connections import mqtt_connections

__all__ = ["LiveView", "show_live"]

_STATE_STYLE = {
    RuntimeState.RUN: "bold green",
    RuntimeState.STOP: "bold yellow",
    RuntimeState.FAULT: "bold white on red",
}
_QUALITY_STYLE = {Quality.GOOD: "", Quality.UNCERTAIN: "yellow", Quality.BAD: "bold red"}
_KINDS = (("HH", "HH_ACTIVE"), ("H", "H_ACTIVE"), ("L", "L_ACTIVE"), ("LL", "LL_ACTIVE"))
_TITLE = "bold cyan"
_IO_WIDTH = 49  # one I/O row: name, value, unit, quality, direction, FORCED
Section = list[Text]


def _num(value: Any, unit: str = "") -> str:
    if isinstance(value, bool):
        text = "ON" if value else "off"
    elif isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 1e6 else f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


class _Source:
    """What a block input is wired to, as the view shows it: unit, and quality/forced for a
    point (a parameter or global variable is always GOOD and never forced)."""

    __slots__ = ("point", "unit")

    def __init__(self, point: Point | None, unit: str) -> None:
        self.point, self.unit = point, unit

    def marks(self) -> Text:
        p = self.point
        out = Text()
        if p is not None and p.quality is not Quality.GOOD:
            out.append(f" {p.quality.name}", _QUALITY_STYLE[p.quality])
        if p is not None and p.forced:
            out.append(" FORCED", "bold magenta")
        return out


class _Screen:
    """A rich renderable that lays the view out for the console's size when it is drawn."""

    def __init__(self, view: LiveView, reserve: int) -> None:
        self.view, self.reserve = view, reserve

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = (options.height or console.height) - self.reserve
        yield from self.view.lines(options.max_width, height)


class LiveView:
    """Builds the operator screen from the engine's state; the scan is only read, never locked.

    First the header (app, version, RUN/STOP/FAULT with its reason, app time), the task
    health in one line, MQTT connections, forced and BAD points, then each phase with its
    step, the PID loops (PV, SP, output, mode, with units from the points and parameters they
    are wired to) and the active alarms; the I/O list gets the rows left over. ``io_page``
    shows the whole I/O list instead, in pages (``key``: ``i`` toggles it, space/PgDn and
    b/PgUp page through it).
    """

    def __init__(self, engine: ScanEngine, key_points: list[str] | None = None) -> None:
        self.engine = engine
        image = engine.image
        names = key_points or [p.name for p in image.points]
        self.points: list[Point] = [image[n] for n in names]
        self.io_page = False
        self.io_offset = 0
        self.keys = False  # set by whoever reads keys (show_live on a terminal): hints name them
        self._per = 1  # I/O points on the last page drawn: what a page key moves by
        self._app: object = None
        self.alarms: list[tuple[str, Any]] = []
        self.phases: list[tuple[str, Any, Any]] = []
        self.loops: list[tuple[str, Any, _Source, _Source]] = []
        self._find_blocks()

    def _find_blocks(self) -> None:
        """Loop, alarm and phase instances of the app now running (an online change swaps
        them); wires are resolved once per app, not on every refresh."""
        app = self.engine.app
        if app is self._app:
            return
        self._app = app
        tree = app.tree  # the one matching rule: instances of ALARM / PHASE / PID (subclasses)
        self.alarms = list(tree.of_type(ALARM))
        # A phase's step is its program's ``step`` variable, by convention (as MQTT publishes).
        self.phases = [(p, b, tree.program_of(p)) for p, b in tree.of_type(PHASE)]
        self.loops = []
        for path, pid in tree.of_type(PID):
            wires = pid.wired()
            pv = self._source(wires.get("PV"))
            sp = self._source(wires.get("SP"))
            if not sp.unit:  # a setpoint is in the units of its PV by definition
                sp = _Source(sp.point, pv.unit)
            self.loops.append((path, pid, pv, sp))

    def _source(self, name: str | None) -> _Source:
        if name is None:
            return _Source(None, "")
        image, params = self.engine.image, self.engine.app.parameters
        if name in image:
            point = image[name]
            return _Source(point, point.spec.unit)
        param = params.get(name)
        return _Source(None, getattr(param.spec, "unit", "") if param is not None else "")

    # ------------------------------------------------------------------ rendering
    def render(self, reserve: int = 1) -> _Screen:
        """A renderable sized to the console when drawn. ``reserve`` lines are left free
        (rich's Live keeps the cursor below the view: a full-height view would scroll)."""
        return _Screen(self, reserve)

    def text(self, width: int = 80, height: int = 24) -> str:
        """The screen as plain text, at most ``height`` lines of at most ``width`` columns."""
        return "\n".join(t.plain for t in self.lines(width, height))

    def lines(self, width: int, height: int) -> list[Text]:
        self._find_blocks()
        height = max(height, 3)
        top = [*self._header(width), self._tasks_line(width)]
        top += self._connections() + self._marked_points()
        if self.io_page:
            top.append(self._alarms()[0])  # the alarm count stays in sight on the I/O pages
            out = top + self._io_page(width, height - len(top) - 1) + [self._page_hint()]
        else:
            out = top + self._operator_body(height - len(top))
        for line in out:
            line.no_wrap = True
            line.truncate(width, overflow="ellipsis")
        return out[:height]

    def _operator_body(self, budget: int) -> list[Text]:
        """Phases, loops and alarms first (each at least its title and first rows), then the
        I/O list in what is left, and a hint line when it does not all fit."""
        sections = [self._phases(), self._loops(), self._alarms()]
        total = len(self.points)
        budget -= 1  # the hint line
        shares = _share([len(s) for s in sections], budget, minimum=3)
        out: list[Text] = []
        for section, n in zip(sections, shares, strict=True):
            out += _cut(section, n, "more")
        room = budget - len(out)
        shown = max(0, min(total, room - 1)) if room >= 2 else 0
        if shown:  # rows are built only for the points shown: plant10 has thousands
            out.append(_io_head())
            out += [_io_row(p) for p in self.points[:shown]]
        more = total - shown
        hint = f"I/O: {shown} of {total} points" if more else f"I/O: all {total} points"
        if more:
            hint += " · " + ("i: the full list" if self.keys else "a taller terminal shows all")
        out.append(self._hint(hint))
        return out

    def _hint(self, text: str) -> Text:
        return Text(text, "dim")

    def _header(self, width: int) -> list[Text]:
        eng = self.engine
        head = Text.assemble(
            (f"{eng.app.name} {eng.app.version} ", "bold"),
            (f" {eng.state.value} ", _STATE_STYLE[eng.state]),
            f"  t {eng.now_ns / 1e9:.1f} s",
        )
        out = [head]
        if eng.fault_reason:  # the reason matters more than anything below: its own lines
            reason = f"FAULT: {eng.fault_reason}"
            out += [Text(reason[i : i + width], "bold red") for i in range(0, len(reason), width)][
                :3
            ]
        return out

    def _tasks_line(self, width: int) -> Text:
        """Every task's period, p99 wake latency / p99 exec time and overruns, in one line
        (without the legend when the line would not fit)."""
        line = self._tasks_text(legend=True)
        return line if len(line) <= width else self._tasks_text(legend=False)

    def _tasks_text(self, *, legend: bool) -> Text:
        line = Text("tasks ", _TITLE)
        if legend:
            line.append("p99 wake/exec µs: ", "dim")
        for i, t in enumerate(self.engine.tasks):
            s = t.stats
            lat, ex = s.latency_hist.percentile(0.99), s.exec_hist.percentile(0.99)
            if i:
                line.append(" · ")
            line.append(f"{t.name} {_period(t.period_ns)} {lat / 1000:.0f}/{ex / 1000:.0f}")
            line.append(f" ov {s.overruns}", "bold red" if s.overruns else "")
        return line

    def _connections(self) -> list[Text]:
        out = []
        for c in mqtt_connections():
            line = Text(f"MQTT {c.get('who')} ", _TITLE)
            if c.get("collision"):
                line.append(f"CLIENT-ID COLLISION {c['collision']}", "bold white on red")
            elif c.get("connected"):
                line.append(f"connected {c.get('endpoint', '')}", "green")
            elif c.get("stopped"):
                line.append(f"stopped {c.get('endpoint', '')}", "yellow")
            else:
                why = c.get("reason") or "connecting"
                line.append(f"DOWN {why} {c.get('down_s', 0):.0f} s", "bold red")
                line.append(f" {c.get('last_error') or c.get('endpoint', '')}")
            out.append(line)
        return out

    def _marked_points(self) -> list[Text]:
        """Forced and not-GOOD points in one line each: never scrolled off with the I/O list."""
        forced = [p for p in self.points if p.forced]
        bad = [p for p in self.points if p.quality is not Quality.GOOD]
        out = []
        if forced:
            line = Text(f"FORCED {len(forced)}: ", "bold magenta")
            line.append(", ".join(f"{p.name}={_num(p.value, p.spec.unit)}" for p in forced))
            out.append(line)
        if bad:
            line = Text(f"quality {len(bad)}: ", "bold red")
            for i, p in enumerate(bad):
                line.append((", " if i else "") + f"{p.name} ")
                line.append(p.quality.name, _QUALITY_STYLE[p.quality])
            out.append(line)
        return out

    def _phases(self) -> Section:
        out = []
        for path, ph, prog in self.phases:
            line = Text(f"{path} ", _TITLE)
            line.append(str(ph.STATE_NAME), "bold")
            line.append(f" for {_hms(ph.STATE_TIME)}")
            step = getattr(prog, "step", None)
            if step is not None:
                line.append("  step ")
                line.append(str(step), "bold")
            out.append(line)
        return out

    def _loops(self) -> Section:
        if not self.loops:
            return []
        names = max(len(p) for p, *_ in self.loops)
        out = [
            Text(f"{'loop':<{names}} {'PV':>8} {'':<5} {'SP':>8} {'':<5} {'OUT':>8} mode", _TITLE)
        ]
        for path, pid, pv, sp in self.loops:
            line = Text(f"{path:<{names}} {_num(pid.PV):>8} {pv.unit:<5} ")
            line.append(f"{_num(pid.SP):>8} {sp.unit:<5} {_num(pid.OUT):>8} ")
            mode = str(pid.MODE)
            line.append(mode, "bold" if mode == "AUTO" else "yellow")
            line.append_text(pv.marks())
            out.append(line)
        return out

    def _alarms(self) -> Section:
        """Active or unacknowledged alarms, unacknowledged and most severe first."""
        shown = [(p, a) for p, a in self.alarms if a.ACTIVE or a.UNACKED]
        shown.sort(key=lambda pa: (not pa[1].UNACKED, -pa[1].SEVERITY))
        unacked = sum(1 for _, a in shown if a.UNACKED)
        active = sum(1 for _, a in shown if a.ACTIVE)
        if not shown:
            return [Text.assemble(("alarms ", _TITLE), "none active")]
        out = [Text.assemble(("alarms ", _TITLE), f"{active} active, {unacked} unacknowledged")]
        for path, a in shown:
            kinds = " ".join(k for k, attr in _KINDS if getattr(a, attr)) or "-"
            if a.BAD_ACTIVE:
                kinds = (kinds + " BAD").strip(" -")
            state = ("ACTIVE" if a.ACTIVE else "cleared") + (" UNACK" if a.UNACKED else "")
            line = Text(f"P{a.SEVERITY} {kinds:<5} ", "bold red" if a.SEVERITY > 1 else "red")
            line.append(f"{state:<13}", "bold" if a.UNACKED else "")
            line.append(getattr(a, "TEXT", "") or path)
            out.append(line)
        return out

    # ------------------------------------------------------------------ I/O list
    def _io_page(self, width: int, rows: int) -> list[Text]:
        """One page of the whole I/O list, in as many columns as the width holds."""
        cols = max(1, (width + 2) // (_IO_WIDTH + 2))
        per_col = max(rows - 1, 1)
        self._per = per = per_col * cols
        last = (max(len(self.points) - 1, 0) // per) * per
        self.io_offset = max(0, min(self.io_offset, last))
        page = self.points[self.io_offset : self.io_offset + per]
        used = min(cols, -(-len(page) // per_col)) or 1
        out = [_columns([_io_head()] * used)]
        for r in range(min(per_col, len(page))):
            out.append(_columns([_io_row(p) for p in page[r::per_col]]))
        return out

    def _page_hint(self) -> Text:
        total = len(self.points)
        first = self.io_offset + 1 if total else 0
        label = f"I/O {first}-{min(self.io_offset + self._per, total)} of {total}"
        keys = " · space/PgDn next · b/PgUp back · i operator screen" if self.keys else ""
        return self._hint(label + keys)

    def key(self, key: str) -> None:
        """Act on a key press: ``i`` toggles the I/O pages, which space/PgDn/n and
        b/PgUp/p move through; Esc or o go back to the operator screen."""
        if key in ("i", "I"):
            self.io_page = not self.io_page
            self.io_offset = 0
        elif not self.io_page:
            return
        elif key in (" ", "n", "pgdn", "down"):
            self.io_offset += self._per
        elif key in ("b", "p", "pgup", "up"):
            self.io_offset = max(0, self.io_offset - self._per)
        elif key in ("o", "\x1b"):
            self.io_page = False


def show_live(engine: ScanEngine, keep_going: Callable[[], bool]) -> None:
    """Show the view on this terminal while ``keep_going()``: redrawn 4 times a second and at
    once on a key press. It only reads the engine, from this thread; the scan runs in its own.
    Stopping stays Ctrl-C (a stray key must not stop a running plant)."""
    from rich.live import Live

    from runtime.host._keys import KeyReader

    view = LiveView(engine)
    with KeyReader(sys.stdin.fileno()) as keys:
        view.keys = keys.active
        with Live(view.render(), auto_refresh=False, screen=False) as live:
            while keep_going():
                for key in keys.read(0.25):
                    view.key(key)
                live.update(view.render(), refresh=True)


def _columns(cells: list[Text]) -> Text:
    out = Text()
    for i, cell in enumerate(cells):
        if i:
            out.append("  ")
        if i < len(cells) - 1:  # pad (or cut) to the column; the last column needs no padding
            cell.align("left", _IO_WIDTH)
        out.append_text(cell)
    return out


def _period(ns: int) -> str:
    return f"{ns / 1e9:g}s" if ns % 10**9 == 0 else f"{ns / 1e6:g}ms"


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _io_head() -> Text:
    return Text(f"{'I/O':<11} {'value':>10} {'unit':<6} {'quality':<8} dir", _TITLE)


def _io_row(p: Point) -> Text:
    q = p.quality
    line = Text(f"  {p.name:<9} {_num(p.value):>10} {p.spec.unit:<6} ")
    line.append(f"{q.name:<8}", _QUALITY_STYLE[q])
    line.append(f" {p.direction.value:<3}")
    if p.forced:
        line.append(" FORCED", "bold magenta")
    return line


def _share(sizes: list[int], budget: int, minimum: int) -> list[int]:
    """Lines for each section: first up to ``minimum`` each, in order, then the rest."""
    given, left = [], max(budget, 0)
    for n in sizes:
        given.append(min(n, minimum, left))
        left -= given[-1]
    while left > 0 and any(g < n for g, n in zip(given, sizes, strict=True)):
        for i, n in enumerate(sizes):  # round robin: forty loops must not hide the alarms
            if left > 0 and given[i] < n:
                given[i] += 1
                left -= 1
    return given


def _cut(section: Section, n: int, what: str) -> Section:
    """The first ``n`` lines; when some are left out the last shown line says how many."""
    if n >= len(section):
        return section
    if n <= 0:
        return []
    return [*section[: n - 1], Text(f"  … {len(section) - n + 1} {what}", "dim")]
