"""Online change: load a new app version off the scan thread, merge state, swap between cycles.

Protocol. ``prepare_change`` (any thread but the scan's) validates the new manifest against the
running one, imports the new logic under a private package and builds its programs over the
running process image (plus any points the new version adds) and a copy of the parameters; a
dry run of the state merge refuses anything that cannot work. ``apply_change`` runs
``PreparedChange.apply`` on the scan thread in the slack after a cycle: it merges the state
into the new instances along paths paired at prepare, rebinds drivers whose points changed,
retimes tasks whose period changed and rebinds each task's program list. Until every task has
run one cycle of the new version the change is on trial: if a new program raises, the old
programs (not run since the swap, so their state is the pre-swap state) take over again, with
the old points, periods and output values, and the old version re-runs that same cycle; the
runtime stays in RUN and the report says why.

State. Every variable and parameter goes through the three-way merge of ``_merge``: old
initial value, running value, new initial value (a gain the new version changes is taken
unless an operator or the logic changed it at run time: then a conflict, decided by
``prefer``; left open it keeps the running value, and ``strict`` refuses it). A changed type is
converted only when lossless; otherwise the change is refused unless the app defines, in the
module of any of its programs, ``migrate(old_version: str, state: dict[str, Any]) ->
dict[str, Any]`` (old state by instance path, a copy; returns the state for the new version).
It runs once at prepare (dry run) and once at the swap on the state of that cycle, so it must
be fast and pure; if it raises, the change is refused and the old version keeps running.

What an online change cannot do (it says so, naming the reason): change drivers, add or
remove tasks, change a task's priority or which task is the fastest, the realtime settings,
a kept point's declaration, or add/remove points on a driver that cannot ``rebind`` live.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from runtime.core._engine import RuntimeState, ScanEngine
from runtime.core._loader import LoadedApp, unload_app
from runtime.core.manifest import ManifestError, TaskSpec
from runtime.state._build import build, read_manifest
from runtime.state._compat import incompatibilities, retimed
from runtime.state._merge import Plan, Prefer, brief
from runtime.state._oncycle import between_cycles
from runtime.state._pacing import Pacer
from runtime.state._points import PointChange, plan_points
from runtime.state._transfer import Transfer, TransferError, parameter_values
from runtime.state._trial import ChangeReport, Trial, active_trial, plan_reason
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
        report: ChangeReport,
        transfer: Transfer,
        points: PointChange | None = None,
        timing: dict[str, tuple[TaskSpec, TaskSpec]] | None = None,
    ) -> None:
        self.old_app = old_app
        self.new_app = new_app
        self.report = report
        self.transfer = transfer
        self.points = points
        self.timing = timing or {}
        self.applied = False
        self.plan: Plan | None = None  # the merge plan as applied at the swap

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
        if active_trial(engine) is not None:
            raise _refuse(report, "the previous online change is still in its first cycle")
        t0 = time.perf_counter_ns()
        try:  # the state of this very cycle, merged into the new instances
            plan = self.transfer.apply()
        except TransferError as exc:
            raise _refuse(report, str(exc)) from None
        if not plan.ok:
            raise _refuse(report, plan_reason(plan), plan)
        saved_outputs = [(p, p.value) for p in engine.image.outputs]
        for name, value in parameter_values(plan).items():
            self.new_app.parameters[name].value = value
        if self.points is not None:
            self.points.switch(engine, engine.drivers)
        old_programs = {t.name: t.programs for t in engine.tasks}
        programs = self.new_app.programs
        by_task = {
            t.name: [(n, programs[n]) for n in t.programs] for t in self.new_app.manifest.tasks
        }
        for task in engine.tasks:  # the swap proper: O(tasks) pointer stores
            if task.name in self.timing:
                task.retime(self.timing[task.name][1])
            task.set_programs(by_task[task.name])
        engine.app = self.new_app
        trial = Trial(
            engine,
            old_app=self.old_app,
            new_app=self.new_app,
            old_programs=old_programs,
            saved_outputs=saved_outputs,
            report=report,
            points=self.points,
            old_timing={n: o for n, (o, _) in self.timing.items()},
        )
        trial.install()
        self.applied = True
        self.plan = plan
        report.switch_ns = time.perf_counter_ns() - t0
        report.swap_app_ns = engine.now_ns
        report.status = "trial"
        return report

    def announce(self) -> None:
        """Fill the report with the plan and log it: after the swap, off the scan thread (a
        plan of a thousand variables costs milliseconds to summarise and render)."""
        report = self.report
        if self.plan is None:
            return
        report.fill(self.plan)
        log.info(
            "online_change_applied",
            app=report.app,
            old_version=report.old_version,
            new_version=report.new_version,
            migrated=report.migrated,
            switch_us=report.switch_ns // 1000,
            points_added=report.points_added,
            points_removed=report.points_removed,
            retimed=report.retimed,
            plan=brief(report.plan),
        )


def prepare_change(
    engine: ScanEngine,
    new_app_dir: Path | str,
    *,
    seed: int = 0,
    prefer: Prefer = None,
    strict: bool = False,
) -> PreparedChange:
    """Load and check a new version of the running app; call it off the scan thread.

    The new programs are built over the running process image (new points get new cells; no
    new drivers). ``prefer`` ("new" | "running" | None) decides conflicts of the state merge,
    ``strict`` refuses a change that leaves one unresolved. Refused with OnlineChangeError
    when: the runtime is in FAULT, the new manifest is invalid or changes what cannot change
    online (see the module's docstring), a program cannot be built, a retain path is
    unknown, the app's ``migrate(old_version, state)`` raises, or the merge plan refuses a
    variable (a lossy type change, a parameter outside its new range, a strict conflict).
    """
    t0 = time.perf_counter()
    with Pacer(engine) as pacer:
        prepared = _prepare(engine, Path(new_app_dir).resolve(), seed, pacer, prefer, strict)
    prepared.report.prepare_s = time.perf_counter() - t0
    return prepared


def _prepare(
    engine: ScanEngine, app_dir: Path, seed: int, pacer: Pacer, prefer: Prefer, strict: bool
) -> PreparedChange:
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
    points, point_problems = plan_points(engine, old.manifest, manifest)
    problems += [p + "; an online change cannot do that, a restart can" for p in point_problems]
    if problems:
        raise _refuse(report, " | ".join(problems))
    pacer.step()
    image = points.new_image if points is not None else engine.image
    try:
        new = build(engine, manifest, app_dir, seed=seed, pacer=pacer, image=image)
    except Exception as exc:
        raise _refuse(report, f"the new version cannot be built: {exc}") from None
    if points is not None:
        report.points_added, report.points_removed = list(points.added), list(points.removed)
    transfer = Transfer(old, new, prefer=prefer, strict=strict)
    report.migrated = transfer.migrate is not None
    timing = retimed(old.manifest, manifest)
    report.retimed = {n: [o.period_ms, t.period_ms] for n, (o, t) in timing.items()}
    prepared = PreparedChange(
        old_app=old, new_app=new, report=report, transfer=transfer, points=points, timing=timing
    )
    try:
        retained_leaves(new)
        # A dry run on the state of now: a migration or a variable the merge refuses is
        # refused here, off the scan thread; apply repeats it on the state at the swap.
        source = between_cycles(engine, lambda e: transfer.read_old())
        pacer.step()
        plan = transfer.plan(source)
        if not plan.ok:
            raise _refuse(report, plan_reason(plan), plan)
        pacer.step()
        transfer.precompute(plan)
    except (RetainError, TransferError, OnlineChangeError) as exc:
        unload_app(new)
        if isinstance(exc, OnlineChangeError):
            raise
        raise _refuse(report, str(exc)) from None
    report.fill(plan)
    return prepared


def apply_change(
    engine: ScanEngine, prepared: PreparedChange, *, timeout: float | None = None
) -> ChangeReport:
    """Apply on the scan thread right after a cycle of the fastest task, in its slack.

    A command submitted while the scan sleeps would run when it wakes for the next release
    and delay that cycle by the swap time; handed over by a cycle hook instead, it runs as
    soon as that cycle ends. Without a scan thread it is applied directly.
    """
    report = between_cycles(engine, prepared.apply, timeout)
    prepared.announce()
    return report


def change_online(
    engine: ScanEngine,
    new_app_dir: Path | str,
    *,
    seed: int = 0,
    prefer: Prefer = None,
    strict: bool = False,
) -> ChangeReport:
    """prepare_change + apply_change; the report's ``wait()`` gives the committed outcome."""
    prepared = prepare_change(engine, new_app_dir, seed=seed, prefer=prefer, strict=strict)
    return apply_change(engine, prepared)


def _refuse(report: ChangeReport, reason: str, plan: Plan | None = None) -> OnlineChangeError:
    report.status = "refused"
    report.reason = reason
    if plan is not None:
        report.plan = plan.summary()
    report.done.set()
    log.warning(
        "online_change_refused",
        app=report.app,
        old_version=report.old_version,
        new_version=report.new_version,
        reason=reason,
        plan=brief(report.plan) if report.plan else None,
    )
    return OnlineChangeError(report)
