"""Retain: persist marked variables and parameters while RUN, written off the scan thread."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from runtime.core._engine import RuntimeState, ScanEngine
from runtime.core._loader import LoadedApp
from runtime.core._task import Task
from runtime.state import _file, _timebase, _tree
from runtime.state._merge import Prefer, brief
from runtime.state._warm import WarmStartError, plan_warm_start, retained_initials

StartMode = Literal["warm", "cold"]
OnBad = Literal["refuse", "cold"]
log = structlog.get_logger("vplc.retain")


class RetainError(Exception):
    """A retain file that must not be loaded, or a retain configuration that cannot work."""


@dataclass
class RetainLoadReport:
    """What ``RetainStore.load`` found and did; ``as_dict()`` is JSON-able for logs and CLI."""

    path: str
    mode: str
    started: str = "cold"
    source: str | None = None
    seq: int | None = None
    saved_version: str | None = None
    saved_at: str | None = None
    restored: int = 0
    converted: int = 0
    parameters: int = 0
    missing: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_aside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)  # the merge plan's summary

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetainStore:
    """The retain file of one app: ``load`` once before RUN, then ``attach`` to the engine.

    Files: ``path`` (latest) and ``path.prev`` (previous generation). Checkpoints are taken on
    the scan thread after a cycle of the fastest task (a dict of detached values, cheap) and
    written by a writer thread; when the writer is behind, the newest pending one wins.

    ``max_bytes``: the largest file loaded or written (default ``_file.size_cap`` of the
    declared variables and retained parameters), checked before a byte is read.
    A failed write is counted and logged once per episode (and once when writes succeed
    again); ``statistics()`` says whether checkpoints are failing now and why.
    """

    def __init__(self, path: Path | str, app: LoadedApp, *, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.app = app
        self._accessors: dict[str, _tree.Accessor] = {}
        self._plain: dict[str, _tree.Accessor] = {}
        self._clock: dict[str, _tree.Accessor] = {}
        self._initials: dict[str, dict[str, Any]] = {}
        self._resolved_for: LoadedApp | None = None
        self._resolve(app)
        retained_params = sum(1 for p in app.parameters.values() if p.spec.retain)
        self.max_bytes = max_bytes or _file.size_cap(len(self._accessors) + retained_params)
        self._seq = 0
        self._loaded = False
        self._engine: ScanEngine | None = None
        self._next_due_ns = 0
        self._was_running = False
        self._cond = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._closing = False
        self._busy = False
        self.checkpoints = 0
        self._writer: threading.Thread | None = None
        self.written = 0
        self.superseded = 0
        self.errors = 0
        self.last_write_s = 0.0
        self.last_error = ""
        self.last_load: RetainLoadReport | None = None
        self.failing = False  # the latest write failed: the file on disk is behind
        self.failure_episodes = 0
        self.last_ok_seq = 0  # seq of the newest checkpoint known to be on disk

    # --------------------------------------------------------------- what is retained
    def _resolve(self, app: LoadedApp) -> None:
        self._accessors = retained_leaves(app)
        clock = _tree.clock_paths(self._accessors)
        self._plain = {p: a for p, a in self._accessors.items() if p not in clock}
        self._clock = {p: a for p, a in self._accessors.items() if p in clock}
        self._initials = retained_initials(app, self._accessors)
        self._resolved_for = app
        self.app = app

    @property
    def variables(self) -> list[str]:
        """The retained leaf paths (blocks expanded to their variables)."""
        return list(self._accessors)

    def capture(self) -> dict[str, Any]:
        """The retained values now; call between cycles (scan thread, or engine not running)."""
        engine = self._engine
        if engine is not None and engine.app is not self._resolved_for:
            self._resolve(engine.app)  # an online change replaced the program instances
        params = {p.name: p.value for p in self.app.parameters.values() if p.spec.retain}
        now_ns = engine.now_ns if engine is not None else 0
        # App-time stamps are stored as ages (app time restarts at 0 in the next runtime) and
        # the version's initial values go along, for the merge of a warm start on another one.
        ages = _timebase.to_ages(_tree.read(self._clock), self._clock, now_ns)
        return {
            "app_version": self.app.version,
            "app_time_s": now_ns / 1e9,
            "data": {
                "variables": _tree.read(self._plain),
                "parameters": params,
                "clock": {"app_time_ns": now_ns, "ages": ages},
                "initials": self._initials,
            },
        }

    # --------------------------------------------------------------------- loading
    def load(
        self,
        *,
        mode: StartMode = "warm",
        on_bad: OnBad = "refuse",
        prefer: Prefer = None,
        strict: bool = False,
        now_ns: int = 0,
    ) -> RetainLoadReport:
        """Judge the files and, for a warm start, merge the retained values into the app.

        The saved values go through the three-way merge (``runtime.state._merge``) against
        the initial values of the version that wrote them: a value the new version gives a
        new initial is taken from it unless it was changed at run time (a conflict:
        ``prefer`` decides; ``strict`` refuses one left open). Ages of app-time stamps become
        stamps of app time ``now_ns`` (0: before the first cycle of a fresh runtime).

        A bad latest file (corrupt, truncated, foreign app, other schema, values that do not
        fit this version) raises RetainError with ``on_bad="refuse"``, touching nothing; with
        ``on_bad="cold"`` it is renamed to ``*.bad-<UTC time>`` and the start is cold.
        """
        if mode not in ("warm", "cold") or on_bad not in ("refuse", "cold"):
            raise ValueError(f"mode must be warm|cold and on_bad refuse|cold, got {mode}/{on_bad}")
        report = RetainLoadReport(path=str(self.path), mode=mode)
        chosen, other = _file.latest(self.path, app=self.app.name, max_bytes=self.max_bytes)
        for j in (chosen, other):
            if j is not None and j.unusable:  # never loaded, renamed or replaced, any mode
                raise RetainError(
                    f"retain path {j.path} {j.problem}. Nothing was started: give a regular "
                    "file's path with --retain-file (or VPLC_STATE_DIR), or remove what is there."
                )
        if chosen is not None and not chosen.ok and mode == "warm" and on_bad == "refuse":
            raise RetainError(_refusal(chosen, other))  # before touching anything
        if chosen is not None and chosen.ok and mode == "warm":
            try:
                self._apply(chosen, report, prefer=prefer, strict=strict, now_ns=now_ns)
            except RetainError as exc:
                if on_bad == "refuse":
                    raise
                report.problems.append(str(exc))
                report.moved_aside.append(str(_move_aside(chosen.path)))
        for j in (chosen, other):
            if j is not None and j.ok and j.doc is not None:
                self._seq = max(self._seq, int(j.doc["seq"]))
                self.last_ok_seq = self._seq
            elif j is not None and j.path.exists():
                # Not loaded, but kept for inspection rather than rotated away by a write.
                report.problems.append(f"{j.path}: {j.problem}")
                report.moved_aside.append(str(_move_aside(j.path)))
        self._loaded = True
        log.info(
            "retain_loaded",
            app=self.app.name,
            path=str(self.path),
            mode=mode,
            started=report.started,
            seq=report.seq,
            saved_version=report.saved_version,
            restored=report.restored,
            converted=report.converted,
            missing=len(report.missing),
            dropped=len(report.dropped),
            moved_aside=report.moved_aside,
            notes=report.notes,
            plan=brief(report.plan) if report.plan else None,
        )
        self.last_load = report
        return report

    def _apply(
        self,
        judged: _file.Judgement,
        report: RetainLoadReport,
        *,
        prefer: Prefer,
        strict: bool,
        now_ns: int,
    ) -> None:
        doc = judged.doc
        assert doc is not None
        where = (
            f"retain file {judged.path} (app {doc['app']} {doc['app_version']}, seq {doc['seq']})"
        )
        try:
            warm = plan_warm_start(
                self.app, self._accessors, doc, prefer=prefer, strict=strict, now_ns=now_ns
            )
        except WarmStartError as exc:
            raise RetainError(
                f"{where} cannot be merged into {self.app.name} {self.app.version}: {exc}. "
                "Nothing was restored."
            ) from None
        plan = warm.plan
        if not plan.ok:
            raise RetainError(
                f"{where} does not fit {self.app.name} {self.app.version}: "
                + "; ".join(plan.problems())
                + ". Nothing was restored. Start cold (--cold) or with --on-bad-retain cold "
                "to keep the file aside for inspection."
            )
        # only once everything fits: never a half-restored state
        _tree.assign((*self._accessors[p], v) for p, v in warm.variables.items())
        for name, value in warm.parameters.items():
            self.app.parameters[name].value = value
        report.started = "warm"
        report.source = str(judged.path)
        report.seq = doc["seq"]
        report.saved_version = doc["app_version"]
        report.saved_at = doc.get("saved_at")
        report.restored = len(warm.variables)
        report.converted = sum("converted" in d.note for d in plan.decisions)
        report.parameters = len(warm.parameters)
        report.missing = [d.path for d in plan.of("added")]
        report.dropped = [d.path for d in plan.of("dropped")]
        report.plan = plan.summary()
        if warm.legacy_initials:
            report.notes.append(
                "the file records no initial values (written by an older vplc): every saved "
                "value was kept, none replaced by a new initial value"
            )
        if warm.legacy_clock:
            report.notes.append("app-time stamps converted to ages from the file's app time")

    # --------------------------------------------------------------------- writing
    def write(self, state: dict[str, Any]) -> int:
        """Write one captured state as the next generation (blocking: writer thread, tests)."""
        if not self._loaded:
            raise RuntimeError("RetainStore.load() must judge the existing files before writing")
        self._seq += 1
        doc = dict(
            state,
            app=self.app.name,
            seq=self._seq,
            saved_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        t0 = time.perf_counter()
        size = _file.write(self.path, doc, max_bytes=self.max_bytes)
        self.last_write_s = time.perf_counter() - t0
        self.written += 1
        self.last_ok_seq = self._seq
        return size

    def attach(self, engine: ScanEngine) -> None:
        """Checkpoint at the first cycle in RUN, then every ``retain.interval_s`` of app time in
        RUN, on RUN→STOP and on close: a kill loses at most one interval of progress."""
        if not self._loaded:
            raise RuntimeError("RetainStore.load() must run before attach()")
        self._engine = engine
        self._resolve(engine.app)
        interval_ns = round(self.app.manifest.retain.interval_s * 1e9)
        self._next_due_ns = engine.now_ns  # due at once: the start-up values reach the disk

        def hook(task: Task, now_ns: int) -> None:
            running = engine.state is RuntimeState.RUN
            if running and now_ns >= self._next_due_ns:
                self._next_due_ns = now_ns + interval_ns
                self._submit(self.capture())
            elif self._was_running and engine.state is RuntimeState.STOP:
                self._submit(self.capture())  # a clean stop: keep the values it stopped with
            self._was_running = running

        engine.add_cycle_hook(hook)
        engine.add_close_hook(lambda e: self.close())
        engine.add_statistics("retain", self.statistics)  # stats JSON, heartbeat, MQTT
        self._writer = threading.Thread(target=self._drain, name="retain-writer", daemon=True)
        self._writer.start()

    def _submit(self, state: dict[str, Any]) -> None:
        with self._cond:
            self.checkpoints += 1
            if self._pending is not None:
                self.superseded += 1
            self._pending = state
            self._cond.notify_all()

    def _drain(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                state, self._pending = self._pending, None
                if state is None:
                    return
                self._busy = True
            try:
                self.write(state)
            except Exception as exc:  # a full disk must not stop the plant: count and report
                self._failed(exc)
            else:
                self._recovered()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _failed(self, exc: Exception) -> None:
        reason = _reason(exc)
        self.errors += 1
        if not self.failing or reason != self.last_error:  # once per episode and reason
            log.error(
                "retain_checkpoint_failed",
                path=str(self.path),
                reason=reason,
                on_disk_seq=self.last_ok_seq,
                consequence="retained values on disk stop advancing until a write succeeds",
            )
        if not self.failing:
            self.failure_episodes += 1
        self.failing = True
        self.last_error = reason

    def _recovered(self) -> None:
        if self.failing:
            self.failing = False
            log.warning(
                "retain_checkpoint_recovered",
                path=str(self.path),
                seq=self.last_ok_seq,
                failed_so_far=self.errors,
                last_error=self.last_error,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every checkpoint handed over so far is on disk; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Final checkpoint (unless in FAULT: a faulted cycle may be half-done), then join."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if engine.state is not RuntimeState.FAULT:
            self._engine = engine  # capture() reads app time from it
            self._submit(self.capture())
            self._engine = None
        else:
            log.warning("retain_final_skipped", reason="FAULT", kept=str(self.path))
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(timeout)
            if self._writer.is_alive():  # a hung disk: say so rather than claim it is saved
                self._failed(TimeoutError(f"final checkpoint not on disk after {timeout:g} s"))

    def statistics(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "variables": len(self._accessors),
            "checkpoints": self.checkpoints,
            "written": self.written,
            "superseded": self.superseded,
            "errors": self.errors,
            "failing": self.failing,
            "failure_episodes": self.failure_episodes,
            "last_error": self.last_error,
            "last_write_ms": round(self.last_write_s * 1000, 3),
            "seq": self._seq,
            "on_disk_seq": self.last_ok_seq,
            "max_bytes": self.max_bytes,
        }


def retained_leaves(app: LoadedApp) -> dict[str, _tree.Accessor]:
    """Expand the manifest's ``retain.variables`` to leaves (an unknown path is an error), and
    add the global variables declared with ``retain: true``."""
    tree = app.tree
    everything = tree.leaves()
    chosen: dict[str, _tree.Accessor] = tree.global_leaves(retained_only=True)
    for i, prefix in enumerate(app.manifest.retain.variables):
        found = _tree.select(everything, prefix)
        if not found:
            program = prefix.split(".", 1)[0].split("[", 1)[0]
            near = sorted(p for p in everything if p.startswith(program + "."))[:8]
            raise RetainError(
                f"{app.app_dir / 'app.yaml'}: at retain.variables.{i}: {prefix!r} names no "
                f"variable or block instance (known paths include: {', '.join(near) or 'none'})"
            )
        chosen.update(found)
    return chosen


def _reason(exc: Exception) -> str:
    """One line for a failed write: the OS reason with the file, or the checkpoint's problem."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    path.rename(target)
    log.warning("retain_file_moved_aside", path=str(path), to=str(target))
    return target


def _refusal(bad: _file.Judgement, other: _file.Judgement | None) -> str:
    hint = ""
    if other is not None and other.ok and other.doc is not None:
        hint = (
            f" The previous generation {other.path} (seq {other.doc['seq']}, saved "
            f"{other.doc.get('saved_at')}) is intact; copy it over the bad file to start from it."
        )
    return (
        f"retain file {bad.path} cannot be loaded: {bad.problem}. It was left untouched and "
        "nothing was started. Start cold with --cold, or with --on-bad-retain cold to start "
        "with initial values and keep the file renamed to *.bad-<time> for inspection." + hint
    )
