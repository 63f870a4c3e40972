"""The audit trail's signed head, published retained on ``P/audit/head`` (an anchor off the node).

A truncated or rewritten trail no longer matches its head file; an attacker who can also
replace the head file with an older one (and cut the trail back to it) is caught by a copy of
the head kept elsewhere: every subscriber (a historian, the HMI, a second broker) holds the
latest one, and ``vplc audit verify --head`` checks a trail against such a copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.ops._audit import AuditLog
from runtime.ops._audit_format import encode

__all__ = ["AuditHeadPublisher"]

Publish = Callable[[str, bytes], Awaitable[Any]]


class AuditHeadPublisher:
    """Publish the head at connect and after each append (``AuditLog.add_listener``).

    ``run(publish)`` is one task of a session: ``publish(topic, payload)`` must send retained
    with QoS 1. Appends happen on other threads; they only wake this task.
    """

    def __init__(self, audit: AuditLog, topic: str) -> None:
        self.audit, self.topic = audit, topic
        self.published = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        audit.add_listener(self._appended)

    def _appended(self, head: dict[str, Any]) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def run(self, publish: Publish) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        sent: Any = None
        while True:
            head = self.audit.head_record()
            if head is not None and head != sent:
                await publish(self.topic, encode(head))
                sent = head
                self.published += 1
            await self._wake.wait()
            self._wake.clear()
