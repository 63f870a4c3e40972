"""Blue-green handover between two running instances: release, claim, yield, resume.

Timeline (old = the owner, epoch N; new = started with ``vplc run --standby``)::

    new   standby: reads inputs, scans with no programs, never claims or writes outputs
    old   handover_release, at the end of cycle k: snapshot, programs paused, one last full
          write of cycle k's outputs, then silent (held); answers snapshot + schedule epoch
    new   handover_claim(release, epoch N+1), between two cycles: restore the snapshot (merged
          variable by variable when the new instance runs another version), put
          the schedule on the old one's grid (same CLOCK_MONOTONIC on one host), claim N+1
          (acknowledged by the broker before any tagged write), run programs: first cycle k+1
    old   sees claim N+1 on <prefix>/owner → superseded → STOP "superseded by epoch N+1"
    new   probation (first ``probation_cycles``): a program exception holds the outputs
          (no safe values written over the plant) and faults; the deployer then sends
    old   handover_resume(epoch N+2): claims again, outputs and programs back, RUN

Drivers take part if they implement :class:`Ownable` (the ``mqtt`` driver does).
"""

from __future__ import annotations

import hashlib
import json
import time
import weakref
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import structlog

from hal import Direction
from runtime.core._engine import RuntimeState, ScanEngine
from runtime.core._handles import Handle
from runtime.core._task import Task
from runtime.state._merge import Prefer, brief
from runtime.state.snapshot import SnapshotError, restore_snapshot, take_snapshot

__all__ = ["HandoverAgent", "HandoverError", "Ownable", "agent_for", "attach_handover"]

STANDBY_SLICE_NS = 2_000_000  # a standby answers a claim within ~2 ms, not at its next release
log = structlog.get_logger("vplc.handover")
_agents: weakref.WeakKeyDictionary[ScanEngine, HandoverAgent] = weakref.WeakKeyDictionary()


@runtime_checkable
class Ownable(Protocol):
    """A driver whose outputs are owned through an epoch (see ``runtime.drivers.mqtt``)."""

    def set_standby(self) -> None: ...
    def claim(self, epoch: int, timeout: float = 1.0) -> bool: ...
    def hold(self, *, last_write: bool = True) -> None: ...
    def unhold(self) -> None: ...
    @property
    def superseded(self) -> bool: ...
    @property
    def max_epoch_seen(self) -> int | None: ...


class HandoverError(Exception):
    """A handover step that cannot be taken now; the message is the refusal reason."""


def boot_id() -> str:
    """Equal on two processes (or containers) that share one CLOCK_MONOTONIC."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def agent_for(engine: ScanEngine) -> HandoverAgent | None:
    return _agents.get(engine)


def attach_handover(
    engine: ScanEngine, *, standby: bool, probation_cycles: int = 10
) -> HandoverAgent | None:
    """An agent if the app has ownable drivers (or standby is asked, which needs them)."""
    owners: list[Ownable] = [d for d in engine.drivers if isinstance(d, Ownable)]
    if not owners:
        if standby:
            raise HandoverError(
                "--standby needs a driver with output ownership (type mqtt); this app has "
                + ", ".join(type(d).__name__ for d in engine.drivers)
            )
        return None
    return HandoverAgent(engine, owners, standby=standby, probation_cycles=probation_cycles)


class HandoverAgent:
    """The handover state of one engine; every step runs on the scan thread between cycles."""

    def __init__(
        self, engine: ScanEngine, owners: list[Ownable], *, standby: bool, probation_cycles: int
    ) -> None:
        self.engine = engine
        self.owners = owners
        self.probation_cycles = probation_cycles
        self.mode = "standby" if standby else "active"
        self.reason = ""
        self.epoch: int | None = None
        self.events: dict[str, Any] = {}
        self._release_points: dict[str, Any] = {}
        self._probation_left = 0
        self._release: dict[str, Any] | None = None
        self._probation_guard: Handle | None = None
        if standby:
            for d in owners:
                d.set_standby()
            engine.pause_programs()
            engine.max_sleep_ns = STANDBY_SLICE_NS
        self._hook = engine.add_cycle_hook(self._on_cycle)
        _agents[engine] = self

    # -- steps (scan thread) -----------------------------------------------------------
    def release(self) -> dict[str, Any]:
        """Old owner: arm the release (first call), then the release answer once it is done.

        The release itself happens right after the next cycle of the fastest task ends, so
        the new instance gets the freshest state and almost a whole period to claim before
        the next release: asked again, the answer is ``{"pending": True}`` until then.
        """
        eng = self.engine
        if self.mode == "released" and self._release is not None:
            return self._release
        if self.mode == "releasing":
            return {"pending": True}
        if self.mode != "active" or eng.state is not RuntimeState.RUN:
            raise HandoverError(f"release needs an active owner in RUN (mode {self.mode}, "
                                f"state {eng.state.value})")  # fmt: skip
        self.mode = "releasing"
        eng.max_sleep_ns = STANDBY_SLICE_NS  # the follow-up request is answered at once
        return {"pending": True}

    def _do_release(self) -> None:
        eng = self.engine
        if self.mode != "releasing-now":
            return  # resumed (rolled back) before the release ran
        snap = take_snapshot(eng)
        self._release_points = {p.name: p.value for p in eng.image}
        eng.pause_programs()
        for d in self.owners:
            d.hold()
        eng.max_sleep_ns = STANDBY_SLICE_NS  # a rollback (resume) must be quick too
        self.mode = "released"
        self.events["released"] = self._mark()
        log.info("handover_released", **self.events["released"])
        self._release = {
            "snapshot": snap,
            "epoch_ns": eng.epoch_ns,
            "boot_id": boot_id(),
            "cycle": eng.fastest.ctx.cycle,
            "period_ns": eng.fastest.period_ns,
            "owner_epoch": self._max_seen(),
        }

    def claim(
        self,
        release: dict[str, Any],
        epoch: int,
        *,
        prefer: Prefer = None,
        strict: bool = False,
    ) -> dict[str, Any]:
        """New instance: restore, align the schedule, claim ``epoch``, run from the next cycle.

        A snapshot of another version goes through the state merge (``prefer`` decides its
        conflicts, ``strict`` refuses unresolved ones); the answer carries the plan.
        """
        eng = self.engine
        if self.mode != "standby":
            raise HandoverError(f"claim needs a standby instance (mode {self.mode})")
        seen = self._max_seen()
        if seen is not None and epoch <= seen:
            raise HandoverError(f"epoch {epoch} is not above the highest claim {seen}")
        try:
            plan = restore_snapshot(eng, release["snapshot"], prefer=prefer, strict=strict)
        except (SnapshotError, KeyError, TypeError, ValueError) as exc:
            raise HandoverError(f"snapshot refused: {exc}") from None
        skipped = self._rebase(release)
        claimed = [d for d in self.owners if d.claim(epoch)]
        if len(claimed) != len(self.owners):
            for d in claimed:
                d.hold(last_write=False)
            self.mode, self.reason = "failed", f"could not claim epoch {epoch}"
            raise HandoverError(self.reason)
        eng.resume_programs()
        eng.max_sleep_ns = 0
        self.epoch, self.mode = epoch, "probation"
        self._probation_left = self.probation_cycles
        # Its own guard, beside any other (an online change's trial adds and removes its own).
        self._probation_guard = eng.add_program_guard(self._guard)
        self.events["claimed"] = self._mark() | {"skipped_releases": skipped}
        summary = plan.summary()
        log.info("handover_claimed", epoch=epoch, plan=brief(summary), **self.events["claimed"])
        return {
            "epoch": epoch,
            "skipped_releases": skipped,
            "cycle": eng.fastest.ctx.cycle,
            "from_version": release["snapshot"].get("version"),
            "version": eng.app.version,
            "plan": summary,
            # Proof for the deployer that the state crossed unchanged (same version; another
            # version's differs by what the plan lists), without sending it back.
            "programs_sha256": _digest(take_snapshot(eng)["programs"]),
            "snapshot_programs_sha256": _digest(release["snapshot"]["programs"]),
        }

    def resume(self, epoch: int | None) -> dict[str, Any]:
        """Old instance, rollback: claim above every claim, outputs and programs back, RUN."""
        eng = self.engine
        if self.mode not in ("released", "superseded", "releasing", "releasing-now"):
            raise HandoverError(f"resume needs a released or superseded instance ({self.mode})")
        seen = self._max_seen()
        epoch = epoch if epoch is not None else (seen or 0) + 1
        for point in eng.image:
            if point.name in self._release_points and point.direction is Direction.OUT:
                point.value = self._release_points[point.name]
        if not all(d.claim(epoch) for d in self.owners):
            raise HandoverError(f"could not claim epoch {epoch} (highest claim {seen})")
        eng.resume_programs()
        eng.start()
        eng.max_sleep_ns = 0
        self.epoch, self.mode, self.reason = epoch, "active", ""
        self.events["resumed"] = self._mark() | {"epoch": epoch}
        log.warning("handover_resumed", **self.events["resumed"])
        return {"epoch": epoch, "cycle": eng.fastest.ctx.cycle}

    def status(self) -> dict[str, Any]:
        eng = self.engine
        return {
            "mode": self.mode,
            "reason": self.reason,
            "epoch": self.epoch,
            "max_epoch_seen": self._max_seen(),
            "state": eng.state.value,
            "cycle": eng.fastest.ctx.cycle,
            "events": dict(self.events),
        }

    # -- internals -----------------------------------------------------------------------
    def _on_cycle(self, task: Task, app_now: int) -> None:
        mode = self.mode
        if mode == "releasing":
            self.mode = "releasing-now"  # once: the next loop turn runs it, before any sleep
            self.engine.submit(lambda e: self._do_release())
        elif mode in ("active", "probation", "released") and any(d.superseded for d in self.owners):
            self.mode = "superseded"
            self.reason = f"superseded by epoch {self._max_seen()}"
            self.engine.pause_programs()
            self._end_probation()
            self.engine.stop()  # safe values stay local: a superseded driver publishes nothing
            self.events["superseded"] = self._mark()
            log.warning("handover_superseded", reason=self.reason)
        elif mode == "probation":
            if "first_cycle" not in self.events:
                self.events["first_cycle"] = self._mark()
            self._probation_left -= 1
            if self._probation_left <= 0 and self.engine.state is RuntimeState.RUN:
                self.mode = "active"
                self._end_probation()

    def _end_probation(self) -> None:
        if self._probation_guard is not None:
            self._probation_guard.remove()
            self._probation_guard = None

    def _guard(self, task: Task, program: str, exc: Exception) -> bool:
        """Probation: the exception faults as usual, but the outputs are held, not made safe."""
        if self.mode == "probation":
            # The old instance still has the state of the release: better it takes the
            # plant back than this one writes safe values over a running process.
            for d in self.owners:
                d.hold(last_write=False)
            self.mode, self.reason = "failed", f"program {program!r} raised in probation: {exc}"
            self.events["failed"] = self._mark()
            self._end_probation()
            log.error("handover_probation_failed", reason=self.reason)
        return False

    def _rebase(self, release: dict[str, Any]) -> int:
        """Put the restored releases on the old instance's grid; skipped fastest releases."""
        eng = self.engine
        now = eng.clock.now_ns()
        same_clock = release.get("boot_id") == boot_id() != ""
        new_epoch = int(release["epoch_ns"]) if same_clock else now - eng.now_ns
        shift, eng.epoch_ns = new_epoch - eng.epoch_ns, new_epoch
        skipped = 0
        for task in eng.tasks:
            task.next_release_ns += shift
            if task.next_release_ns <= now:
                behind = (now - task.next_release_ns) // task.period_ns + 1
                task.next_release_ns += behind * task.period_ns
                if task is eng.fastest:
                    skipped = int(behind)
        return skipped

    def _max_seen(self) -> int | None:
        seen = [d.max_epoch_seen for d in self.owners if d.max_epoch_seen is not None]
        return max(seen) if seen else None

    def _mark(self) -> dict[str, Any]:
        return {"cycle": self.engine.fastest.ctx.cycle, "wall": time.time()}
