"""One answer per distinct question to the scan process, shared by every browser asking it.

Each page polls (the Overview its loops every second, the Engineering page the histograms
and its watch list): without sharing, five browsers make five times the queries, and each
one is work in the scan process. Here a question asked again within ``SHARE_S`` of the last
answer, or while that answer is on its way, gets the same answer: the scan process sees at
most one query per distinct question per ``SHARE_S``, whatever the number of browsers. A
command applied since (a write through this process) makes the next question fresh, so a
browser sees the effect of its own write at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SHARE_S", "SharedQueries"]

SHARE_S = 0.5  # the pages poll every 1-2 s: half a second more age is not visible
_MAX_ENTRIES = 256  # distinct questions remembered (watch lists are the browser's choice)


@dataclass
class _Entry:
    done_at: float | None  # monotonic time of the answer; None while it is on its way
    generation: int  # commands applied when it was asked
    task: asyncio.Future[dict[str, Any]] | None


class SharedQueries:
    """Coalesces identical queries (``ask`` runs on a worker thread: it blocks on the pipe).

    ``generation`` counts the commands applied so far (``ChildLink.applied``); answers with
    an ``error`` are never shared beyond the requests that waited for them.
    """

    def __init__(
        self,
        ask: Callable[[dict[str, Any]], dict[str, Any]],
        generation: Callable[[], int],
        *,
        share_s: float = SHARE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask, self._generation = ask, generation
        self.share_s, self._clock = share_s, clock
        self._entries: dict[str, _Entry] = {}
        self.asked = 0  # queries sent to the scan process
        self.shared = 0  # requests answered with another request's answer

    async def get(self, body: dict[str, Any]) -> dict[str, Any]:
        key = json.dumps(body, sort_keys=True)
        entry = self._entries.get(key)
        if entry is not None and self._fresh(entry):
            self.shared += 1
        else:
            self._prune()
            entry = _Entry(None, self._generation(), None)
            self._entries[key] = entry
            self.asked += 1
            # Its own task: a browser that goes away does not cancel the others' answer.
            entry.task = asyncio.ensure_future(self._run(key, body, entry))
        assert entry.task is not None
        return await asyncio.shield(entry.task)

    async def _run(self, key: str, body: dict[str, Any], entry: _Entry) -> dict[str, Any]:
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, self._ask, body)
        except BaseException:
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise
        entry.done_at = self._clock()
        if "error" in answer and self._entries.get(key) is entry:
            del self._entries[key]
        return answer

    def _fresh(self, entry: _Entry) -> bool:
        if entry.generation != self._generation():
            return False
        return entry.done_at is None or self._clock() - entry.done_at < self.share_s

    def _prune(self) -> None:
        if len(self._entries) < _MAX_ENTRIES:
            return
        now = self._clock()
        for key, entry in list(self._entries.items()):
            if entry.done_at is not None and now - entry.done_at >= self.share_s:
                del self._entries[key]
        while len(self._entries) >= _MAX_ENTRIES:  # all in flight or fresh: the oldest go
            del self._entries[next(iter(self._entries))]

    def statistics(self) -> dict[str, int]:
        return {"asked": self.asked, "shared": self.shared, "remembered": len(self._entries)}
