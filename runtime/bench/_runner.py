"""Run a scenario in virtual time: apply the timeline, sample the assertions every cycle."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hal import IecType
from runtime._clock import VirtualClock
from runtime._engine import RuntimeState, ScanEngine, Task
from runtime._trace import TraceRecorder
from runtime.bench._prepare import Compiled, Prepared, prepare
from runtime.bench._schema import Scenario, load_scenario

__all__ = ["AssertionResult", "ScenarioResult", "run_scenario"]

_CHUNK_NS = 60 * 10**9  # run in slices of simulated time so progress can be shown
_EPS = 1e-9


@dataclass
class AssertionResult:
    """The verdict of one assertion; ``t``/``values`` are where it failed (or held)."""

    label: str
    kind: str
    passed: bool
    message: str = ""
    t: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    window: tuple[float, float | None] | None = None
    signals: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """Everything a report needs; ``passed`` and ``failures`` are what tests look at."""

    scenario: str
    app: str
    duration_s: float
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    assertions: list[AssertionResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    sim_s: float = 0.0
    wall_s: float = 0.0
    times: list[float] = field(default_factory=list)
    series: dict[str, list[Any]] = field(default_factory=dict)
    report_dir: Path | None = None

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second."""
        return self.sim_s / self.wall_s if self.wall_s > 0 else 0.0


class _DivergedError(Exception):
    """An input went NaN/inf: the plant model blew up; stop rather than run on garbage."""


class _Sampler:
    """Per-assertion state machine fed once per cycle of the fastest task."""

    def __init__(self, c: Compiled, duration: float) -> None:
        self.c = c
        spec = c.spec
        self.kind = spec.kind
        self.start = spec.at if spec.at is not None else spec.from_
        end = spec.window_end
        self.stop = duration if end is None else end
        self.samples = self.failed = 0
        self.t: float | None = None  # first failure (always/never/at) or success (eventually)
        self.values: dict[str, Any] = {}
        self.done = self.kind == "at_end"

    def sample(self, t: float) -> None:
        if self.done or t < self.start - _EPS or t > self.stop + _EPS:
            return
        ok = self._eval()
        self.samples += 1
        if self.kind == "eventually":
            if ok:
                self._note(t)
                self.done = True
            return
        if self.kind == "at":
            self.done = True
            self._note(t)  # the plot marks where the value was taken, pass or fail
        if not ok:
            self.failed += 1
            if self.t is None:
                self._note(t)

    def _eval(self) -> bool:
        try:
            ok = self.c.test()
        except ArithmeticError:
            ok = False  # e.g. a division by zero: the condition cannot be shown to hold
        return (not ok) if self.kind == "never" else ok

    def _note(self, t: float) -> None:
        self.t = t
        self.values = {n: g() for n, g in self.c.signals.items()}

    def finish(self, t_end: float) -> AssertionResult:
        spec, c = self.c.spec, self.c
        if self.kind == "at_end":
            self.samples = 1
            self.failed = 0 if self._eval() else 1
            self._note(t_end)
        if self.kind == "eventually":
            passed = self.t is not None
        else:
            passed = self.samples > 0 and self.failed == 0
        res = AssertionResult(spec.label(), self.kind, passed, t=self.t, values=self.values)
        res.signals = list(c.signals)
        if self.kind in ("always", "never", "eventually"):
            res.window = (self.start, self.stop)
        if not passed:
            res.message = self._message(t_end)
        return res

    def _message(self, t_end: float) -> str:
        label = self.c.spec.label()
        vals = ", ".join(f"{n} = {_fmt(v)}" for n, v in self.values.items())
        if self.samples == 0:
            return f"{label}: never sampled (no cycle in t=[{self.start:g}, {self.stop:g}] s)"
        if self.kind == "eventually":
            last = ", ".join(f"{n} = {_fmt(g())}" for n, g in self.c.signals.items())
            return (
                f"{label}: not true at any time in t=[{self.start:g}, {min(self.stop, t_end):g}]"
                f" s (values at the end of the window or run: {last})"
            )
        bound = f"bound: never {self.c.text}" if self.kind == "never" else f"bound: {self.c.text}"
        extra = f"; {self.failed} of {self.samples} samples failed" if self.samples > 1 else ""
        return f"{label}: failed at t={self.t:.3f} s: {vals} ({bound}){extra}"


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v)


def run_scenario(
    scenario: Scenario | Path | str,
    *,
    out: Path | str | None = None,
    progress: TextIO | None = None,
    record: bool | None = None,
) -> ScenarioResult:
    """Run ``scenario`` (a model or a YAML path) in virtual time; raise ScenarioError if invalid.

    ``out`` writes the report directory (JSON, JUnit XML, CSV trace, PNG plots);
    ``progress`` is a stream (e.g. sys.stderr) for progress lines; ``record`` keeps the
    asserted signals' time series in the result (default: only when writing a report).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    prep = prepare(scenario, engine_factory=lambda app: ScanEngine(app, clock=VirtualClock()))
    out_dir = Path(out) if out is not None else None
    keep = out_dir is not None if record is None else record
    trace = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        trace = TraceRecorder(out_dir / "trace.csv", prep.app.image, threaded=False)
        prep.engine.fastest.hooks.append(trace)
    try:
        result = _execute(prep, keep, progress)
    finally:
        if trace is not None:
            trace.close()
    if out_dir is not None:
        from runtime.bench._report import write_report  # matplotlib only when reporting

        result.report_dir = out_dir
        write_report(result, out_dir)
    return result


def _execute(prep: Prepared, keep: bool, progress: TextIO | None) -> ScenarioResult:
    sc, app, engine = prep.scenario, prep.app, prep.engine
    result = ScenarioResult(sc.title, f"{app.name} {app.version}", sc.duration)
    samplers = [_Sampler(c, sc.duration) for c in prep.checks]
    recorded = {n: g for c in prep.checks for n, g in c.signals.items()} if keep else {}
    result.series = {n: [] for n in recorded}
    watch = [p for p in app.image.inputs if p.type in (IecType.REAL, IecType.LREAL)]
    fault_seen = [False]

    def hook(task: Task, now_ns: int) -> None:
        t = now_ns / 1e9
        prep.clock_s[0] = t
        for p in watch:
            if not math.isfinite(p.value):
                raise _DivergedError(
                    f"input {p.name} is {p.value!r} at t={t:.3f} s: the plant diverged"
                )
        if engine.state is RuntimeState.FAULT and not fault_seen[0]:
            fault_seen[0] = True
            result.failures.append(
                f"the runtime entered FAULT at t={t:.3f} s: {engine.fault_reason}"
            )
        for s in samplers:
            s.sample(t)
        if keep:
            result.times.append(t)
            for n, g in recorded.items():
                result.series[n].append(g())

    engine.fastest.hooks.append(hook)
    show = _Progress(progress, sc.title, sc.duration)
    end_ns = round(sc.duration * 1e9)
    events = list(prep.events)
    wall0 = time.perf_counter()
    engine.start()
    try:
        try:
            _loop(engine, events, end_ns, show, result)
        except _DivergedError as exc:
            result.error = str(exc)
        # End-of-run checks see the app as it ended, before shutdown drives outputs safe.
        prep.clock_s[0] = engine.now_ns / 1e9
        result.assertions = [s.finish(engine.now_ns / 1e9) for s in samplers]
    finally:
        engine.close()
    result.wall_s = time.perf_counter() - wall0
    result.sim_s = engine.now_ns / 1e9
    show.done(result.sim_s, result.wall_s)
    if result.error:
        result.failures.insert(0, result.error)
    result.failures += [a.message for a in result.assertions if not a.passed]
    result.passed = not result.failures
    return result


def _loop(
    engine: ScanEngine, events: list[Any], end_ns: int, show: _Progress, result: ScenarioResult
) -> None:
    """Run to each event and to the end, in slices so progress can be reported."""
    now_ns = 0
    while True:
        nxt = round(events[0][0].at * 1e9) if events else end_ns
        target = min(nxt, now_ns + _CHUNK_NS, end_ns)
        engine.run_until(target)
        now_ns = target
        show.update(engine.now_ns / 1e9)
        while events and round(events[0][0].at * 1e9) <= now_ns:
            ev, action = events.pop(0)
            _apply(engine, ev, action, result)
        if now_ns >= end_ns:
            return


def _apply(engine: ScanEngine, ev: Any, action: Any, result: ScenarioResult) -> None:
    entry: dict[str, Any] = {"at": ev.at, "action": ev.action, "note": ev.note}
    try:
        entry["result"] = action(engine)
        entry["ok"] = True
    except Exception as exc:  # a refused command is a scenario failure, not a crash
        entry["result"] = f"{type(exc).__name__}: {exc}"
        entry["ok"] = False
        result.failures.append(f"event at t={ev.at:g} s ({ev.action}) failed: {exc}")
    result.events.append(entry)


class _Progress:
    """Simulated time and speed on one line (a TTY) or a plain line every few seconds."""

    def __init__(self, stream: TextIO | None, title: str, duration: float) -> None:
        self.stream, self.title, self.duration = stream, title, duration
        self.tty = bool(stream is not None and stream.isatty())
        self.t0 = self.last = time.perf_counter()

    def update(self, sim_s: float) -> None:
        now = time.perf_counter()
        if self.stream is None or now - self.last < (0.25 if self.tty else 2.0):
            return
        self.last = now
        self._line(sim_s, now - self.t0, end="\r" if self.tty else "\n")

    def done(self, sim_s: float, wall_s: float) -> None:
        if self.stream is not None:
            self._line(sim_s, wall_s, end="\n")

    def _line(self, sim_s: float, wall_s: float, end: str) -> None:
        assert self.stream is not None
        speed = sim_s / wall_s if wall_s > 0 else 0.0
        pct = 100.0 * sim_s / self.duration
        self.stream.write(
            f"[bench] {self.title}: t = {sim_s:,.0f} / {self.duration:,.0f} s ({pct:3.0f} %), "
            f"{speed:,.0f}x real time{end}"
        )
        self.stream.flush()
