"""One runtime per retain file: an exclusive lock on ``<file>.lock`` for the process's life.

Two runtimes of one app on one retain file would overwrite each other's checkpoints, and in a
plant they would drive the same outputs. The second is refused before it loads anything. The
lock is the kernel's (``flock``), so a runtime killed with SIGKILL or by a power cut leaves
no lock behind; the lock file's text (pid, host, start time) only names the holder.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from runtime.state.retain import RetainError

__all__ = ["claim_retain_file", "release_retain_file"]

# path of the retain file → the descriptor that holds its lock (kept open until release)
_held: dict[Path, int] = {}


def claim_retain_file(path: Path) -> None:
    """Lock ``path`` for this process; RetainError (exit 2) naming the holder if taken."""
    path = path.absolute()
    if path in _held:
        return
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise RetainError(
            f"retain file {path}: cannot open its lock file {lock}: {exc.strerror or exc}; "
            "give another --retain-file or VPLC_STATE_DIR, or fix the folder's rights"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RetainError(
            f"retain file {path} is in use by another runtime ({holder}): two runtimes on one "
            "retain file would overwrite each other's checkpoints and drive the same outputs, "
            "so this one was not started. Stop the other one first, or give this one its own "
            "--retain-file or VPLC_STATE_DIR"
        ) from None
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0)
    _held[path] = fd


def release_retain_file(path: Path) -> None:
    """Give the lock back (the process's exit does the same)."""
    fd = _held.pop(path.absolute(), None)
    if fd is not None:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"
