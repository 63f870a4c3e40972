"""The scan engine: cyclic tasks on absolute deadlines, lifecycle STOP/RUN/FAULT, safe outputs."""

from __future__ import annotations

import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from enum import Enum, StrEnum
from time import perf_counter_ns
from typing import Any

import structlog

from hal import Driver, ProcessImage
from runtime.core._clock import Clock, RealClock, ScanWaker, make_waker, wait_implementation
from runtime.core._handles import Handle, attach
from runtime.core._loader import LoadedApp
from runtime.core._outputs import OutputGuard
from runtime.core._rt import (
    CpuLatencyHold,
    GcControl,
    RtPlan,
    apply_thread_realtime,
    plan_realtime,
)
from runtime.core._spin import SpinMode, sleep_to
from runtime.core._task import CycleHook, Task
from runtime.core.manifest import OverrunPolicy, RealtimeConfig


class Handled(Enum):
    """What a program guard did with an exception it handled (``True`` means ``SKIP``)."""

    SKIP = "skip"  # the task's remaining programs skip this cycle
    RERUN = "rerun"  # the guard replaced the programs: the task runs them again this cycle


# Consulted when a program raises, newest first: False passes the exception on to the next
# guard and finally to FAULT; True or a ``Handled`` ends it (online change fallback).
ProgramGuard = Callable[[Task, str, Exception], bool | Handled]


class StopScan(Exception):  # noqa: N818 - it is a request, not an error
    """Raised by a cycle hook to end ``run_until`` on purpose (a bench whose plant diverged).

    Every other exception of a hook is caught, logged once per hook and counted: a hook
    observes the scan (trace, telemetry, retain, heartbeat) and must not end it.
    """


SWITCH_INTERVAL_S = 0.0002
_LOG_EVERY = 1000  # after the first overrun of a task, log only every Nth: logging is not free


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class RuntimeState(StrEnum):
    STOP = "STOP"
    RUN = "RUN"
    FAULT = "FAULT"


_RUN = RuntimeState.RUN  # read every cycle: a module constant beats the enum class lookup
_RERUN = Handled.RERUN


class ScanEngine:
    """Runs an app's tasks against its drivers on a clock, in priority order, without drift.

    Tasks share one scan thread and are scheduled non-preemptively: at every wake the
    highest-priority due task runs first (ties in declaration order). Commands from other
    threads are queued with ``submit`` and run between two cycles, never inside one.
    """

    def __init__(self, app: LoadedApp, *, clock: Clock | None = None) -> None:
        self.app = app
        self.clock: Clock = clock or RealClock()
        self.image: ProcessImage = app.image
        self.drivers: list[Driver] = list(app.drivers.values())
        self.log = structlog.get_logger("vplc.scan").bind(app=app.name)
        self.outputs = OutputGuard(self.image, log=self.log, fault=self.fault)
        specs = app.manifest.tasks
        quickest = min(range(len(specs)), key=lambda i: (specs[i].period_ns, i))
        self.tasks = [
            Task(
                spec,
                [(p, app.programs[p]) for p in spec.programs],
                i,
                # outputs no program asked for are checked by the fastest task
                outputs=self.outputs.plan(spec.name, spec.programs, fallback=i == quickest),
            )
            for i, spec in enumerate(specs)
        ]
        self._by_priority = sorted(self.tasks, key=lambda t: (-t.priority, t.order))
        self.fastest = min(self.tasks, key=lambda t: (t.period_ns, t.order))
        self.state = RuntimeState.STOP
        self.fault_reason = ""
        self.epoch_ns = 0
        self.now_ns = 0  # app time of the cycle in progress or last finished
        self.realtime: RealtimeConfig = app.manifest.realtime  # set_realtime may override
        self.gc = GcControl(enabled=self.realtime.gc_freeze and not self.clock.virtual)
        self.realtime_report: dict[str, str] = {}
        self.realtime_auto = False  # fill unset knobs with the best the OS permits (vplc run)
        self._commands: deque[tuple[Callable[[ScanEngine], Any], Future[Any]]] = deque()
        self._waker = make_waker()  # submit() wakes a sleeping scan: commands never wait a period
        # The scan's change sequence: how many submitted commands have run between cycles. A
        # command sees its own number; whatever is sampled after it sees at least that (the
        # front-ends order their texts and answers by it: runtime/front).
        self.change_seq = 0
        self.hook_errors: dict[str, int] = {}  # cycle hook → exceptions caught
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._opened = False
        # Attachments (hooks, guards, close hooks) are copy-on-write tuples: writers from any
        # thread bind a new tuple under this lock, the scan reads its snapshot without one.
        self._edit_lock = threading.Lock()
        self._guards: tuple[ProgramGuard, ...] = ()
        self._close_hooks: tuple[Callable[[ScanEngine], None], ...] = ()  # run first in close()
        # Sections added to statistics() by parts attached to the engine (e.g. "retain").
        self._statistics_sources: dict[str, Callable[[], dict[str, Any]]] = {}
        self.max_sleep_ns = 0  # 0: sleep to the next release (see run_until)

    # ------------------------------------------------------------------ attachments
    def add_cycle_hook(self, hook: CycleHook, *, task: Task | None = None) -> Handle:
        """Call ``hook(task, app_now_ns)`` after every cycle of ``task`` (default: the fastest).

        Callable from any thread; the hook runs on the scan thread after the outputs are
        written, in the order hooks were added. An exception of the hook is logged (first
        time) and counted, never fatal; :class:`StopScan` ends ``run_until`` on purpose.
        ``handle.remove()`` detaches it from any thread (see :class:`Handle`).
        """
        target = task if task is not None else self.fastest
        return attach(self._edit_lock, target, "_hooks", hook)

    def add_program_guard(self, guard: ProgramGuard) -> Handle:
        """Consult ``guard(task, program, exc)`` when a program raises, before any FAULT.

        Guards are consulted newest first (an online change's trial before the handover
        probation it happens in); the first that returns True or a :class:`Handled` ends
        the exception, a guard returning False passes it on. Any thread; ``remove()`` too.
        """
        return attach(self._edit_lock, self, "_guards", guard)

    @property
    def program_guards(self) -> tuple[ProgramGuard, ...]:
        """The guards attached now, oldest first."""
        return self._guards

    def add_close_hook(self, hook: Callable[[ScanEngine], None]) -> Handle:
        """Call ``hook(engine)`` first in ``close()``, before outputs go safe (final checkpoint)."""
        return attach(self._edit_lock, self, "_close_hooks", hook)

    def add_statistics(self, section: str, source: Callable[[], dict[str, Any]]) -> None:
        """Add ``statistics()[section] = source()`` (retain, a bridge): stats JSON, heartbeat."""
        with self._edit_lock:
            self._statistics_sources = self._statistics_sources | {section: source}

    def pause_programs(self) -> None:
        """Every task keeps scanning I/O but runs no program (standby, released instance).

        Programs keep their state; run this on the scan thread (a command or a hook) so no
        cycle sees half the tasks paused. ``set_programs`` on a paused task keeps it paused.
        """
        for task in self.tasks:
            task._pause()

    def resume_programs(self) -> None:
        """Undo ``pause_programs``: every task runs its (current) programs from its next cycle."""
        for task in self.tasks:
            task._resume()

    @property
    def programs_paused(self) -> bool:
        return all(task.paused for task in self.tasks)

    # ----------------------------------------------------------------- lifecycle commands
    def start(self) -> None:
        """STOP → RUN (also FAULT → RUN: the operator's restart after a fault)."""
        if self.state is not RuntimeState.RUN:
            self.log.info("lifecycle", old=self.state.value, new="RUN", reason=self.fault_reason)
            self.state = RuntimeState.RUN
            self.fault_reason = ""

    def stop(self) -> None:
        """RUN → STOP: outputs go to their safe values at once."""
        if self.state is RuntimeState.RUN:
            self.log.info("lifecycle", old="RUN", new="STOP")
            self.state = RuntimeState.STOP
        self._go_safe()

    def reset(self) -> None:
        """FAULT → STOP (acknowledge the fault, keep outputs safe)."""
        if self.state is RuntimeState.FAULT:
            self.log.info("lifecycle", old="FAULT", new="STOP", reason=self.fault_reason)
            self.state = RuntimeState.STOP
            self.fault_reason = ""

    def fault(self, reason: str, **details: Any) -> None:
        """Enter FAULT: outputs safe in this same cycle; the process stays up."""
        if self.state is not RuntimeState.FAULT:
            self.log.error("lifecycle", old=self.state.value, new="FAULT", reason=reason, **details)
        self.state = RuntimeState.FAULT
        self.fault_reason = reason
        self._go_safe()

    def _go_safe(self) -> None:
        lifted = self.image.apply_safe()
        if lifted:
            self.log.warning("forces_lifted", points=lifted, state=self.state.value)

    # ----------------------------------------------------------------------- commands
    def submit(self, command: Callable[[ScanEngine], Any]) -> Future[Any]:
        """Run ``command(engine)`` on the scan thread between two cycles."""
        fut: Future[Any] = Future()
        self._commands.append((command, fut))
        self._waker.wake()
        return fut

    def _run_commands(self) -> None:
        while self._commands:
            command, fut = self._commands.popleft()
            self.change_seq += 1
            try:
                fut.set_result(command(self))
            except Exception as exc:
                fut.set_exception(exc)

    # -------------------------------------------------------------------- the scan
    def open(self) -> None:
        """Open drivers and set the schedule's epoch; idempotent."""
        if self._opened:
            return
        for driver in self.drivers:
            # Optional: a driver that samples a remote device (opcua) does so as often as
            # the fastest task reads it, unless its options say otherwise.
            tell = getattr(driver, "set_scan_period", None)
            if tell is not None:
                tell(self.fastest.period_ns)
            driver.open()
        self._opened = True
        self.epoch_ns = self.clock.now_ns()
        for task in self.tasks:
            task.next_release_ns = self.epoch_ns

    def close(self) -> None:
        """Outputs safe, written once more, drivers closed."""
        if not self._opened:
            return
        for hook in self._close_hooks:
            try:
                hook(self)
            except Exception as exc:  # a failing hook must not keep outputs from going safe
                self.log.error("close_hook_failed", error=repr(exc))
        if self.state is RuntimeState.RUN:
            self.state = RuntimeState.STOP
            self.log.info("lifecycle", old="RUN", new="STOP", reason="shutdown")
        self._go_safe()
        for driver in self.drivers:
            try:
                driver.write_outputs(self.now_ns)
            except Exception as exc:
                self.log.error(
                    "driver_error", driver=driver.name, phase="final_write", error=str(exc)
                )
            driver.close()
        self._opened = False

    def run_until(self, end_ns: int | None = None) -> None:
        """Scan until app time ``end_ns`` (exclusive) or until ``request_stop``.

        The cycles run are those released before ``end_ns``, on either clock. In real time
        the call also lasts until then (serving commands): a run of N s is N s of app time,
        and the cycle released at N never runs, whatever the timing of other threads.
        """
        self.open()
        clock = self.clock
        while not self._stop_requested:
            if self._commands:
                self._run_commands()
            task = self._next_due()
            release = task.next_release_ns
            if end_ns is not None and release - self.epoch_ns >= end_ns:
                if clock.virtual or not self._wait_for_end(self.epoch_ns + end_ns):
                    break
                continue  # woken for a command: serve it, then wait again
            now = clock.now_ns()
            if release > now:
                if clock.virtual and not self._commands:
                    # Virtual time jumps to exactly this release, where _next_due already
                    # picked the highest-priority task: nothing to re-check, run it now.
                    clock.sleep_until(release)
                    self._cycle(task, release)
                    continue
                # A standby waits for a handover command that must run within milliseconds,
                # not at its next release: it sleeps in slices (``max_sleep_ns``).
                cap = self.max_sleep_ns
                if cap and release - now > cap:
                    clock.sleep_until(now + cap, 0, self._waker)
                else:
                    late = sleep_to(clock, task.spin, release, self._waker)
                    if (
                        late >= 0
                        and not self._commands
                        and not self._stop_requested
                        and clock.now_ns() >= release  # a timed wait never ends early; sure
                    ):
                        # Slept and spun to this release with nothing submitted meanwhile:
                        # the task picked before the sleep is still the one due (releases
                        # only move in cycles), so run it now, not after a loop (~1 µs).
                        self._real_time_cycle(task, release)
                    task.spin.learn(late)
                continue  # re-check: a command or a higher-priority task may be due first
            if clock.virtual:
                self._cycle(task, release)
            else:
                self._real_time_cycle(task, release)

    def _real_time_cycle(self, task: Task, release: int) -> None:
        """A cycle, then a young-generation collection if the slack to the next allows it."""
        self._cycle(task, release)
        self.gc.maybe_collect(self._next_due().next_release_ns - self.clock.now_ns())

    def _wait_for_end(self, end: int) -> bool:
        """Real time: sleep towards ``end`` (as for a release, in standby slices); False once
        it has come, True to re-check first (a command may be waiting)."""
        clock = self.clock
        now = clock.now_ns()
        if now >= end:
            return False
        cap = self.max_sleep_ns
        clock.sleep_until(min(end, now + cap) if cap else end, 0, self._waker)
        return True

    def _next_due(self) -> Task:
        best = self._by_priority[0]
        for task in self._by_priority:
            if task.next_release_ns < best.next_release_ns:
                best = task
        return best

    def _cycle(self, task: Task, release: int) -> None:
        clock = self.clock
        start = clock.now_ns()
        # Execution time is CPU work, measured on the real counter even in virtual time.
        work0 = perf_counter_ns()
        app_now = release - self.epoch_ns
        self.now_ns = app_now
        task.ctx.advance(app_now)
        self._read_inputs(app_now)
        if self.state is _RUN and self._run_programs(task) is _RERUN:
            # A guard put other programs in (an online change's fallback): they run this
            # same cycle on the same inputs, outside the handler of the first exception.
            # Once: a second RERUN in the same cycle is treated as SKIP.
            self._run_programs(task)
        plan = task.outputs  # coerce and check what the programs wrote (runtime/core/_outputs.py)
        bad = plan.scan()
        if bad is not None or self.outputs.open_episodes:
            self.outputs.settle(plan, bad, app_now)
        self._write_outputs(app_now)
        for hook in task._hooks:
            try:
                hook(task, app_now)
            except StopScan:
                raise
            except Exception as exc:
                self._hook_failed(hook, exc)
        work = perf_counter_ns() - work0
        end = clock.now_ns()
        stats = task.stats
        stats.cycles += 1
        stats.latency_hist.record(start - release)
        stats.exec_hist.record(work)
        nxt = release + task.period_ns
        if end > nxt or task.watchdog_ns:  # late, or a watchdog to check: the full path
            self._schedule_next(task, release, end, end - start)
        else:
            task.next_release_ns = nxt

    def _run_programs(self, task: Task) -> Handled | None:
        """Run the task's programs; a guard's verdict if one of them raised and was handled."""
        ctx = task.ctx
        for name, call in task._calls:
            try:
                call(ctx)
            except Exception as exc:
                return self._program_raised(task, name, exc)
            except (SystemExit, KeyboardInterrupt) as exc:
                if isinstance(exc, KeyboardInterrupt) and _on_main_thread():
                    raise  # a virtual run scans on the main thread: the operator's Ctrl-C
                self._program_fault(task, name, exc)  # sys.exit() in logic ends nothing
                return None
        return None

    def _program_raised(self, task: Task, name: str, exc: Exception) -> Handled | None:
        for guard in reversed(self._guards):
            verdict = guard(task, name, exc)
            if verdict is True:
                return Handled.SKIP
            if isinstance(verdict, Handled):
                return verdict
        self._program_fault(task, name, exc)
        return None

    def _program_fault(self, task: Task, name: str, exc: BaseException) -> None:
        task.stats.faults += 1
        self.fault(
            f"program {name!r} raised {type(exc).__name__}: {exc}",
            task=task.name,
            program=name,
            cycle=task.ctx.cycle,
            traceback=traceback.format_exc(),
        )

    def _hook_failed(self, hook: Callable[..., Any], exc: Exception) -> None:
        """Count a cycle hook's exception; log the first of each hook with its traceback.

        The hook stays attached: most failures pass (a full disk, a broker away) and a
        removed hook would silently stop tracing or checkpointing; the count shows in
        ``statistics()["hook_errors"]``.
        """
        name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
        count = self.hook_errors.get(name, 0) + 1
        self.hook_errors[name] = count
        if count == 1:
            self.log.error(
                "cycle_hook_failed",
                hook=name,
                error=repr(exc),
                traceback=traceback.format_exc(),
                note="the hook stays attached; later failures are only counted",
            )

    def _read_inputs(self, app_now: int) -> None:
        for driver in self.drivers:
            try:
                driver.read_inputs(app_now)
            except Exception as exc:
                self.fault(
                    f"driver {driver.name!r} failed reading inputs: {exc}",
                    driver=driver.name,
                    traceback=traceback.format_exc(),
                )

    def _write_outputs(self, app_now: int) -> None:
        for driver in self.drivers:
            try:
                driver.write_outputs(app_now)
            except Exception as exc:
                self.fault(
                    f"driver {driver.name!r} failed writing outputs: {exc}",
                    driver=driver.name,
                    traceback=traceback.format_exc(),
                )

    def _schedule_next(self, task: Task, release: int, end: int, exec_ns: int) -> None:
        period = task.period_ns
        nxt = release + period
        overrun = end > nxt or (task.watchdog_ns and exec_ns > task.watchdog_ns)
        if overrun:
            stats = task.stats
            stats.overruns += 1
            if end > nxt:
                behind = (end - nxt) // period  # releases that are entirely in the past
                # warn: the pending release runs at once, late; skip/fault: never run late.
                dropped = behind if task.policy is OverrunPolicy.WARN else behind + 1
                nxt += dropped * period
                stats.skipped += dropped
            if stats.overruns == 1 or stats.overruns % _LOG_EVERY == 0:
                self.log.warning(
                    "overrun",
                    task=task.name,
                    cycle=task.ctx.cycle,
                    exec_us=exec_ns // 1000,
                    period_us=period // 1000,
                    overruns=stats.overruns,
                    policy=task.policy.value,
                )
            if task.policy is OverrunPolicy.FAULT and self.state is RuntimeState.RUN:
                self.fault(
                    f"task {task.name!r} overran its period (watchdog policy 'fault')",
                    task=task.name,
                    cycle=task.ctx.cycle,
                    exec_us=exec_ns // 1000,
                )
                self._write_outputs(self.now_ns)
        task.next_release_ns = nxt

    # ------------------------------------------------------------ real-time thread
    def start_thread(self, end_ns: int | None = None) -> None:
        """Run the scan in its own thread with the manifest's real-time settings, until
        ``request_stop`` or app time ``end_ns`` (``run_until``; the thread then ends)."""
        rt = self.realtime

        # Another busy thread (the live view, a network bridge) holds the GIL for up to the
        # switch interval (5 ms by default) before the scan can run: shorten it.
        sys.setswitchinterval(SWITCH_INTERVAL_S)

        plan = plan_realtime(rt, auto=self.realtime_auto)

        def body() -> None:
            self.realtime_report, refused = apply_thread_realtime(
                fifo_priority=plan.fifo_priority,
                cpus=plan.cpus,
                timer_slack_ns=plan.timer_slack_ns,
                lock_memory=plan.lock_memory,
            )
            hold = self._hold_cpu_latency(plan, refused)
            self.realtime_report["wait"] = wait_implementation(self._waker)
            self._log_realtime(plan, refused)
            self.gc.freeze()
            try:
                self.run_until(end_ns)
            except BaseException as exc:  # the scan must never die silently
                self.log.critical(
                    "scan_thread_died", error=repr(exc), traceback=traceback.format_exc()
                )
                self.fault(f"scan thread died: {exc!r}")
                raise
            finally:
                self.gc.release()
                if hold is not None:
                    hold.release()

        self._thread = threading.Thread(target=body, name=f"scan-{self.app.name}", daemon=True)
        self._thread.start()

    def _hold_cpu_latency(self, plan: RtPlan, refused: dict[str, str]) -> CpuLatencyHold | None:
        """Take the plan's CPU wake-up latency limit, if any; report it like the other knobs."""
        if plan.cpu_latency_us is None:
            return None
        hold, text = CpuLatencyHold.take(plan.cpu_latency_us)
        self.realtime_report["cpu_latency"] = text
        if hold is None:
            refused["cpu_latency"] = f"{plan.cpu_latency_us} us: {text}"
        return hold

    def _log_realtime(self, plan: RtPlan, refused: dict[str, str]) -> None:
        """One line: what the scan thread got, what was refused and why, each task's spin.

        A refusal of a knob the operator or the app asked for is a warning; of one chosen
        automatically (the OS does not permit it here) it is information.
        """
        applied = {k: v for k, v in self.realtime_report.items() if k not in refused}
        spin = {t.name: f"{t.spin.mode.value} {t.spin_ns // 1000} us" for t in self.tasks}
        emit = self.log.warning if set(refused) - plan.auto else self.log.info
        emit(
            "realtime",
            applied=applied,
            refused=refused,
            automatic=sorted(plan.auto),
            spin=spin,
        )

    def set_realtime(
        self,
        *,
        fifo_priority: int | None = None,
        cpus: list[int] | None = None,
        spin_us: int | None = None,
        spin_mode: SpinMode | None = None,
        auto: bool | None = None,
        waker: ScanWaker | None = None,
    ) -> None:
        """Override the manifest's real-time settings before ``start_thread`` (CLI flags).

        Operators tune these per machine (which core is isolated, whether SCHED_FIFO is
        allowed), so they must not need an edit of the app, which is versioned and audited.
        ``spin_us`` and ``spin_mode`` apply to every task (``Task.configure_spin``); ``auto``
        fills the knobs nobody set with the best the OS permits (``plan_realtime``).
        """
        update: dict[str, Any] = {}
        if fifo_priority is not None:
            update["fifo_priority"] = fifo_priority
        if cpus is not None:
            update["cpus"] = cpus
        # exclude_unset: what nobody set stays unset, so ``auto`` can still fill it
        current = self.realtime.model_dump(exclude_unset=True)
        self.realtime = RealtimeConfig.model_validate(current | update)
        if auto is not None:
            self.realtime_auto = auto
        if waker is not None:  # the sleep itself, e.g. the Python reference for a comparison
            self._waker = waker
        if spin_us is not None or spin_mode is not None:
            for task in self.tasks:  # an online change's retime keeps it (machine, not app)
                if spin_us is not None:
                    task.spin_override_ns = spin_us * 1000
                if spin_mode is not None:
                    task.spin_mode_override = spin_mode
                task.configure_spin()

    def request_stop(self) -> None:
        self._stop_requested = True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def scan_thread_id(self) -> int | None:
        """The scan thread's native id once its real-time settings are applied, else None."""
        thread = self._thread
        if thread is None or not self.realtime_report or not thread.is_alive():
            return None
        return thread.native_id

    def _task_statistics(self, task: Task) -> dict[str, Any]:
        stats = task.stats.as_dict() | {
            "period_ms": task.period_ns / 1e6,
            "priority": task.priority,
        }
        if not self.clock.virtual:  # virtual time never sleeps short: nothing to report
            stats["spin"] = task.spin.as_dict()
        return stats

    def statistics(self) -> dict[str, Any]:
        return {
            "app": self.app.name,
            "version": self.app.version,
            "state": self.state.value,
            "fault_reason": self.fault_reason,
            "app_time_s": self.now_ns / 1e9,
            "gc_collections": list(self.gc.collections),
            "gc_process_collections": self.gc.process_collections(),
            "realtime": dict(self.realtime_report),
            "outputs": self.outputs.statistics(),
            "hook_errors": dict(self.hook_errors),
            "tasks": {t.name: self._task_statistics(t) for t in self.tasks},
        } | {name: source() for name, source in self._statistics_sources.items()}
