"""The web process's end of the pipe: the OPC UA server's Link plus alarm texts and queries."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from typing import Any, cast

from runtime.opcua._link import Link
from runtime.web._init import WebInit

__all__ = ["WebLink"]


class WebLink(Link):
    """Adds what the pages need beyond the OPC UA server: alarm texts and between-cycle queries.

    A query (``("query", req, body)``) is answered with an ordinary ``resp`` message, so it
    shares the command answers' bookkeeping (``_pending`` by request id).
    """

    def __init__(self, conn: Connection, init: WebInit, *, timeout_s: float) -> None:
        super().__init__(conn, cast(Any, init), timeout_s=timeout_s)
        self.alarm_texts: dict[int, str] = {}

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        """Ask the scan process (blocking: run it on a worker thread)."""
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

    def _text(self, what: str, idx: int, value: Any) -> None:
        if what == "alarm":
            self.alarm_texts[idx] = value
        else:
            super()._text(what, idx, value)
