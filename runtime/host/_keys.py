"""Single key presses from a terminal for the live view, without echo and without Enter."""

from __future__ import annotations

import os
import select
import termios
import tty
from types import TracebackType
from typing import Any

__all__ = ["KeyReader"]

# Escape sequences of the paging keys, as xterm-compatible terminals send them.
_SEQUENCES = {"\x1b[5~": "pgup", "\x1b[6~": "pgdn", "\x1b[A": "up", "\x1b[B": "down"}


class KeyReader:
    """Puts a terminal in cbreak mode while in use (Ctrl-C still raises SIGINT) and restores
    its settings on exit, whatever happens. Not a terminal (a pipe, CI): ``active`` is False
    and ``read`` only waits."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.active = os.isatty(fd)
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        if self.active:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self, timeout: float) -> list[str]:
        """The keys pressed, waiting at most ``timeout`` seconds for the first one."""
        if not self.active:
            select.select([], [], [], timeout)
            return []
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.fd, 64).decode(errors="replace")
        return _split(data)


def _split(data: str) -> list[str]:
    """Single characters, and the escape sequences of paging keys as names."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        for seq, name in _SEQUENCES.items():
            if data.startswith(seq, i):
                keys.append(name)
                i += len(seq)
                break
        else:
            keys.append(data[i])
            i += 1
    return keys
