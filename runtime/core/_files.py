"""Opening a file a person named: never block on a FIFO, never read a device, bounded size."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["UnusableFileError", "open_regular", "read_regular"]


class UnusableFileError(OSError):
    """The path is a folder, a FIFO, a device or too large; ``strerror`` says which."""


def open_regular(path: Path | str) -> BinaryIO:
    """``path`` opened for reading in binary, after checking it is a regular file.

    Opened without blocking and judged on the open descriptor: a FIFO would block a plain
    open or read forever, ``/dev/zero`` would fill memory, and a path checked before opening
    may be replaced in between. OSError (FileNotFoundError, PermissionError,
    UnusableFileError …) when it cannot be used; ``strerror`` is the reason.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UnusableFileError(errno.EISDIR, "is a folder, not a file", str(path))
        if not stat.S_ISREG(mode):
            raise UnusableFileError(
                errno.EINVAL, "not a regular file (a FIFO or a device)", str(path)
            )
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` (OSError otherwise)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise UnusableFileError(
                errno.EFBIG, f"{size:,} bytes is more than the {max_bytes:,} accepted", str(path)
            )
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:  # grew while being read
        raise UnusableFileError(
            errno.EFBIG, f"more than the {max_bytes:,} bytes accepted", str(path)
        )
    return raw
