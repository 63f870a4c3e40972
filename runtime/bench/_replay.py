"""Replay: feed a recorded trace's inputs to an app and compare its outputs cycle by cycle."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal import ChannelInfo, Direction, IecType, Point, Quality, Value
from runtime._clock import VirtualClock
from runtime._engine import ScanEngine, Task
from runtime._loader import load_app
from runtime._trace import PARAMS_COLUMN, QUALITY_COLUMN

__all__ = ["ReplayDriver", "ReplayError", "ReplayResult", "replay"]

_BOTH = frozenset({Direction.IN, Direction.OUT})
_GOOD = Quality.GOOD
_ALIGN_NS = 1000  # trace times are repr(ns / 1e9): equal to the ns within far less than 1 µs


class ReplayError(Exception):
    """The trace cannot be replayed on this app (columns, values or times do not fit)."""


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


def _parser(kind: IecType) -> Any:
    if kind is IecType.BOOL:
        return lambda s: s.strip().lower() in ("1", "true")
    if kind.is_integer:
        return int
    if kind is IecType.STRING:
        return str
    return float


@dataclass
class _Trace:
    times_ns: list[int]
    rows: list[list[Value]]
    columns: list[str]
    qualities: list[dict[str, Quality] | None]
    changes: list[dict[str, Value] | None]


def _qualities(cell: str, inputs: set[str], where: str) -> dict[str, Quality] | None:
    """'AT301=BAD;TT101=UNCERTAIN' → {name: quality}; an empty cell (all GOOD) → None."""
    if not cell:
        return None
    out: dict[str, Quality] = {}
    for item in cell.split(";"):
        name, _, quality = item.partition("=")
        if name not in inputs or quality not in Quality.__members__:
            raise ReplayError(
                f"{where}: {QUALITY_COLUMN} entry {item!r} is not INPUT=QUALITY with an input "
                f"point of the app and one of {', '.join(Quality.__members__)}"
            )
        out[name] = Quality[quality]
    return out


def _changes(cell: str, kinds: Mapping[str, IecType], where: str) -> dict[str, Value] | None:
    """'temp_sp=37.5;auto_start=0' → {name: value}; an empty cell (nothing written) → None."""
    if not cell:
        return None
    out: dict[str, Value] = {}
    for item in cell.split(";"):
        name, _, text = item.partition("=")
        if name not in kinds:
            raise ReplayError(
                f"{where}: {PARAMS_COLUMN} entry {item!r}: the app has no parameter {name!r} "
                f"(parameters: {', '.join(kinds) or 'none'})"
            )
        try:
            out[name] = _parser(kinds[name])(text)
        except ValueError:
            raise ReplayError(
                f"{where}: {PARAMS_COLUMN} entry {item!r}: not a {kinds[name].value}"
            ) from None
    return out


def _read_trace(path: Path, points: Sequence[Point], params: Mapping[str, IecType]) -> _Trace:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "t":
                raise ReplayError(f"{path}: not a vplc trace (first column must be 't')")
            # Traces from older versions end before one or both of these columns.
            extra_cols = [c for c in header[-2:] if c in (QUALITY_COLUMN, PARAMS_COLUMN)]
            n_extra = len(extra_cols)
            q_at = header.index(QUALITY_COLUMN) if QUALITY_COLUMN in extra_cols else None
            c_at = header.index(PARAMS_COLUMN) if PARAMS_COLUMN in extra_cols else None
            columns = header[1 : len(header) - n_extra]
            names = {p.name for p in points}
            missing, extra = sorted(names - set(columns)), sorted(set(columns) - names)
            if missing or extra:
                raise ReplayError(
                    f"{path}: trace columns do not match the app's points: "
                    f"missing {missing or 'none'}, unknown {extra or 'none'}"
                )
            by_name = {p.name: p for p in points}
            inputs = {p.name for p in points if p.direction is Direction.IN}
            parsers = [_parser(by_name[c].type) for c in columns]
            trace = _Trace([], [], columns, [], [])
            for line, rec in enumerate(reader, start=2):
                if len(rec) != len(header):
                    raise ReplayError(f"{path}:{line}: {len(rec)} fields, header has {len(header)}")
                values = rec[1 : len(rec) - n_extra]
                try:
                    t_ns = round(float(rec[0]) * 1e9)
                    trace.rows.append([f(v) for f, v in zip(parsers, values, strict=True)])
                except ValueError as exc:
                    raise ReplayError(f"{path}:{line}: {exc}") from None
                where = f"{path}:{line}"
                trace.qualities.append(_qualities(rec[q_at] if q_at else "", inputs, where))
                trace.changes.append(_changes(rec[c_at] if c_at else "", params, where))
                if trace.times_ns and t_ns < trace.times_ns[-1]:
                    raise ReplayError(f"{path}:{line}: time goes backwards")
                trace.times_ns.append(t_ns)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from None
    if not trace.rows:
        raise ReplayError(f"{path}: the trace has no rows")
    return trace


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
    kinds = {name: p.spec.type for name, p in app.parameters.items()}
    recorded = _read_trace(Path(trace), app.image.points, kinds)
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
