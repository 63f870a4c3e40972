"""Online change: load a new app version off the scan thread, migrate state, swap between cycles.

Protocol. ``prepare_change`` (any thread but the scan's) validates the new manifest against the
running one, imports the new logic under a private package and builds its programs over the
running process image and a copy of the parameters; a dry run of the state transfer refuses
anything that cannot work. ``apply_change`` runs ``PreparedChange.apply`` on the scan thread in
the slack after a cycle: it copies the state into the new instances along paths paired at
prepare, then rebinds each task's program list (O(tasks)). Until every task has run one cycle
of the new version the change is on trial: if a new program raises, the old programs (not run
since the swap, so their state is the pre-swap state) take over again, outputs are put back to
their pre-swap values and the old version re-runs that same cycle, so what is published is what
the old version computes; the runtime stays in RUN and the report says why.

State migration. Variables match by instance path (``main.count``, ``main.pid.I``,
``main.alarms[2].Q``); new ones keep their initial value, removed ones are dropped; a changed
type is converted only when lossless (BOOL→INT, INT→REAL, integral REAL→INT, list↔tuple), any
other change refuses the whole change. An app may define, in the module of any of its programs,
``migrate(old_version: str, state: dict[str, Any]) -> dict[str, Any]``: it receives the old
state as instance path → value (a copy) and returns the state for the new version by path; the
result then goes through the same matching and conversion. It runs once at prepare (dry run)
and once at the swap on the state of that cycle, so it must be fast and pure; if it raises,
the change is refused and the old version keeps running.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import structlog

from runtime._engine import RuntimeState, ScanEngine
from runtime._loader import LoadedApp, unload_app
from runtime._program import Parameter
from runtime.manifest import ManifestError
from runtime.state import _tree
from runtime.state._build import Migrate, build, read_manifest
from runtime.state._compat import incompatibilities
from runtime.state._oncycle import between_cycles
from runtime.state._pacing import Pacer
from runtime.state._trial import ChangeReport, Trial
from runtime.state.retain import RetainError, retained_leaves

log = structlog.get_logger("vplc.online_change")


class OnlineChangeError(Exception):
    """A refused online change; the running version is untouched. ``report`` says what/why."""

    def __init__(self, report: ChangeReport) -> None:
        self.report = report
        super().__init__(
            f"online change of {report.app} {report.old_version} → {report.new_version} "
            f"refused: {report.reason}"
        )


class PreparedChange:
    """A new version built over the running image, checked, waiting for ``apply``."""

    def __init__(
        self,
        *,
        old_app: LoadedApp,
        new_app: LoadedApp,
        migrate: Migrate | None,
        report: ChangeReport,
    ) -> None:
        self.old_app = old_app
        self.new_app = new_app
        self.migrate = migrate
        self.report = report
        self.applied = False
        self._new = _tree.leaves(new_app.programs)  # nobody runs these yet: safe off-thread
        self._old: dict[str, _tree.Accessor] = {}
        self._pairs: list[_tree.Pair] = []

    def read_old(self) -> dict[str, Any]:
        """Walk the running version's instances and read their state; between cycles only."""
        self._old = _tree.leaves(self.old_app.programs)
        return _tree.read(self._old)

    def precompute(self) -> None:
        """Pair old and new paths off the scan thread, so the swap only copies values."""
        if self.migrate is None:
            self._pairs = _tree.pair_up(self._old, self._new)

    def transfer(
        self, source: dict[str, Any]
    ) -> tuple[list[tuple[object, str, Any]], _tree.StateDiff]:
        """Migrate old state and plan it onto the new instances (nothing is written)."""
        report = self.report
        if self.migrate is not None:
            try:
                result = self.migrate(report.old_version, copy.deepcopy(source))
            except Exception as exc:
                raise _refuse(report, f"migrate() of the new version raised {exc!r}") from exc
            if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
                raise _refuse(report, "migrate() must return a dict of instance path → value")
            source = result
        assignments, diff = _tree.plan(source, self._new)
        if diff.refused:
            raise _refuse(report, "incompatible state: " + "; ".join(diff.refused))
        return assignments, diff

    def _parameter_values(self) -> list[tuple[Parameter, Any]]:
        out = []
        for name, param in self.new_app.parameters.items():
            old = self.old_app.parameters.get(name)
            if old is not None:
                try:
                    out.append((param, param.spec.check(old.value)))
                except (TypeError, ValueError) as exc:
                    raise _refuse(self.report, f"running value does not fit: {exc}") from None
        return out

    def apply(self, engine: ScanEngine) -> ChangeReport:
        """Swap the new version in; run this on the scan thread between cycles."""
        try:
            return self._apply(engine)
        except OnlineChangeError:
            if not self.applied:
                self.applied = True  # a refused change is spent: prepare again to retry
                unload_app(self.new_app)
            raise

    def _apply(self, engine: ScanEngine) -> ChangeReport:
        report = self.report
        if engine.state is RuntimeState.FAULT:
            raise _refuse(report, f"the runtime is in FAULT ({engine.fault_reason}); reset first")
        if self.applied or engine.app is not self.old_app:
            # A fresh report: the one of a change that did go in must keep its outcome.
            again = ChangeReport(report.app, report.old_version, report.new_version)
            raise _refuse(again, "stale: the running version changed since it was prepared")
        if engine.program_guard is not None:
            raise _refuse(report, "the previous online change is still in its first cycle")
        t0 = time.perf_counter_ns()
        params = self._parameter_values()
        if self.migrate is None:  # the common case: values copied along precomputed pairs
            diff = _tree.copy_pairs(self._pairs)
            if diff.refused:
                raise _refuse(report, "incompatible state: " + "; ".join(diff.refused))
            diff.new = [p for p in self._new if p not in self._old]
            diff.dropped = [p for p in self._old if p not in self._new]
        else:  # the app's migrate() sees the whole state as of this very cycle
            assignments, diff = self.transfer(self.read_old())
            _tree.assign(assignments)
        saved_outputs = [(p, p.value) for p in engine.image.outputs]
        for param, value in params:
            param.value = value
        old_programs = {t.name: t.programs for t in engine.tasks}
        programs = self.new_app.programs
        by_task = {
            t.name: [(n, programs[n]) for n in t.programs] for t in self.new_app.manifest.tasks
        }
        for task in engine.tasks:  # the swap proper: O(tasks) pointer stores
            task.set_programs(by_task[task.name])
        engine.app = self.new_app
        trial = Trial(
            engine,
            old_app=self.old_app,
            new_app=self.new_app,
            old_programs=old_programs,
            saved_outputs=saved_outputs,
            report=report,
        )
        trial.install()
        self.applied = True
        report.switch_ns = time.perf_counter_ns() - t0
        report.swap_app_ns = engine.now_ns
        report.status = "trial"
        _fill(report, diff)
        log.info(
            "online_change_applied",
            app=report.app,
            old_version=report.old_version,
            new_version=report.new_version,
            migrated=report.migrated,
            switch_us=report.switch_ns // 1000,
            **report.counts,
        )
        return report


def prepare_change(engine: ScanEngine, new_app_dir: Path | str, *, seed: int = 0) -> PreparedChange:
    """Load and check a new version of the running app; call it off the scan thread.

    The new programs are built over the running process image (no new drivers). Refused with
    OnlineChangeError when: the runtime is in FAULT, the new manifest is invalid or changes
    points/drivers/tasks' schedule, a program cannot be built, a retain path is unknown, the
    app's ``migrate(old_version, state)`` raises, or a state value cannot be converted safely.
    """
    t0 = time.perf_counter()
    with Pacer(engine) as pacer:
        prepared = _prepare(engine, Path(new_app_dir).resolve(), seed, pacer)
    prepared.report.prepare_s = time.perf_counter() - t0
    return prepared


def _prepare(engine: ScanEngine, app_dir: Path, seed: int, pacer: Pacer) -> PreparedChange:
    old = engine.app
    report = ChangeReport(app=old.name, old_version=old.version, new_version="?")
    if engine.state is RuntimeState.FAULT:
        raise _refuse(report, f"the runtime is in FAULT ({engine.fault_reason}); reset first")
    pacer.step()
    try:
        manifest = read_manifest(app_dir)
    except ManifestError as exc:
        raise _refuse(report, f"the new version is invalid: {exc}") from None
    report.new_version = manifest.version
    problems = incompatibilities(old.manifest, manifest)
    if problems:
        raise _refuse(report, " | ".join(problems))
    pacer.step()
    try:
        new, migrate = build(engine, manifest, app_dir, seed=seed, pacer=pacer)
    except Exception as exc:
        raise _refuse(report, f"the new version cannot be built: {exc}") from None
    report.migrated = migrate is not None
    prepared = PreparedChange(old_app=old, new_app=new, migrate=migrate, report=report)
    try:
        retained_leaves(new)
        prepared._parameter_values()
        # A dry run on the state of now: a migration or conversion that fails is refused
        # here, off the scan thread; apply repeats it on the state at the swap.
        source = between_cycles(engine, lambda e: prepared.read_old())
        pacer.step()
        _, diff = prepared.transfer(source)
        pacer.step()
        prepared.precompute()
    except (RetainError, OnlineChangeError) as exc:
        unload_app(new)
        if isinstance(exc, OnlineChangeError):
            raise
        raise _refuse(report, str(exc)) from None
    _fill(report, diff)
    return prepared


def apply_change(
    engine: ScanEngine, prepared: PreparedChange, *, timeout: float | None = None
) -> ChangeReport:
    """Apply on the scan thread right after a cycle of the fastest task, in its slack.

    A command submitted while the scan sleeps would run when it wakes for the next release
    and delay that cycle by the swap time; handed over by a cycle hook instead, it runs as
    soon as that cycle ends. Without a scan thread it is applied directly.
    """
    return between_cycles(engine, prepared.apply, timeout)


def change_online(engine: ScanEngine, new_app_dir: Path | str, *, seed: int = 0) -> ChangeReport:
    """prepare_change + apply_change; the report's ``wait()`` gives the committed outcome."""
    return apply_change(engine, prepare_change(engine, new_app_dir, seed=seed))


def _fill(report: ChangeReport, diff: _tree.StateDiff) -> None:
    report.counts = diff.counts()
    report.converted = diff.converted
    report.new = diff.new
    report.dropped = diff.dropped


def _refuse(report: ChangeReport, reason: str) -> OnlineChangeError:
    report.status = "refused"
    report.reason = reason
    report.done.set()
    log.warning(
        "online_change_refused",
        app=report.app,
        old_version=report.old_version,
        new_version=report.new_version,
        reason=reason,
    )
    return OnlineChangeError(report)
