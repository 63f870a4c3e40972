"""A front-end child's end of the pipe: commands to the scan process, texts and stats from it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from typing import Any, Protocol

from runtime.ops._commands import CommandResponse

__all__ = ["ChildInit", "ChildLink"]


class ChildInit(Protocol):
    """What a front-end's init carries for its link: the values at spawn."""

    param_values: list[Any]
    phase_views: list[tuple[Any, Any]]
    engine_stats: dict[str, Any]
    wall0_ns: int


class ChildLink:
    """Speaks the pipe protocol of ``runtime.front._supervisor.FrontEnd`` from the child.

    In: ``resp`` (a command's or a query's answer), ``text`` (STRING points, alarm texts,
    parameters, phases, the fault reason: values that do not fit a shared-memory slot),
    ``stats`` (engine
    statistics and the app-time → wall-clock offset), ``stop``. Out: ``cmd``, ``query``,
    ``conn``, ``bstats``. Texts land in plain attributes the child's sampler reads, or, with
    ``on_text``, wherever the child keeps them.

    Read-after-write: a command's answer brings the texts it changed (a parameter's new
    value), stamped with the engine's ``change_seq`` at which it ran; they land before
    ``remote_apply`` returns. Every text is stamped with the ``change_seq`` of the sample
    that read it, and one older than what the child holds for the same slot is dropped: a
    text sampled before the command may reach the pipe after its answer (the scan queued it,
    the link thread sent the answer first), and would bring the old value back. Per slot,
    not globally: a text of another slot sampled before the command is still the newest of
    its own, and the scan sends a text only when the value changes, so dropping it would
    keep the child's copy wrong until the next change.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        timeout_s: float,
        param_values: Sequence[Any] = (),
        phase_views: Sequence[tuple[Any, Any]] = (),
        engine_stats: dict[str, Any] | None = None,
        wall0_ns: int = 0,
        on_text: Callable[[str, int, Any], None] | None = None,
    ) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._ids = itertools.count()
        self.done = threading.Event()
        self.eof = False  # the scan process went away (rather than saying stop)
        self.point_texts: dict[int, str] = {}
        self.alarm_texts: dict[int, str] = {}
        self.param_values: list[Any] = list(param_values)
        self.phase_views: list[tuple[Any, Any]] = list(phase_views)
        self.reason = ""
        self.engine_stats: dict[str, Any] = engine_stats or {}
        self.stats_seq = 0
        self.applied = 0  # commands answered so far: what was read before may have changed
        self.wall0_ns = wall0_ns
        self._on_text = on_text or self._keep_text
        # (what, idx) → the change_seq of the value the child holds (0: the spawn's values)
        self._seqs: dict[tuple[str, int], int] = {}
        self.stale_texts = 0  # texts dropped as older than an answer's value

    @classmethod
    def for_init(
        cls,
        conn: Connection,
        init: ChildInit,
        *,
        timeout_s: float,
        on_text: Callable[[str, int, Any], None] | None = None,
    ) -> ChildLink:
        """A link that starts from the values the child was spawned with."""
        return cls(
            conn,
            timeout_s=timeout_s,
            param_values=init.param_values,
            phase_views=init.phase_views,
            engine_stats=init.engine_stats,
            wall0_ns=init.wall0_ns,
            on_text=on_text,
        )

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock:  # Connection.send is not safe from several threads at once
            try:
                self.conn.send(msg)
            except (OSError, ValueError):
                self.eof = True
                self.done.set()  # the scan process is gone

    def remote_apply(self, cmd: Any) -> CommandResponse:
        """Hand an authorized command to the scan process and wait for its answer; what it
        changed (a parameter's value) is in this link's copy when it returns."""
        req = next(self._ids)
        fut: Future[dict[str, Any]] = Future()
        self._pending[req] = fut
        self.send(("cmd", req, cmd.model_dump(mode="json", exclude={"token"})))
        try:  # the parent answers within 2 × timeout_s (apply_command withdraws late ones)
            return CommandResponse.model_validate(fut.result(2 * self.timeout_s + 1))
        except FutureTimeout:
            return CommandResponse(
                id=cmd.id,
                cmd=cmd.cmd,
                user=cmd.user,
                status="refused",
                reason="no answer from the scan process; the outcome is unknown",
            )
        finally:
            self._pending.pop(req, None)
            self.applied += 1  # even unanswered: its outcome may still reach the scan

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        """Ask the scan process something the frame does not carry (``FrontEnd.answer_query``,
        between two cycles); blocking, so call it from a worker thread."""
        req = next(self._ids)
        fut: Future[dict[str, Any]] = Future()
        self._pending[req] = fut
        self.send(("query", req, body))
        try:
            return fut.result(2 * self.timeout_s + 1)
        except FutureTimeout:
            return {"error": "no answer from the scan process"}
        finally:
            self._pending.pop(req, None)

    def start(self, name: str) -> threading.Thread:
        """Read the pipe on a daemon thread named ``name``."""
        thread = threading.Thread(target=self.read_pipe, name=name, daemon=True)
        thread.start()
        return thread

    def read_pipe(self) -> None:
        """Until EOF or ``stop``."""
        while not self.done.is_set():
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self.eof = True  # the parent died (or closed its end): so do we
                self.done.set()
                return
            kind = msg[0]
            if kind == "resp":
                if len(msg) > 3:  # a command's: what it changed lands before anyone waits on
                    self._answered(msg[3], msg[4])
                fut = self._pending.get(msg[1])
                if fut is not None and not fut.done():
                    fut.set_result(msg[2])
            elif kind == "stats":
                self.engine_stats, self.wall0_ns = msg[1], msg[2]
                self.stats_seq += 1
            elif kind == "text":
                self._text(msg[1], msg[2], msg[3], msg[4])
            elif kind == "stop":
                self.done.set()

    def _text(self, what: str, idx: int, value: Any, seq: int) -> None:
        """A text sampled at ``seq``: kept unless the child holds a later value of the slot."""
        key = (what, idx)
        if seq < self._seqs.get(key, 0):
            self.stale_texts += 1  # read before a command whose answer came first
            return
        self._seqs[key] = seq
        self._on_text(what, idx, value)

    def _answered(self, seq: int, texts: Sequence[tuple[str, int, Any]]) -> None:
        """The texts a command changed, as the scan held them right after it ran (``seq``).
        A text sampled at ``seq`` or later already says as much or more: it wins a tie."""
        for what, idx, value in texts:
            key = (what, idx)
            if seq > self._seqs.get(key, 0):
                self._seqs[key] = seq
                self._on_text(what, idx, value)

    def _keep_text(self, what: str, idx: int, value: Any) -> None:
        if what == "point":
            self.point_texts[idx] = value
        elif what == "alarm":
            self.alarm_texts[idx] = value
        elif what == "param":
            self.param_values[idx] = value
        elif what == "phase":
            self.phase_views[idx] = value
        elif what == "reason":
            self.reason = value
