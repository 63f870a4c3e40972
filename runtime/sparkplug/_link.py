"""The edge node process's end of the pipe: commands to the scan process, texts and stats back.

The pipe protocol is runtime.mqtt._process.ProcessBridge's (the MQTT child and the OPC UA
server speak it too). In: ``resp``, ``text``, ``stats``, ``stop``; out: ``cmd``, ``conn``,
``bstats``. (runtime/front's ChildLink replaces this once it lands.)
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from typing import Any

from runtime.ops._commands import CommandResponse
from runtime.sparkplug._init import SparkplugInit

__all__ = ["Link"]


class Link:
    """Sends commands and waits for their answers; keeps the parent's texts and statistics."""

    def __init__(self, conn: Connection, init: SparkplugInit, *, timeout_s: float) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._ids = itertools.count()
        self.done = threading.Event()
        self.point_texts: dict[int, str] = {}
        self.param_values: list[Any] = list(init.param_values)
        self.reason = ""
        self.engine_stats: dict[str, Any] = init.engine_stats
        self.wall0_ns = init.wall0_ns

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock:  # Connection.send is not safe from several threads at once
            try:
                self.conn.send(msg)
            except (OSError, ValueError):
                self.done.set()  # the scan process is gone

    def remote_apply(self, cmd: Any) -> CommandResponse:
        """Hand an authorized command to the scan process and wait for its answer."""
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

    def read_pipe(self) -> None:
        """Thread: until EOF or ``stop``."""
        while not self.done.is_set():
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self.done.set()
                return
            kind = msg[0]
            if kind == "resp":
                fut = self._pending.get(msg[1])
                if fut is not None and not fut.done():
                    fut.set_result(msg[2])
            elif kind == "stats":
                self.engine_stats, self.wall0_ns = msg[1], msg[2]
            elif kind == "text":
                what, idx, value = msg[1], msg[2], msg[3]
                if what == "point":
                    self.point_texts[idx] = value
                elif what == "param":
                    self.param_values[idx] = value
                elif what == "reason":
                    self.reason = value
            elif kind == "stop":
                self.done.set()
