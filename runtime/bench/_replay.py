"""Replay: feed a recorded trace's inputs to an app and compare its outputs cycle by cycle."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal import ChannelInfo, Direction, Point, Quality, Value
from runtime.bench._trace_reader import ReplayError, read_trace
from runtime.core._clock import VirtualClock
from runtime.core._task import Task
from runtime.host._apps import open_app
from runtime.host._runtime import Runtime

__all__ = ["ReplayDriver", "ReplayError", "ReplayResult", "replay"]

_BOTH = frozenset({Direction.IN, Direction.OUT})
_GOOD = Quality.GOOD
_ALIGN_NS = 1000  # trace times are repr(ns / 1e9): equal to the ns within far less than 1 µs


class ReplayDriver:
    """Latches the recorded input columns row by row on the virtual clock; outputs go nowhere.

    A row is consumed when a cycle's release equals its time; a cycle between rows (a slower
    task's release) sees the last row again, as a sample-and-hold would. Each input gets the
    quality its row recorded (a BAD input keeps its last good value, as live); traces from
    before the quality column have none, and every reading is GOOD.
    """

    def __init__(
        self,
        *,
        name: str,
        times_ns: Sequence[int],
        rows: Sequence[Sequence[Value]],
        columns: Sequence[str],
        qualities: Sequence[dict[str, Quality] | None] | None = None,
        changes: Sequence[dict[str, Value] | None] | None = None,
        set_parameter: Callable[[str, Value], object] | None = None,
    ) -> None:
        self.name = name
        self.times_ns = list(times_ns)
        self.rows = list(rows)
        self.qualities = list(qualities) if qualities is not None else [None] * len(self.rows)
        self.changes = list(changes) if changes is not None else [None] * len(self.rows)
        self.set_parameter = set_parameter
        self.columns = {c: i for i, c in enumerate(columns)}
        self.index = -1
        self.fresh = False  # a new row was latched in the current cycle
        self.error = ""
        self._inputs: list[tuple[Point, int]] = []

    def channels(self) -> Mapping[str, ChannelInfo]:
        return {c: ChannelInfo(c, _BOTH) for c in self.columns}

    def bind(self, points: Sequence[tuple[Point, str]]) -> None:
        self._inputs = [(p, self.columns[ch]) for p, ch in points if p.direction is Direction.IN]

    def open(self) -> None:
        self.index = -1

    def read_inputs(self, now_ns: int) -> None:
        nxt = self.index + 1
        self.fresh = nxt < len(self.rows) and self.times_ns[nxt] <= now_ns + _ALIGN_NS
        if self.fresh:
            if self.times_ns[nxt] < now_ns - _ALIGN_NS and not self.error:
                self.error = (
                    f"trace row {nxt + 1} (t={self.times_ns[nxt] / 1e9:g} s) falls between the "
                    f"app's cycles (next cycle at t={now_ns / 1e9:g} s): task periods differ"
                )
            self.index = nxt
            changed = self.changes[nxt]
            if changed and self.set_parameter is not None:
                # Written between cycles when recorded: before this cycle's programs here too.
                for pname, value in changed.items():
                    self.set_parameter(pname, value)
        if self.index < 0:
            return
        row = self.rows[self.index]
        bad = self.qualities[self.index]
        for point, col in self._inputs:
            quality = bad.get(point.name, _GOOD) if bad else _GOOD
            point.latch(row[col], quality, now_ns)

    def write_outputs(self, now_ns: int) -> None:
        """Outputs stay in the process image, where the comparison reads them."""

    def close(self) -> None:
        """Nothing to release."""

    def snapshot(self) -> dict[str, Any]:
        return {"index": self.index}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.index = int(state["index"])


@dataclass
class ReplayResult:
    """``identical`` unless an output differed; the first differing cycle and what differed."""

    rows: int = 0
    compared: int = 0
    identical: bool = True
    first_cycle: int | None = None  # data row number in the trace (1 = first row after header)
    first_t: float | None = None
    first_diffs: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # recorded, replayed
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)  # per output: first, count

    def summary(self) -> str:
        if self.identical:
            return f"identical: {self.compared} cycles compared, every output as recorded"
        diffs = ", ".join(
            f"{n} recorded {r!r} replayed {v!r}" for n, (r, v) in self.first_diffs.items()
        )
        return (
            f"different: first at cycle {self.first_cycle} (t={self.first_t:g} s): {diffs}; "
            f"signals that differ: {', '.join(self.signals)}"
        )


def _same(a: Any, b: Any, tol: float) -> bool:
    if a == b:
        return True
    if tol > 0 and isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= tol
    return False


def replay(
    trace: Path | str,
    app_dir: Path | str,
    *,
    tolerance: float = 0.0,
    parameters: Mapping[str, Value] | None = None,
    seed: int = 0,
) -> ReplayResult:
    """Run ``app_dir`` on the inputs recorded in ``trace`` and compare every output column.

    Raises ReplayError (or ManifestError) when the trace does not fit the app.
    """
    app = open_app(app_dir, seed=seed)
    for name, value in (parameters or {}).items():
        if name not in app.parameters:
            raise ReplayError(
                f"unknown parameter {name!r} (parameters: {', '.join(app.parameters)})"
            )
        try:
            app.parameters[name].set(value)
        except (TypeError, ValueError) as exc:
            raise ReplayError(str(exc)) from None
    kinds = {name: p.spec.type for name, p in app.parameters.items()}
    recorded = read_trace(Path(trace), app.image.points, kinds)
    times, rows, columns = recorded.times_ns, recorded.rows, recorded.columns
    driver = ReplayDriver(
        name="replay",
        times_ns=times,
        rows=rows,
        columns=columns,
        qualities=recorded.qualities,
        changes=recorded.changes,
        set_parameter=lambda name, value: app.parameters[name].set(value),
    )
    driver.bind([(p, p.name) for p in app.image])
    app.drivers = {"replay": driver}
    runtime = Runtime(app, clock=VirtualClock())  # the one assembly, on the replay driver
    engine = runtime.engine
    result = ReplayResult(rows=len(rows))
    outputs = [(p, columns.index(p.name)) for p in app.image.outputs]

    def compare(task: Task, now_ns: int) -> None:
        if not driver.fresh:
            return
        driver.fresh = False
        result.compared += 1
        row = rows[driver.index]
        for point, col in outputs:
            if _same(row[col], point.value, tolerance):
                continue
            stats = result.signals.setdefault(point.name, {"first_t": now_ns / 1e9, "cycles": 0})
            stats["cycles"] += 1
            if result.first_cycle in (None, driver.index + 1):
                result.first_cycle = driver.index + 1
                result.first_t = now_ns / 1e9
                result.first_diffs[point.name] = (row[col], point.value)

    for task in engine.tasks:
        engine.add_cycle_hook(compare, task=task)
    runtime.start()
    try:
        runtime.run_until(times[-1] + 1)
    finally:
        runtime.close()
    if driver.error:
        raise ReplayError(f"{trace}: {driver.error}")
    if result.compared < len(rows):
        raise ReplayError(
            f"{trace}: only {result.compared} of {len(rows)} rows met a cycle of the app: "
            "its task periods do not match the recording"
        )
    result.identical = not result.signals
    return result
