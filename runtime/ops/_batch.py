"""The batch recorder: an electronic batch record per run of the app's batch phase.

From the phase's START to COMPLETE, STOPPED or ABORTED it keeps the phase and step timeline,
the parameter set at start and every change, alarm episodes (activation, acknowledge, clear),
deviations against the manifest's ``gmp.specifications``, operator actions with their
e-signatures. It only reads: two cycle hooks (the phase's task for the timeline, the fastest
task for limits and alarms) that allocate nothing unless something changed, and the command
listener (``add_command_listener``). A closed record goes to a writer thread in real time
(``runtime.ops._batch_store.seal_and_write``: hash, audit link, atomic write); a virtual run
writes at ``close()``. So the scan never waits on a disk, and a trace stays byte-identical.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from runtime.blocks import ALARM, PHASE
from runtime.core._gmp import GmpSpec
from runtime.ops._audit import AuditLog
from runtime.ops._batch_spec import SpecWatch, app_digest
from runtime.ops._batch_store import next_batch_id, seal_and_write, used_batch_ids
from runtime.ops._commands import add_command_listener, find_block

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine
    from runtime.core._task import Task

__all__ = ["IMAGE_ENV", "BatchRecorder"]

IMAGE_ENV = "VPLC_IMAGE_DIGEST"  # set by the deployment for a container (image@sha256:…)
_ENDS = frozenset({"COMPLETE", "STOPPED", "ABORTED"})
_IDLE_LIKE = frozenset({"IDLE", *_ENDS})


class BatchRecorder:
    """Records batches of ``engine``'s app into ``directory`` (needs ``gmp.batch``)."""

    def __init__(
        self,
        engine: ScanEngine,
        directory: Path,
        *,
        audit: AuditLog | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        app = engine.app
        gmp: GmpSpec | None = app.manifest.gmp
        if gmp is None or gmp.batch is None:
            raise ValueError(f"app {app.name!r} declares no gmp.batch: nothing to record")
        self.spec = gmp.batch
        self.engine, self.directory, self.audit, self.wall = engine, Path(directory), audit, wall
        phase = find_block(engine, self.spec.phase)
        if not isinstance(phase, PHASE):
            raise ValueError(f"gmp.batch.phase: {self.spec.phase!r} is not a PHASE block")
        self.phase = phase
        self.app_sha256 = app_digest(app.app_dir)  # disk read here, never on the scan thread
        self.used_ids = used_batch_ids(self.directory)
        self.first = True  # the first cycle: a phase already active was restored (warm start)
        leaves = app.tree.leaves()
        self.step_acc = leaves.get(self.spec.step) if self.spec.step else None
        self.watches = [SpecWatch(s, app, leaves) for s in gmp.specifications]
        self.alarms = [(path, block) for path, block in app.tree.of_type(ALARM)]
        self.alarm_blocks = [block for _, block in self.alarms]
        self.alarm_active = [False] * len(self.alarms)
        self.alarm_unacked = [False] * len(self.alarms)
        self.prev_state = phase.STATE_NAME
        self.prev_step = self._step()
        self.batch: dict[str, Any] | None = None
        self.episodes: dict[str, dict[str, Any]] = {}  # alarm path → its open episode
        self.pending_start: dict[str, Any] | None = None
        self.written: list[Path] = []
        self.errors: list[str] = []
        self.log = structlog.get_logger("vplc.batch")
        self.virtual = engine.clock.virtual
        self.queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.held: list[dict[str, Any]] = []  # virtual time: written at close()
        self.thread: threading.Thread | None = None
        if not self.virtual:
            self.thread = threading.Thread(target=self._writer, name="vplc-batch", daemon=True)
            self.thread.start()
        engine.add_cycle_hook(self._on_phase_task, task=self._task_of(self.spec.phase))
        engine.add_cycle_hook(self._on_fast_task)
        engine.add_close_hook(self._on_close)
        add_command_listener(engine, self._on_command)

    def _task_of(self, path: str) -> Task:
        program = path.partition(".")[0]
        for task in self.engine.tasks:
            if any(name == program for name, _ in task.programs):
                return task
        return self.engine.fastest

    def _step(self) -> Any:
        if self.step_acc is None:
            return None
        owner, attr = self.step_acc
        return getattr(owner, attr)

    # ---------------------------------------------------------------- scan thread
    def _stamp(self, now_ns: int | None = None) -> dict[str, Any]:
        t = (self.engine.now_ns if now_ns is None else now_ns) / 1e9
        base = self.batch["_wall0"] - self.batch["_t0"] if self.batch else self.wall() - t
        at = datetime.fromtimestamp(base + t, UTC).isoformat(timespec="milliseconds")
        return {"t_s": round(t, 3), "at": at}

    def _on_phase_task(self, task: Task, now_ns: int) -> None:
        state, step = self.phase.STATE_NAME, self._step()
        first, self.first = self.first, False
        if state == self.prev_state and step == self.prev_step and not first:
            return
        opened = self.batch is None and state not in _IDLE_LIKE
        if opened:
            # Entered in this very cycle: a new batch; else restored by a warm start.
            continued = not self.phase.STATE_ENTRY and self.prev_state not in _IDLE_LIKE
            self._open(now_ns, continued=continued)
        batch = self.batch
        if batch is not None:
            if state != self.prev_state or opened:
                entry = {**self._stamp(now_ns), "kind": "phase", "from": self.prev_state}
                entry["to"] = state
                if opened and batch["header"]["continued"]:
                    entry["note"] = "already active at start-up: restored by a warm start"
                if batch["_cause"] is not None:
                    entry["by"] = batch["_cause"]
                    batch["_cause"] = None
                batch["timeline"].append(entry)
            if step != self.prev_step or opened:
                entry = {**self._stamp(now_ns), "kind": "step", "from": self.prev_step}
                entry["from"] = None if opened and step == self.prev_step else self.prev_step
                batch["timeline"].append(entry | {"to": step})
        self.prev_state, self.prev_step = state, step
        if batch is not None and state in _ENDS:
            self._close_batch(now_ns, state)

    def _on_fast_task(self, task: Task, now_ns: int) -> None:
        if self.batch is None:
            return
        for watch in self.watches:
            found = watch.sample(now_ns)
            if found is not None:
                self._deviation(found)
        # Two lists of bools rather than a tuple per alarm: nothing allocated per cycle.
        active, unacked = self.alarm_active, self.alarm_unacked
        for i, block in enumerate(self.alarm_blocks):
            a, u = block.ACTIVE, block.UNACKED
            if a != active[i] or u != unacked[i]:
                self._alarm_change(
                    self.alarms[i][0], block, (active[i], unacked[i]), (a, u), now_ns
                )
                active[i], unacked[i] = a, u

    def _alarm_change(
        self,
        path: str,
        block: ALARM,
        old: tuple[bool, bool],
        new: tuple[bool, bool],
        now_ns: int,
    ) -> None:
        assert self.batch is not None
        episode = self.episodes.get(path)
        if new[0] and not old[0]:
            kinds = [k for k in ("HH", "H", "L", "LL", "BAD") if getattr(block, f"{k}_ACTIVE")]
            episode = {
                "alarm": path,
                "text": block.TEXT,
                "limits": kinds,
                "severity": block.SEVERITY,
                "activated": self._stamp(now_ns),
                "acknowledged": None,
                "cleared": None,
            }
            self.episodes[path] = episode
            self.batch["alarms"].append(episode)
        if episode is None:
            return
        if old[1] and not new[1] and episode["acknowledged"] is None:
            episode["acknowledged"] = {**self._stamp(now_ns), "by": None, "comment": "ACK input"}
        if old[0] and not new[0]:
            episode["cleared"] = self._stamp(now_ns)
            if episode["acknowledged"] is not None:
                self.episodes.pop(path, None)

    def _deviation(self, found: dict[str, Any]) -> None:
        assert self.batch is not None
        for key, name in (("start_ns", "start"), ("end_ns", "end"), ("extreme_ns", "extreme_at")):
            found[name] = self._stamp(found.pop(key))
        self.batch["deviations"].append(found)

    def _on_command(self, cmd: Any, old: Any, new: Any, signatures: list[dict[str, Any]]) -> None:
        """A command applied (scan thread, between two cycles): an operator action."""
        target = next(
            (getattr(cmd, k) for k in ("name", "point", "block") if hasattr(cmd, k)), None
        )
        action = {
            **self._stamp(),
            "command_id": cmd.id,
            "user": cmd.user,
            "cmd": cmd.cmd,
            "target": target,
            "command": getattr(cmd, "command", None),
            "old": old,
            "new": new,
            "why": cmd.reason,
            "signatures": signatures,
            "audited": self.audit is not None,
        }
        if self.batch is None:
            if cmd.cmd == "phase" and target == self.spec.phase:
                self.pending_start = action  # the START that opens the batch on this cycle
            return
        self._action(action)

    def _action(self, action: dict[str, Any]) -> None:
        batch = self.batch
        assert batch is not None
        batch["operator_actions"].append(action)
        cause = {"user": action["user"], "command_id": action["command_id"]}
        if action["cmd"] == "set_parameter":
            batch["parameters"]["changes"].append(
                {k: action[k] for k in ("t_s", "at", "user", "old", "new", "why", "signatures")}
                | {"name": action["target"], "command_id": action["command_id"]}
            )
        elif action["cmd"] == "phase" and action["target"] == self.spec.phase:
            batch["_cause"] = cause
        elif action["cmd"] == "ack_alarm":
            episode = self.episodes.get(str(action["target"]))
            if episode is not None and episode["acknowledged"] is None:
                stamp = {k: action[k] for k in ("t_s", "at")}
                episode["acknowledged"] = stamp | {"by": cause, "comment": action["why"]}
                if episode["cleared"] is not None:
                    self.episodes.pop(str(action["target"]), None)

    def _open(self, now_ns: int, *, continued: bool) -> None:
        app = self.engine.app
        wall = self.wall()
        t = now_ns / 1e9
        start = datetime.fromtimestamp(wall, UTC)
        batch: dict[str, Any] = {
            "_t0": t,
            "_wall0": wall,
            "_cause": None,
            "header": {
                "batch_id": next_batch_id(self.used_ids, self.spec.id_prefix, f"{start:%Y%m%d}"),
                "product": self.spec.product,
                "app": app.name,
                "version": app.version,
                "app_sha256": self.app_sha256,
                "image": os.environ.get(IMAGE_ENV) or "not in a container",
                "host": os.uname().nodename,
                "phase": self.spec.phase,
                "clock": "virtual (simulated time; UTC = wall clock at start + app time)"
                if self.virtual
                else "system clock, UTC",
                "start": {"t_s": round(t, 3), "at": start.isoformat(timespec="milliseconds")},
                "end": None,
                "continued": continued,
            },
            "timeline": [],
            "parameters": {
                "at_start": {n: p.value for n, p in app.parameters.items()},
                "changes": [],
            },
            "alarms": [],
            "deviations": [],
            "operator_actions": [],
            "specifications": [w.describe() for w in self.watches],
        }
        self.batch = batch
        for w in self.watches:
            w.reset()
        self.alarm_active = [bool(b.ACTIVE) for b in self.alarm_blocks]
        self.alarm_unacked = [bool(b.UNACKED) for b in self.alarm_blocks]
        for (path, block), active in zip(self.alarms, self.alarm_active, strict=True):
            if active:
                self._alarm_change(path, block, (False, False), (True, block.UNACKED), now_ns)
        if self.pending_start is not None:
            self._action(self.pending_start)
            self.pending_start = None

    def _close_batch(self, now_ns: int, status: str, note: str = "") -> None:
        batch = self.batch
        assert batch is not None
        for watch in self.watches:
            found = watch.finish(now_ns)
            if found is not None:
                self._deviation(found)
        batch["header"]["end"] = self._stamp(now_ns)
        record = {k: v for k, v in batch.items() if not k.startswith("_")}
        record["summary"] = _summary(record, status) | ({"note": note} if note else {})
        # Excursions that came back inside before their allowed time: not deviations, but a
        # reviewer sees how often the limit was touched.
        record["summary"]["excursions_within_allowance"] = {
            w.spec.name: w.short for w in self.watches
        }
        self.batch = None
        self.episodes = {}
        if self.virtual:
            self.held.append(record)
        else:
            self.queue.put(record)

    def _on_close(self, engine: ScanEngine) -> None:
        """Engine close (before outputs go safe): an open batch is recorded as not ended."""
        if self.batch is not None:
            note = (
                f"the runtime stopped while the phase was {self.phase.STATE_NAME}: the batch "
                "did not end in this run"
            )
            self._close_batch(engine.now_ns, "OPEN", note)

    # ---------------------------------------------------------------- writing
    def _write(self, record: dict[str, Any]) -> None:
        try:
            self.written.append(seal_and_write(record, self.directory, self.audit))
            self.log.info(
                "batch_record", batch_id=record["header"]["batch_id"], dir=str(self.directory)
            )
        except Exception as exc:  # a lost record must be visible: logged and reported
            self.errors.append(f"batch {record['header']['batch_id']}: {exc}")
            self.log.error(
                "batch_record_failed", batch_id=record["header"]["batch_id"], error=repr(exc)
            )

    def _writer(self) -> None:
        while (record := self.queue.get()) is not None:
            self._write(record)

    def close(self) -> list[Path]:
        """Write what is pending (after the engine closed); the paths written in this run."""
        for record in self.held:
            self._write(record)
        self.held = []
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        return self.written


def _summary(record: dict[str, Any], status: str) -> dict[str, Any]:
    header = record["header"]
    actions = record["operator_actions"]
    signers = {s["user_id"] for a in actions for s in a["signatures"]}
    operators = sorted({a["user"] for a in actions} | signers)
    header["operators"] = operators
    steps = [e["to"] for e in record["timeline"] if e["kind"] == "step"]
    return {
        "status": status,
        "duration_s": round(header["end"]["t_s"] - header["start"]["t_s"], 3),
        "steps": steps,
        "parameter_changes": len(record["parameters"]["changes"]),
        "alarms": len(record["alarms"]),
        "unacknowledged_alarms": sum(1 for a in record["alarms"] if a["acknowledged"] is None),
        "deviations": len(record["deviations"]),
        "operator_actions": len(actions),
        "signatures": sum(len(a["signatures"]) for a in actions),
        "operators": operators,
    }
