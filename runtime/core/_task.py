"""A cyclic task of the scan engine: its programs, release schedule, context and statistics."""

from __future__ import annotations

from collections.abc import Callable

from runtime.core._fb import CycleContext
from runtime.core._outputs import OutputPlan
from runtime.core._program import Program
from runtime.core._stats import TaskStatistics
from runtime.core.manifest import TaskSpec

# Called after a task's cycle with the task and the cycle's app time (trace, bench, retain).
CycleHook = Callable[["Task", int], None]


class Task:
    """One cyclic task: its programs, schedule, cycle context and statistics."""

    __slots__ = (
        "calls",
        "ctx",
        "hooks",
        "name",
        "next_release_ns",
        "order",
        "outputs",
        "period_ns",
        "policy",
        "priority",
        "programs",
        "spec",
        "spin_ns",
        "stats",
        "watchdog_ns",
    )

    def __init__(
        self,
        spec: TaskSpec,
        programs: list[tuple[str, Program]],
        order: int,
        *,
        outputs: OutputPlan,
    ) -> None:
        self.name = spec.name
        self.priority = spec.priority
        self.retime(spec)
        self.order = order
        self.programs = programs
        self.calls = [(name, prog.execute) for name, prog in programs]
        self.ctx = CycleContext(spec.name)
        self.stats = TaskStatistics()
        self.next_release_ns = 0
        self.hooks: list[CycleHook] = []
        self.outputs = outputs  # the outputs its programs can write, checked after each cycle

    def set_programs(self, programs: list[tuple[str, Program]]) -> None:
        """Replace the programs between two cycles (online change): two pointer stores."""
        calls = [(name, prog.execute) for name, prog in programs]
        self.programs = programs
        self.calls = calls
        self.outputs.replan([name for name, _ in programs])

    def retime(self, spec: TaskSpec) -> None:
        """Take the timing of ``spec`` (period, overrun policy, watchdog, spin) between cycles.

        The release already scheduled stays where it is and the new period counts from it:
        an online change of the period starts the new schedule at the next release, with no
        burst of catch-up cycles and no gap longer than the old period.
        """
        self.spec = spec
        self.period_ns = spec.period_ns
        self.policy = spec.overrun
        self.spin_ns = spec.spin_us * 1000
        self.watchdog_ns = round(spec.watchdog_ms * 1e6) if spec.watchdog_ms else 0
