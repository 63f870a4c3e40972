"""A front-end's child process: spawned, fed by the shared frame, supervised, restarted."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from runtime.core._rt import follow_scan_realtime
from runtime.front._hub import Feed, frame_hub
from runtime.ops._command_handler import _ADAPTER
from runtime.ops._commands import CommandResponse, SetParameterCommand, apply_command

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["FrontEnd", "FrontEndConfig"]

Answered = tuple[str, int, Any]  # a text a command changed: (what, index, value)
_POLL_S = 0.02  # how often the link thread looks at the pipe and the text side channel
_RESTART_MIN_S, _RESTART_MAX_S = 0.5, 30.0
_HEALTHY_S = 30.0  # a child that ran this long resets the restart backoff


class FrontEndConfig(Protocol):
    """What the supervision reads of a front-end's configuration."""

    @property
    def sample_ms(self) -> float: ...  # how often the child wants a fresh frame
    @property
    def stats_s(self) -> float: ...  # how often the engine statistics go down the pipe
    @property
    def command_timeout_s(self) -> float: ...


class FrontEnd:
    """The scan-process side of a network front-end whose work runs in a spawned child.

    The scan thread pays only for the engine's one FrameWriter (``runtime.front._hub``),
    shared with every other front-end. Here a link thread applies the child's authorized
    commands with ``apply_command`` (between cycles), sends the texts that do not fit the
    frame and the engine statistics down the pipe, and restarts a child that died, with
    backoff. The pipe protocol (``runtime.front._link.ChildLink`` is the child's end):

    - to the child: ``("resp", req, response)`` (a query's), ``("resp", req, response,
      seq, texts)`` (a command's: the engine's ``change_seq`` at which it ran, and the texts
      it changed, read right then), ``("text", what, idx, value, seq)``,
      ``("stats", engine_statistics, wall0_ns)``, ``("stop",)``;
    - from it: ``("cmd", req, body)``, ``("query", req, body)`` (what the frame does not
      carry: block internals, histograms; answered by ``answer_query``), ``("conn", up)``,
      ``("bstats", statistics)``.

    The sequence numbers give read-after-write without any child's help: a text sampled
    before a command ran may still be queued when the command's answer goes down the pipe;
    ``ChildLink`` keeps the answer's value and drops that older text (``runtime.front._link``).

    A subclass names itself (``child_kind``, also the prefix of its log events) and says what
    its child gets at spawn (``child_init``, pickled once) and runs (``child_target``).
    """

    child_kind = "front"
    child_target: Callable[[Connection, Any], None]

    def __init__(
        self, engine: ScanEngine, config: FrontEndConfig, *, log_format: str = "console"
    ) -> None:
        self.engine, self.log_format = engine, log_format
        self.log = structlog.get_logger(f"vplc.{self.child_kind}").bind(
            app=engine.app.name, mode="process"
        )
        self.sample_ns = round(config.sample_ms * 1e6)
        self.stats_s, self.command_timeout_s = config.stats_s, config.command_timeout_s
        self.feed: Feed | None = None  # subscribed by start()
        self.connected = threading.Event()
        self.restarts = 0
        self._child_stats: dict[str, Any] = {}
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._stopping = threading.Event()
        self._link: threading.Thread | None = None
        self.link_sched: str | None = None  # the link thread's scheduling, once the scan's is

    # ------------------------------------------------------------------ the subclass's part
    def child_init(self, feed: Feed) -> Any:
        """What the child needs (picklable), read from the engine at each spawn."""
        raise NotImplementedError

    def answer_query(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to a child's ``query`` (on the link thread; read the engine between
        cycles, e.g. with ``engine.submit``). A front-end without queries refuses them."""
        return {"error": f"the {self.child_kind} front-end answers no queries"}

    def link_texts(self) -> list[tuple[str, int, Any]]:
        """Texts of the subclass's own for this turn of the link thread (``("text", *t)`` to
        the child), e.g. values read between cycles that the frame does not carry."""
        return []

    def after_stop(self) -> None:
        """Called once the child is gone (its last statistics are in)."""

    @property
    def child_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Subscribe to the frame, spawn the child and the link thread; returns at once."""
        if self._link is not None:
            return
        self.feed = frame_hub(self.engine).subscribe(self.sample_ns)
        self._stopping.clear()
        self._spawn()
        self._link = threading.Thread(
            target=self._run_link,
            name=f"{self.child_kind}-link-{self.engine.app.name}",
            daemon=True,
        )
        self._link.start()

    def stop(self, timeout: float = 5.0) -> None:
        """The child sends its last values and says goodbye, then exits; unsubscribe."""
        if self._link is None:
            return
        self._stopping.set()
        self._link.join(timeout)
        self._link = None
        feed = self.feed
        assert feed is not None
        feed.write_now()  # with the scan stopped: the safe outputs, for the goodbye
        self._stop_child(feed, timeout)
        self.connected.clear()
        feed.close()
        self.after_stop()

    def _stop_child(self, feed: Feed, timeout: float) -> None:
        proc, conn = self._proc, self._conn
        if conn is not None:
            deadline = time.monotonic() + timeout
            try:
                side = feed.side.queue
                while side:
                    conn.send(("text", *side.popleft()))
                conn.send(("stop",))
                while proc is not None and time.monotonic() < deadline:
                    if conn.poll(0.05):
                        self._handle(conn.recv())  # its final statistics; EOF when it exits
                    elif not proc.is_alive():
                        break
            except (EOFError, OSError):
                pass
        if proc is not None:
            proc.join(timeout)
            if proc.is_alive():
                self.log.warning(f"{self.child_kind}_child_kill", pid=proc.pid)
                proc.kill()
                proc.join(1)
        if conn is not None:
            conn.close()

    def statistics(self) -> dict[str, Any]:
        proc = self._proc
        return {
            **self._child_stats,
            "connected": self.connected.is_set(),
            "process": {
                "pid": proc.pid if proc else None,
                "alive": bool(proc and proc.is_alive()),
                "restarts": self.restarts,
            },
            "writer": self.feed.statistics() if self.feed is not None else {},
            "link_sched": self.link_sched,
        }

    def wait_started(self, timeout: float) -> bool:
        """True once the child reports itself up (its first ``conn``), False after ``timeout``."""
        return self.connected.wait(timeout)

    # ------------------------------------------------------------------ the child
    def _wall0(self) -> int:
        engine = self.engine
        return time.time_ns() - (engine.clock.now_ns() - engine.epoch_ns)

    def _spawn(self) -> None:
        # 'spawn', not fork: the scan process has threads (and a fork would copy their locks).
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        feed = self.feed
        assert feed is not None
        feed.resend_texts()
        init = self.child_init(feed)
        proc = ctx.Process(
            target=type(self).child_target,
            args=(theirs, init),
            name=f"vplc-{self.child_kind}-{self.engine.app.name}",
        )
        # daemon: multiprocessing terminates it at interpreter exit if stop() was skipped.
        proc.daemon = True
        proc.start()
        theirs.close()  # only the child holds its end: our exit is its EOF, and vice versa
        self._proc, self._conn = proc, mine

    def _run_link(self) -> None:
        backoff = _RESTART_MIN_S
        started = time.monotonic()
        next_stats = 0.0
        while not self._stopping.is_set():
            if self.link_sched is None:
                self._follow_scan()
            proc, conn = self._proc, self._conn
            if proc is None or conn is None or not proc.is_alive():
                if time.monotonic() - started > _HEALTHY_S:
                    backoff = _RESTART_MIN_S
                if not self._restart(proc, conn, backoff):
                    return
                backoff = min(backoff * 2, _RESTART_MAX_S)
                started = time.monotonic()
                continue
            try:
                next_stats = self._exchange(conn, next_stats)
            except (EOFError, OSError):
                # Broken pipe: the child is dying; the next turn restarts it once it is gone.
                proc.join(1)
                if proc.is_alive():
                    proc.kill()
                    proc.join(1)

    def _follow_scan(self) -> None:
        """Once the scan thread has its real-time settings: this thread follows them
        (``runtime.core._rt.follow_scan_realtime``: it shares the scan's GIL)."""
        tid = self.engine.scan_thread_id
        if tid is None:
            return  # not started yet (or scanning on the caller's thread): ask next turn
        self.link_sched = follow_scan_realtime(tid) or "SCHED_OTHER"
        self.log.info(f"{self.child_kind}_link_sched", sched=self.link_sched)

    def _restart(self, proc: BaseProcess | None, conn: Connection | None, backoff: float) -> bool:
        """Respawn a dead child after ``backoff``; False when stopping meanwhile."""
        self.connected.clear()
        exitcode = proc.exitcode if proc is not None else None
        self.log.error(f"{self.child_kind}_child_died", exitcode=exitcode, restart_in_s=backoff)
        if conn is not None:
            conn.close()
        if self._stopping.wait(backoff):
            return False
        self.restarts += 1
        self._spawn()
        self.log.warning(
            f"{self.child_kind}_child_restarted", pid=self.child_pid, restarts=self.restarts
        )
        return True

    def _exchange(self, conn: Connection, next_stats: float) -> float:
        """One turn of the link: the child's messages in, texts and statistics out."""
        timeout = _POLL_S
        while conn.poll(timeout):
            self._handle(conn.recv())
            timeout = 0
        feed = self.feed
        assert feed is not None
        side = feed.side
        if side.overflowed:
            feed.resend_texts()  # texts were dropped while nobody drained: all of them again
        while side.queue:
            conn.send(("text", *side.queue.popleft()))
        seq = self.engine.change_seq  # read before them: never claims they are newer
        for text in self.link_texts():
            conn.send(("text", *text, seq))
        now = time.monotonic()
        if now >= next_stats:
            next_stats = now + self.stats_s
            conn.send(("stats", self.engine.statistics(), self._wall0()))
        return next_stats

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "cmd":
            _, req, body = msg
            assert self._conn is not None
            resp, seq, texts = self._apply(body)
            self._conn.send(("resp", req, resp.model_dump(mode="json"), seq, texts))
        elif kind == "query":
            _, req, body = msg
            assert self._conn is not None
            self._conn.send(("resp", req, self.answer_query(body)))
        elif kind == "conn":
            if msg[1]:
                self.connected.set()
            else:
                self.connected.clear()
        elif kind == "bstats":
            self._child_stats = msg[1]

    def _apply(self, body: dict[str, Any]) -> tuple[CommandResponse, int, list[Answered]]:
        """Apply a command the child already authorized (and audits): between two cycles.
        Also the engine's ``change_seq`` at which it ran and the texts it changed (0 and none
        unless it took effect)."""
        try:
            # Validated again here: the pipe is a boundary, and models are rebuilt from JSON.
            cmd = _ADAPTER.validate_python(body)
        except Exception as exc:
            resp = CommandResponse(id=body.get("id"), status="refused", reason=f"bad: {exc}")
            return resp, 0, []
        outcome: list[tuple[int, list[Answered]]] = []

        def applied(engine: ScanEngine) -> None:  # the scan thread, right after the command
            outcome.append((engine.change_seq, self._changed_texts(engine, cmd)))

        resp = apply_command(self.engine, cmd, timeout_s=self.command_timeout_s, on_applied=applied)
        if resp.status != "accepted" or not outcome:
            return resp, 0, []
        seq, texts = outcome[0]
        return resp, seq, texts

    def _changed_texts(self, engine: ScanEngine, cmd: Any) -> list[Answered]:
        """The texts ``cmd`` changed, as the scan holds them now: a parameter's new value
        (the child's copy is a text; points and alarms come with the next frame)."""
        feed = self.feed
        if not isinstance(cmd, SetParameterCommand) or feed is None:
            return []
        param = engine.app.parameters.get(cmd.name)  # the running version's, as the writer's
        # The frame's slot of that name (fixed when the frame was made; names are followed).
        names = [name for name, _ in feed.layout().params]
        if param is None or cmd.name not in names:
            return []
        return [("param", names.index(cmd.name), param.value)]
