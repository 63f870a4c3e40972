"""A cyclic task of the scan engine: its programs, release schedule, context and statistics."""

from __future__ import annotations

from collections.abc import Callable

from runtime.core._fb import CycleContext
from runtime.core._outputs import OutputPlan
from runtime.core._program import Program
from runtime.core._spin import BUDGET as SPIN_BUDGET
from runtime.core._spin import AdaptiveSpin, SpinMode, default_cap_ns
from runtime.core._stats import TaskStatistics
from runtime.core.manifest import TaskSpec

# Called after a task's cycle with the task and the cycle's app time (trace, bench, retain).
CycleHook = Callable[["Task", int], None]


def _calls_of(programs: list[tuple[str, Program]]) -> tuple[tuple[str, Callable[..., None]], ...]:
    return tuple((name, prog.execute) for name, prog in programs)


class Task:
    """One cyclic task: its programs, schedule, cycle context and statistics."""

    __slots__ = (
        "_calls",
        "_hooks",
        "_paused",
        "ctx",
        "name",
        "next_release_ns",
        "order",
        "outputs",
        "period_ns",
        "policy",
        "priority",
        "programs",
        "spec",
        "spin",
        "spin_mode_override",
        "spin_ns",
        "spin_override_ns",
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
        self.spin_override_ns: int | None = None  # the operator's --spin-us, kept by retime
        self.spin_mode_override: SpinMode | None = None  # the operator's --spin, idem
        self.spin = AdaptiveSpin(0)  # the margin slept short of each release (retime sets it)
        self.retime(spec)
        self.order = order
        self.programs = programs
        self._paused = False
        self._calls = _calls_of(programs)
        self.ctx = CycleContext(spec.name)
        self.stats = TaskStatistics()
        self.next_release_ns = 0
        # Copy-on-write: the engine binds a new tuple to add or remove a hook, so the scan
        # iterates its snapshot without a lock (ScanEngine.add_cycle_hook).
        self._hooks: tuple[CycleHook, ...] = ()
        self.outputs = outputs  # the outputs its programs can write, checked after each cycle

    @property
    def hooks(self) -> tuple[CycleHook, ...]:
        """The cycle hooks in call order (read-only: attach with ``engine.add_cycle_hook``)."""
        return self._hooks

    @property
    def paused(self) -> bool:
        """Programs paused (``engine.pause_programs``): the task scans I/O but runs no logic."""
        return self._paused

    def set_programs(self, programs: list[tuple[str, Program]]) -> None:
        """Replace the programs between two cycles (online change): two pointer stores.

        A paused task stays paused: the new programs run once it is resumed.
        """
        calls = () if self._paused else _calls_of(programs)
        self.programs = programs
        self._calls = calls
        self.outputs.replan([name for name, _ in programs])

    def _pause(self) -> None:
        self._paused = True
        self._calls = ()

    def _resume(self) -> None:
        self._paused = False
        self._calls = _calls_of(self.programs)

    def retime(self, spec: TaskSpec) -> None:
        """Take the timing of ``spec`` (period, overrun policy, watchdog, spin) between cycles.

        The release already scheduled stays where it is and the new period counts from it:
        an online change of the period starts the new schedule at the next release, with no
        burst of catch-up cycles and no gap longer than the old period.
        """
        self.spec = spec
        self.period_ns = spec.period_ns
        self.policy = spec.overrun
        self.configure_spin()
        self.watchdog_ns = round(spec.watchdog_ms * 1e6) if spec.watchdog_ms else 0

    def configure_spin(self) -> None:
        """Resolve the spin bound and mode from the operator's overrides and the app.

        ``--spin-us N`` alone keeps its old meaning (a fixed N µs spin); otherwise the spin
        is adaptive, bounded by ``--spin-us``, the task's ``spin_us`` or a default bound;
        ``--spin fixed`` without ``--spin-us`` spins the task's ``spin_us`` (maybe 0).
        """
        override = self.spin_override_ns
        mode = self.spin_mode_override
        if mode is None:
            mode = SpinMode.FIXED if override is not None else SpinMode.ADAPTIVE
        if override is not None:
            self.spin_ns = override
        elif mode is SpinMode.ADAPTIVE:  # learning is cheap: a bound even where the app has none
            self.spin_ns = self.spec.spin_us * 1000 or default_cap_ns(self.period_ns)
        else:  # fixed means exactly the app's spin_us, as before adaptive spin existed
            self.spin_ns = self.spec.spin_us * 1000
        self.spin.configure(self.spin_ns, mode, round(self.period_ns * SPIN_BUDGET))
