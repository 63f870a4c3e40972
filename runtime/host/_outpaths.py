"""Output paths of a command (trace, stats JSON, heartbeat, report folder), proven writable
before anything runs, so a typo costs seconds, not a whole run and its summary."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["OutputPathError", "check_output_dir", "check_output_file", "describe_os_error"]

_PROBE = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC


class OutputPathError(Exception):
    """An output path no write could succeed on; ``str()`` names the flag and the path."""


def describe_os_error(exc: OSError) -> str:
    """``strerror`` (and the file when it is not already said), without Python's repr."""
    return exc.strerror or str(exc) or type(exc).__name__


def check_output_file(flag: str, path: Path, *, replaced: bool = False) -> None:
    """Refuse an output file that cannot be written.

    ``replaced``: the file is written as a temporary file next to it and renamed (heartbeat),
    so the folder must take new files and the path must not be anything but a regular file.
    Otherwise devices and pipes with a reader are fine (``/dev/null`` for a trace). A file the
    probe creates is removed again, so a refused or failed run leaves no empty output behind.
    """
    where = f"{flag} {path}"
    folder = path.parent
    try:
        if not stat.S_ISDIR(os.stat(folder).st_mode):
            raise OutputPathError(f"{where}: {folder} is not a folder")
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not os.path.isdir(folder):
            raise OutputPathError(f"{where}: folder {folder} does not exist") from None
        mode = 0
    except OSError as exc:  # a name too long, a file used as a folder, no access
        raise OutputPathError(f"{where}: cannot use: {describe_os_error(exc)}") from None
    if stat.S_ISDIR(mode):
        raise OutputPathError(f"{where}: is a folder; give a file name")
    if replaced and mode and not stat.S_ISREG(mode):
        raise OutputPathError(f"{where}: not a regular file (it is replaced by renaming)")
    _probe(where, path.with_name(path.name + ".tmp") if replaced else path)


def check_output_dir(flag: str, path: Path) -> None:
    """Create the output folder (with parents) and prove a file can be created in it."""
    where = f"{flag} {path}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{where}: exists and is not a folder") from None
    except OSError as exc:
        target = exc.filename or path
        raise OutputPathError(
            f"{where}: cannot create the folder {target}: {describe_os_error(exc)}"
        ) from None
    _probe(where, path / f".vplc-write-probe-{os.getpid()}")


def _probe(where: str, target: Path) -> None:
    existed = os.path.lexists(target)
    try:
        fd = os.open(target, _PROBE, 0o644)
    except OSError as exc:
        raise OutputPathError(f"{where}: cannot write: {describe_os_error(exc)}") from None
    os.close(fd)
    if not existed:
        target.unlink(missing_ok=True)
