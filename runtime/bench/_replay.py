"""Replay: feed a recorded trace's inputs to an app and compare its outputs cycle by cycle."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal import ChannelInfo, Direction, IecType, Point, Quality, Value
from runtime._clock import VirtualClock
from runtime._engine import ScanEngine, Task
from runtime._loader import load_app

__all__ = ["ReplayDriver", "ReplayError", "ReplayResult", "replay"]

_BOTH = frozenset({Direction.IN, Direction.OUT})
_ALIGN_NS = 1000  # trace times are repr(ns / 1e9): equal to the ns within far less than 1 µs


class ReplayError(Exception):
    """The trace cannot be replayed on this app (columns, values or times do not fit)."""


class ReplayDriver:
    """Latches the recorded input columns row by row on the virtual clock; outputs go nowhere.

    A row is consumed when a cycle's release equals its time; a cycle between rows (a slower
    task's release) sees the last row again, as a sample-and-hold would. Qualities are not
    in a trace, so every reading is GOOD (range checks still apply in the point).
    """

    def __init__(
        self,
        *,
        name: str,
        times_ns: Sequence[int],
        rows: Sequence[Sequence[Value]],
        columns: Sequence[str],
    ) -> None:
        self.name = name
        self.times_ns = list(times_ns)
        self.rows = list(rows)
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
        if self.index < 0:
            return
        row = self.rows[self.index]
        for point, col in self._inputs:
            point.latch(row[col], Quality.GOOD, now_ns)

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


def _parser(kind: IecType) -> Any:
    if kind is IecType.BOOL:
        return lambda s: s.strip().lower() in ("1", "true")
    if kind.is_integer:
        return int
    if kind is IecType.STRING:
        return str
    return float


def _read_trace(
    path: Path, points: Sequence[Point]
) -> tuple[list[int], list[list[Value]], list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "t":
                raise ReplayError(f"{path}: not a vplc trace (first column must be 't')")
            columns = header[1:]
            names = {p.name for p in points}
            missing, extra = sorted(names - set(columns)), sorted(set(columns) - names)
            if missing or extra:
                raise ReplayError(
                    f"{path}: trace columns do not match the app's points: "
                    f"missing {missing or 'none'}, unknown {extra or 'none'}"
                )
            by_name = {p.name: p for p in points}
            parsers = [_parser(by_name[c].type) for c in columns]
            times: list[int] = []
            rows: list[list[Value]] = []
            for line, rec in enumerate(reader, start=2):
                if len(rec) != len(header):
                    raise ReplayError(f"{path}:{line}: {len(rec)} fields, header has {len(header)}")
                try:
                    t_ns = round(float(rec[0]) * 1e9)
                    rows.append([f(v) for f, v in zip(parsers, rec[1:], strict=True)])
                except ValueError as exc:
                    raise ReplayError(f"{path}:{line}: {exc}") from None
                if times and t_ns < times[-1]:
                    raise ReplayError(f"{path}:{line}: time goes backwards")
                times.append(t_ns)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from None
    if not rows:
        raise ReplayError(f"{path}: the trace has no rows")
    return times, rows, columns


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
    app = load_app(app_dir, seed=seed)
    for name, value in (parameters or {}).items():
        if name not in app.parameters:
            raise ReplayError(
                f"unknown parameter {name!r} (parameters: {', '.join(app.parameters)})"
            )
        try:
            app.parameters[name].set(value)
        except (TypeError, ValueError) as exc:
            raise ReplayError(str(exc)) from None
    times, rows, columns = _read_trace(Path(trace), app.image.points)
    driver = ReplayDriver(name="replay", times_ns=times, rows=rows, columns=columns)
    driver.bind([(p, p.name) for p in app.image])
    app.drivers = {"replay": driver}
    engine = ScanEngine(app, clock=VirtualClock())
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
        task.hooks.append(compare)
    engine.start()
    try:
        engine.run_until(times[-1] + 1)
    finally:
        engine.close()
    if driver.error:
        raise ReplayError(f"{trace}: {driver.error}")
    if result.compared < len(rows):
        raise ReplayError(
            f"{trace}: only {result.compared} of {len(rows)} rows met a cycle of the app: "
            "its task periods do not match the recording"
        )
    result.identical = not result.signals
    return result
