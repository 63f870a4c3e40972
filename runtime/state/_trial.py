"""The first cycles after an online change: commit once every task ran, fall back if one raised."""

from __future__ import annotations

import contextlib
import threading
import traceback
import weakref
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import structlog

from runtime.core._engine import Handled, RuntimeState, ScanEngine
from runtime.core._handles import Handle
from runtime.core._loader import LoadedApp, unload_app
from runtime.core._program import Program
from runtime.core._task import Task
from runtime.core.manifest import TaskSpec
from runtime.state._merge import Plan

if TYPE_CHECKING:
    from runtime.state._points import PointChange

log = structlog.get_logger("vplc.online_change")
_trials: weakref.WeakKeyDictionary[ScanEngine, Trial] = weakref.WeakKeyDictionary()


def active_trial(engine: ScanEngine) -> Trial | None:
    """The online change of ``engine`` still in its first cycles, if any."""
    return _trials.get(engine)


@dataclass
class ChangeReport:
    """The outcome of one online change; ``status`` moves trial → committed | fell_back.

    ``wait()`` blocks until the outcome is final (every task ran one cycle of the new version,
    or one raised and the old version took over again).
    """

    app: str
    old_version: str
    new_version: str
    status: str = "prepared"  # prepared | refused | trial | committed | fell_back
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    converted: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    migrated: bool = False
    plan: dict[str, Any] = field(default_factory=dict)  # the merge plan's summary
    points_added: list[str] = field(default_factory=list)
    points_removed: list[str] = field(default_factory=list)
    retimed: dict[str, list[float]] = field(default_factory=dict)  # task → [old, new] period ms
    prepare_s: float = 0.0
    switch_ns: int = 0  # time the scan thread spent in the swap (state transfer + pointers)
    swap_app_ns: int = 0  # app time of the last cycle before the swap
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def fill(self, plan: Plan) -> None:
        """Counts and paths from the merge plan (``matched``/``new`` as before the merge)."""
        counts = plan.counts()
        self.counts = counts | {
            "matched": counts["kept"] + counts["conflict"] + counts["migrated"],
            "new": counts["added"],
        }
        self.converted = [d.path for d in plan.decisions if "converted" in d.note]
        self.new = [d.path for d in plan.of("added") if not d.path.startswith("parameter:")]
        self.dropped = [d.path for d in plan.of("dropped") if not d.path.startswith("parameter:")]
        self.plan = plan.summary()

    def as_dict(self) -> dict[str, Any]:
        # asdict() would deep-copy the Event (and its lock); the report's data is plain.
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "done"}


def plan_reason(plan: Plan) -> str:
    """A refused plan as one line: how many variables, the first ten with their reasons."""
    problems = plan.problems()
    shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more" if problems[10:] else "")
    return f"the state merge refuses {len(problems)} variable(s): {shown}"


class Trial:
    """Installed by the swap; removes itself on commit or fallback (both on the scan thread)."""

    def __init__(
        self,
        engine: ScanEngine,
        *,
        old_app: LoadedApp,
        new_app: LoadedApp,
        old_programs: dict[str, list[tuple[str, Program]]],
        saved_outputs: list[tuple[Any, Any]],
        report: ChangeReport,
        points: PointChange | None = None,
        old_timing: dict[str, TaskSpec] | None = None,
    ) -> None:
        self.engine = engine
        self.old_app = old_app
        self.new_app = new_app
        self.old_programs = old_programs
        self.saved_outputs = saved_outputs
        self.report = report
        self.points = points
        self.old_timing = old_timing or {}
        self.pending = {t.name for t in engine.tasks}
        self.finished = False
        self._handles: list[Handle] = []

    def install(self) -> None:
        engine = self.engine
        self._handles = [engine.add_program_guard(self.guard)] + [
            engine.add_cycle_hook(self.after_cycle, task=t) for t in engine.tasks
        ]
        _trials[engine] = self

    def _uninstall(self) -> None:
        """Detach this trial's guard and hooks only: a handover's guard stays in place."""
        self.finished = True
        for handle in self._handles:
            handle.remove()
        if _trials.get(self.engine) is self:
            del _trials[self.engine]

    def after_cycle(self, task: Task, now_ns: int) -> None:
        if self.finished or self.engine.state is not RuntimeState.RUN:
            return  # programs did not run in STOP/FAULT: the trial waits for a real cycle
        self.pending.discard(task.name)
        if not self.pending:
            self._uninstall()
            unload_app(self.old_app)
            self.report.status = "committed"
            log.info("online_change_committed", **_ids(self.report))
            self.report.done.set()

    def guard(self, task: Task, program: str, exc: Exception) -> Handled:
        """A program of the new version raised while on trial: put the old version back.

        The old programs (untouched since the swap, so their state is the pre-swap state) run
        this same cycle again on the same inputs after the outputs are put back to their
        pre-swap values (``Handled.RERUN``: the engine runs them once the exception is
        handled): what is published is exactly what the old version computes, and the
        engine stays in RUN. Any exception of the old version then faults as usual.
        """
        self._uninstall()
        engine = self.engine
        if self.points is not None:
            self.points.switch_back(engine, engine.drivers)
        for point, value in self.saved_outputs:
            point.value = value
        for t in engine.tasks:
            if t.name in self.old_timing:
                t.retime(self.old_timing[t.name])
            t.set_programs(self.old_programs[t.name])
        for name, param in self.old_app.parameters.items():
            newer = self.new_app.parameters.get(name)
            if newer is not None:  # an operator may have written it during the trial
                # Outside the old range: the old version keeps its own value.
                with contextlib.suppress(TypeError, ValueError):
                    param.value = param.spec.check(newer.value)
        engine.app = self.old_app
        report = self.report
        report.status = "fell_back"
        report.reason = (
            f"program {program!r} of {report.new_version} raised {type(exc).__name__}: {exc} "
            f"in its first cycle (task {task.name!r}, cycle {task.ctx.cycle}); "
            f"{report.old_version} continues with its state from before the change"
        )
        log.error(
            "online_change_fallback",
            **_ids(report),
            reason=report.reason,
            traceback=traceback.format_exception(exc),
        )
        unload_app(self.new_app)
        report.done.set()
        return Handled.RERUN  # the old version's run of this cycle; faults as usual


def _ids(report: ChangeReport) -> dict[str, Any]:
    return {"app": report.app, "old_version": report.old_version, "new_version": report.new_version}
