"""Run a scenario in virtual time: apply the timeline, sample the assertions every cycle."""

from __future__ import annotations

import functools
import math
import operator
import time
from pathlib import Path
from typing import Any, TextIO

from hal import IecType
from runtime.bench._powercut import BenchRetain, power_cut, uses_power_cut
from runtime.bench._prepare import Compiled, Prepared, prepare
from runtime.bench._result import AssertionResult, ScenarioResult
from runtime.bench._sampler import Sampler
from runtime.bench._schema import Event, Scenario, load_scenario
from runtime.core._clock import VirtualClock
from runtime.core._engine import RuntimeState, ScanEngine, StopScan
from runtime.core._loader import LoadedApp
from runtime.core._task import Task
from runtime.host._runtime import Runtime
from runtime.host._trace import TraceRecorder

__all__ = ["AssertionResult", "ScenarioResult", "run_scenario"]

_CHUNK_NS = 60 * 10**9  # run in slices of simulated time so progress can be shown
_isfinite = math.isfinite
_value = operator.attrgetter("value")
_FAULT = RuntimeState.FAULT


class _DivergedError(StopScan):
    """An input went NaN/inf: the plant model blew up; stop rather than run on garbage.

    A StopScan: the one exception the engine lets out of a cycle hook.
    """


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
    prep = prepare(scenario)
    out_dir = Path(out) if out is not None else None
    keep = out_dir is not None if record is None else record
    trace = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        app = prep.app
        trace = _Trace(out_dir / "trace.csv", app.image, threaded=False, parameters=app.parameters)
    try:
        batches = out_dir / "batches" if out_dir is not None else None
        result = _Run(prep, keep, trace, batches).execute(progress)
    finally:
        if trace is not None:
            trace.close()
    if trace is not None and trace.error:
        result.output_errors.append(f"{trace.path}: write failed: {trace.error}")
    if out_dir is not None:
        from runtime.bench._report import write_report  # matplotlib only when reporting

        result.report_dir = out_dir
        try:
            write_report(result, out_dir)
        except OSError as exc:  # the verdict stands; the report is what is missing
            result.output_errors.append(
                f"report {out_dir}: write failed: {exc.strerror or exc}"
                + (f" ({exc.filename})" if exc.filename else "")
            )
    return result


class _Run:
    """One scenario run; the engine and app change when a power cut restarts the runtime."""

    def __init__(
        self,
        prep: Prepared,
        keep: bool,
        trace: TraceRecorder | None,
        batch_dir: Path | None = None,
    ) -> None:
        sc = prep.scenario
        self.prep, self.keep, self.trace = prep, keep, trace
        self.result = ScenarioResult(sc.title, f"{prep.app.name} {prep.app.version}", sc.duration)
        self.samplers = [Sampler(c, sc.duration) for c in prep.checks]
        self.events = list(prep.events)
        self.offset_ns = 0  # scenario time of the current engine's app time 0
        self.fault_seen = False
        self.store: BenchRetain | None = None
        if uses_power_cut(sc):  # the real retain file is what a power cut leaves behind
            self.store = BenchRetain(prep.app)
            self.store.load(mode="warm")
        self._bind(prep.app, prep.checks)
        # The one runtime assembly (runtime.host): samplers, then the trace, then retain.
        # An app with gmp.batch leaves its electronic batch record in the report (batches/).
        self.runtime = Runtime(
            prep.app,
            clock=VirtualClock(),
            hooks=[self.hook],
            trace=trace,
            retain=self.store,
            batch_dir=batch_dir,
        )
        self.engine = self.runtime.engine

    def _bind(self, app: LoadedApp, checks: list[Compiled]) -> None:
        """Samplers, watched inputs and the trace follow ``app`` (a new one after a power cut)."""
        self.app = app
        for s, c in zip(self.samplers, checks, strict=True):
            s.c = c
        self.recorded = {n: g for c in checks for n, g in c.signals.items()} if self.keep else {}
        for n in self.recorded:
            self.result.series.setdefault(n, [])
        # Drivers that vouch for finite readings (the simulator raises instead) need no check.
        vouched = {n for n, d in app.drivers.items() if getattr(d, "finite_inputs", False)}
        self.watch = [
            p
            for p in app.image.inputs
            if p.type in (IecType.REAL, IecType.LREAL) and p.spec.driver not in vouched
        ]
        self.live = [s for s in self.samplers if not s.done]  # at_end checks sample once
        if isinstance(self.trace, _Trace):
            self.trace.restart(app, self.offset_ns)

    def hook(self, task: Task, now_ns: int) -> None:
        t = (now_ns + self.offset_ns) / 1e9
        self.prep.clock_s[0] = t
        # One C-level sum per cycle: NaN or ±inf in any input makes it non-finite.
        if self.watch and not _isfinite(sum(map(_value, self.watch))):
            for p in self.watch:  # which one (finite values can also overflow the sum)
                if not _isfinite(p.value):
                    raise _DivergedError(
                        f"input {p.name} is {p.value!r} at t={t:.3f} s: the plant diverged"
                    )
        engine = self.engine
        if engine.state is _FAULT and not self.fault_seen:
            self.fault_seen = True
            self.result.failures.append(
                f"the runtime entered FAULT at t={t:.3f} s: {engine.fault_reason}"
            )
        for s in self.live:
            s.sample(t)
        if self.keep:
            self.result.times.append(t)
            series = self.result.series
            for n, g in self.recorded.items():
                series[n].append(g())

    @property
    def now_ns(self) -> int:
        return self.engine.now_ns + self.offset_ns

    def power_cut(self, ev: Event) -> str:
        """Replace the runtime (see _powercut); later events and assertions see the new app."""
        assert ev.power_cut is not None and self.store is not None
        cut_ns = round(ev.at * 1e9) - self.offset_ns
        new = power_cut(
            self.prep.scenario,
            self.app,
            self.store,
            ev.power_cut,
            cut_ns,
            self.events,
            [s.c for s in self.samplers],
            lambda: self.prep.clock_s[0],
            hooks=[self.hook],
            trace=self.trace,
        )
        self.events, self.store = new.events, new.store
        self.offset_ns += cut_ns + round(ev.power_cut.off_for * 1e9)
        self._bind(new.app, new.checks)
        self.runtime, self.engine = new.runtime, new.runtime.engine
        return new.summary

    def execute(self, progress: TextIO | None) -> ScenarioResult:
        sc, result = self.prep.scenario, self.result
        show = _Progress(progress, sc.title, sc.duration)
        wall0 = time.perf_counter()
        self.engine.start()
        try:
            try:
                self._loop(round(sc.duration * 1e9), show)
            except _DivergedError as exc:
                result.error = str(exc)
            # End-of-run checks see the app as it ended, before shutdown drives outputs safe.
            self.prep.clock_s[0] = self.now_ns / 1e9
            result.assertions = [s.finish(self.now_ns / 1e9) for s in self.samplers]
        finally:
            self.runtime.close()  # the trace too: run_scenario's own close is then a no-op
            if self.runtime.batches is not None:
                result.output_errors += self.runtime.batches.errors
            if self.store is not None:
                self.store.discard()
        result.wall_s = time.perf_counter() - wall0
        result.sim_s = self.now_ns / 1e9
        show.done(result.sim_s, result.wall_s)
        if result.error:
            result.failures.insert(0, result.error)
        result.failures += [a.message for a in result.assertions if not a.passed]
        result.passed = not result.failures
        return result

    def _loop(self, end_ns: int, show: _Progress) -> None:
        """Run to each event and to the end (scenario time), in slices to report progress."""
        now_ns = 0
        while True:
            events = self.events
            nxt = round(events[0][0].at * 1e9) if events else end_ns
            target = min(nxt, now_ns + _CHUNK_NS, end_ns)
            self.engine.run_until(target - self.offset_ns)
            now_ns = target
            show.update(self.now_ns / 1e9)
            while self.events and round(self.events[0][0].at * 1e9) <= now_ns:
                ev, action = self.events.pop(0)
                if ev.power_cut is not None:
                    action = functools.partial(_cut, self, ev)
                _apply(self.engine, ev, action, self.result)
            if now_ns >= end_ns:
                return


def _cut(run: _Run, ev: Event, _engine: ScanEngine) -> str:
    return run.power_cut(ev)


class _Trace(TraceRecorder):
    """The CSV trace in scenario time, continued on the new image after a power cut."""

    _offset_ns = 0

    def restart(self, app: LoadedApp, offset_ns: int) -> None:
        self.rebind(app.image, app.parameters)
        self._offset_ns = offset_ns

    def __call__(self, task: Task, now_ns: int) -> None:
        super().__call__(task, now_ns + self._offset_ns)


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
