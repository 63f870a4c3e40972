"""Handles that detach what was attached to the engine (a cycle hook, a program guard, ...)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Handle:
    """Detaches one attachment when ``remove()`` is called; from any thread, idempotent.

    The engine's lists are copy-on-write tuples: ``remove`` binds a new tuple, so a cycle
    that already took the old one may call a removed hook once more; never afterwards.
    """

    __slots__ = ("_lock", "_undo")

    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo: Callable[[], None] | None = undo
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._undo is not None

    def remove(self) -> None:
        with self._lock:
            undo, self._undo = self._undo, None
        if undo is not None:
            undo()


def attach(lock: threading.Lock, owner: object, attr: str, item: Any) -> Handle:
    """Append ``item`` to the tuple ``owner.<attr>`` (copy-on-write, under ``lock``).

    Readers (the scan) take the tuple without a lock and never see it change under them;
    the handle removes this one attachment (the same item may be attached twice).
    """
    with lock:
        setattr(owner, attr, (*getattr(owner, attr), item))

    def undo() -> None:
        with lock:
            items = list(getattr(owner, attr))
            items.remove(item)
            setattr(owner, attr, tuple(items))

    return Handle(undo)
