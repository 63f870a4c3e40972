"""Power cut of the PLC in a scenario: retain checkpoints only, a fresh runtime, the same plant."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.bench._prepare import Action, Compiled, _action, _compile, _parameter
from runtime.bench._schema import Event, PowerCut, Scenario
from runtime.bench._signals import make_resolver
from runtime.core._clock import VirtualClock
from runtime.core._loader import LoadedApp
from runtime.core._task import CycleHook
from runtime.host._apps import open_app
from runtime.host._runtime import Runtime
from runtime.host._trace import TraceRecorder
from runtime.state import RetainLoadReport, RetainStore

__all__ = ["BenchRetain", "Restarted", "power_cut", "uses_power_cut"]


def uses_power_cut(scenario: Scenario) -> bool:
    return any(ev.power_cut is not None for ev in scenario.timeline)


# A RAM-backed folder where the OS has one: the checkpoints keep their real write path
# (temporary file, fsync, rename) but an fsync costs nothing there.
_MEMORY_DIR = "/dev/shm"


def _scratch_dir() -> str | None:
    """Where a run's retain file goes: memory if possible, else the usual temporary folder.

    A simulated power cut never loses the page cache, so what a run sees cannot depend on
    durability; on a disk each checkpoint's fsyncs wait for the device, which parallel
    runs (a campaign) and other jobs share: a run spent seconds waiting on a busy disk for
    half a second of CPU.
    """
    if os.path.isdir(_MEMORY_DIR) and os.access(_MEMORY_DIR, os.W_OK | os.X_OK):
        return _MEMORY_DIR
    return None


class BenchRetain(RetainStore):
    """The retain file of a scenario run, in a temporary folder, checkpointed as ``vplc run``
    does (``load`` before RUN, ``attach``: every ``retain.interval_s`` of app time in RUN)."""

    def __init__(self, app: LoadedApp, folder: Path | None = None) -> None:
        self._tmp = (
            None
            if folder is not None
            else tempfile.TemporaryDirectory(prefix="vplc-", dir=_scratch_dir())
        )
        self.folder = folder if folder is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        super().__init__(self.folder / f"{app.name}.retain", app)

    def power_off(self) -> None:
        """The power is gone: no final checkpoint, the writer stops.

        Checkpoints already handed to the writer are waited for, so a run does not depend on
        thread timing; a real cut may also lose that one write (the previous file survives).
        """
        self.flush()
        self._engine = None  # what close() would take its final checkpoint from
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(10.0)

    def discard(self) -> None:
        """Delete the temporary folder (after the run's engine has closed)."""
        if self._tmp is not None:
            self._tmp.cleanup()


@dataclass
class Restarted:
    """The runtime after power returned: what the runner swaps in for the old one."""

    app: LoadedApp
    runtime: Runtime
    store: BenchRetain
    events: list[tuple[Event, Action]]
    checks: list[Compiled]
    report: RetainLoadReport
    summary: str


def power_cut(
    scenario: Scenario,
    app: LoadedApp,
    store: BenchRetain,
    cut: PowerCut,
    now_ns: int,
    events: list[tuple[Event, Action]],
    checks: list[Compiled],
    clock: Callable[[], float],
    *,
    hooks: list[CycleHook],
    trace: TraceRecorder | None,
) -> Restarted:
    """Cut the PLC's power at engine time ``now_ns`` and power it up ``off_for`` later.

    The old engine is abandoned, not closed (a clean shutdown is what a power cut is not).
    The plant keeps its state: its drivers are bound to the new app's process image.
    """
    store.power_off()
    # No power, no output current: every output falls to its safe (de-energised) value.
    app.image.apply_safe()
    for driver in app.drivers.values():
        driver.write_outputs(now_ns)
    # The plant runs on while the PLC is dark; a read is what advances a simulated plant.
    for driver in app.drivers.values():
        driver.read_inputs(now_ns + round(cut.off_for * 1e9))
    new = open_app(app.app_dir, seed=scenario.seed)
    new.manifest = app.manifest  # with the scenario's driver overrides
    for name, value in scenario.parameters.items():
        _parameter(new, name).set(value)  # the bench's configuration, not an operator change
    for name, driver in app.drivers.items():
        driver.bind(
            [(new.image[s.name], s.channel) for s in new.manifest.points if s.driver == name]
        )
        new.drivers[name] = driver
    restore = BenchRetain(new, store.folder)
    restore._tmp, store._tmp = store._tmp, None  # the folder now belongs to the new store
    report = restore.load(mode="cold" if cut.cold else "warm", on_bad="refuse")
    # The same assembly as at the start of the run (runtime.host), on the new app.
    runtime = Runtime(new, clock=VirtualClock(), hooks=hooks, trace=trace, retain=restore)
    runtime.start()
    resolve = make_resolver(new, clock)
    rebound = [(ev, _action(new, ev)) for ev, _ in events]
    recompiled = [_compile(c.spec, resolve, c.where) for c in checks]
    how = (
        f"{report.started} start, {report.restored} retained values from seq {report.seq}"
        if report.started == "warm"
        else f"{report.started} start (retained values ignored)"
    )
    summary = f"PLC off for {cut.off_for:g} s; {how}"
    return Restarted(new, runtime, restore, rebound, recompiled, report, summary)
