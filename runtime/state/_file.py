"""Crash-safe checkpoint files: checksummed JSON, temp + fsync + atomic rename, two generations.

Standard library only, so a crash-test helper process can load this module on its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "vplc-retain"
SCHEMA = 1
# A retain file holds a few dozen bytes per value (the bioreactor: 149 values, 5 KiB). The cap
# keeps a wrong path (a 3 GiB log, /dev/zero) from being read whole before it is refused:
# generous per value, so lists and strings fit, and a parsed file stays far below 1 GiB.
CAP_BASE = 1 << 20
CAP_PER_VALUE = 64 << 10
MAX_AGE_NS = 1 << 62  # ~146 years: any stamp made from it stays a 64-bit integer
_OPEN_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


class CheckpointError(Exception):
    """A checkpoint file that must not be loaded; ``str()`` says what is wrong with it."""


def prev_path(path: Path) -> Path:
    """Where the previous generation lives: ``<file>.prev`` next to the latest."""
    return path.with_name(path.name + ".prev")


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def size_cap(values: int) -> int:
    """The default size limit of a retain file declaring ``values`` variables and parameters."""
    return CAP_BASE + CAP_PER_VALUE * max(values, 0)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class PathError(CheckpointError):
    """The path itself is unusable (not a regular file, a symlink, unreadable): never renamed,
    never replaced, whatever the start mode."""


def _open_problem(path: Path, exc: OSError) -> PathError:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode):
        return PathError(
            f"is a symbolic link (to {os.readlink(path)!r}): a checkpoint replaces the file "
            "by renaming, which would replace the link"
        )
    if mode and not stat.S_ISREG(mode):
        return PathError(f"is {_kind(mode)}, not a regular file")
    return PathError(f"cannot be opened: {exc.strerror or exc}")


def read_capped(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of a regular file of at most ``max_bytes``; None when it does not exist.

    Opened without following a symlink and without blocking (a FIFO would wait for a writer
    forever); the kind and size are checked on the open descriptor, before any byte is read.
    Raises PathError for a path that is not a readable regular file, CheckpointError when
    the file is too large.
    """
    try:
        fd = os.open(path, _OPEN_READ)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _open_problem(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PathError(f"is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise CheckpointError(_too_large(info.st_size, max_bytes))
        chunks, left = [], max_bytes + 1  # a file still growing stops at the cap as well
        while left > 0:
            try:
                chunk = os.read(fd, min(left, 1 << 20))
            except OSError as exc:
                raise PathError(f"cannot be read: {exc.strerror or exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise CheckpointError(_too_large(max_bytes + 1, max_bytes))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_large(size: int, max_bytes: int) -> str:
    return (
        f"it is {size:,} bytes, more than the {max_bytes:,} bytes a retain file of this app may "
        "have (--retain-max-mb raises the limit): not a retain file, or not this app's"
    )


def non_finite(value: Any, where: str) -> str | None:
    """The path (``where`` + keys/indexes) of the first NaN/±inf inside ``value``, else None.

    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{path} = {item!r}"
        elif isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
    return None


def check_writable(path: Path) -> None:
    """Refuse, before a run, a retain path that no checkpoint could be written to.

    The folder must exist (the caller creates it) and take a file: the temporary file a write
    starts with is created and removed again, which finds read-only mounts, missing rights and
    a FIFO or device sitting at that name, without writing anything that matters.
    """
    directory = path.parent
    if not directory.is_dir():
        raise PathError(f"folder {directory} does not exist or is not a folder")
    tmp = tmp_path(path)
    try:
        fd = os.open(tmp, _OPEN_WRITE, 0o644)
    except OSError as exc:
        try:
            mode = os.lstat(tmp).st_mode
        except OSError:
            mode = 0
        if mode and not stat.S_ISREG(mode):
            raise PathError(f"{tmp} is {_kind(mode)}, not a regular file") from None
        raise PathError(f"cannot write in {directory}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        raise PathError(f"{tmp} is {_kind(mode)}, not a regular file")
    tmp.unlink()


def _canonical(doc: dict[str, Any]) -> bytes:
    # sort_keys + compact separators + float repr make the encoding a pure function of the
    # values, so the checksum can be recomputed from the parsed document.
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def encode(doc: dict[str, Any]) -> bytes:
    """The file bytes for ``doc`` (which must not contain ``sha256``), checksum added."""
    body = dict(doc, format=FORMAT, schema=SCHEMA)
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return json.dumps(dict(body, sha256=digest), sort_keys=True, indent=1).encode() + b"\n"


def decode(data: bytes, *, app: str | None = None) -> dict[str, Any]:
    """Parse and verify file bytes; raise CheckpointError naming the first problem found."""
    if not data:
        raise CheckpointError("the file is empty (0 bytes)")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, a 5000-digit int, nesting
        raise CheckpointError(f"not valid JSON ({_short(exc)}): truncated or corrupt") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"not a vplc retain file (no 'format: {FORMAT}' marker)")
    if doc.get("schema") != SCHEMA:
        raise CheckpointError(
            f"schema version {doc.get('schema')!r} is not supported (this runtime reads "
            f"schema {SCHEMA})"
        )
    stored = doc.pop("sha256", None)
    try:
        actual = hashlib.sha256(_canonical(doc)).hexdigest()
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"its content cannot be checked ({_short(exc)})") from None
    if stored != actual:
        raise CheckpointError(
            f"checksum mismatch (stored sha256 {str(stored)[:12]}…, content hashes to "
            f"{actual[:12]}…): the content was altered or damaged"
        )
    for key, kind in (("app", str), ("app_version", str), ("seq", int), ("data", dict)):
        if not isinstance(doc.get(key), kind):
            raise CheckpointError(f"field {key!r} is missing or not a {kind.__name__}")
    if app is not None and doc["app"] != app:
        raise CheckpointError(f"it was written by app {doc['app']!r}, not by {app!r}")
    _check_shape(doc)
    bad = non_finite(doc["data"], "data")
    if bad is not None:  # NaN/inf pass a checksum; a retained NaN would drive an actuator
        raise CheckpointError(f"it holds a non-finite value at {bad}")
    return doc


def _check_shape(doc: dict[str, Any]) -> None:
    """The parts a loader walks have the types it expects (a valid checksum proves nothing
    about who wrote the file)."""
    data = doc["data"]
    for key in ("variables", "parameters"):
        part = data.get(key, {})
        if not isinstance(part, dict):
            raise CheckpointError(f"field 'data.{key}' is not a mapping of names to values")
    initials = data.get("initials", {})
    if not isinstance(initials, dict):
        raise CheckpointError("field 'data.initials' is not a mapping")
    for key in ("variables", "parameters"):
        if not isinstance(initials.get(key, {}), dict):
            raise CheckpointError(
                f"field 'data.initials.{key}' is not a mapping of names to values"
            )
    _check_clock(data.get("clock", {}))
    time_s = doc.get("app_time_s", 0.0)
    if not _is_number(time_s):
        raise CheckpointError("field 'app_time_s' is not a number")
    if not 0 <= time_s < MAX_AGE_NS / 1e9:  # older files turn it into nanosecond stamps
        raise CheckpointError(
            f"field 'app_time_s' is {time_s:g}: expected seconds from 0 to {MAX_AGE_NS / 1e9:.3g}"
        )
    if "saved_at" in doc and not isinstance(doc["saved_at"], str):
        raise CheckpointError("field 'saved_at' is not a text")
    if doc["seq"] < 0 or isinstance(doc["seq"], bool):
        raise CheckpointError("field 'seq' is not a non-negative integer")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_clock(clock: Any) -> None:
    """Ages are nanoseconds a runtime subtracts from its own clock: each one a number (or a
    list of numbers) inside the 64-bit range the compiled blocks hold times in."""
    if not isinstance(clock, dict):
        raise CheckpointError("field 'data.clock' is not a mapping")
    if not _is_number(clock.get("app_time_ns", 0)):
        raise CheckpointError("field 'data.clock.app_time_ns' is not a number")
    ages = clock.get("ages", {})
    if not isinstance(ages, dict):
        raise CheckpointError("field 'data.clock.ages' is not a mapping of names to ages")
    for path, age in ages.items():
        items = age if isinstance(age, list) else [age]
        if not all(_is_number(v) and abs(v) < MAX_AGE_NS for v in items):
            raise CheckpointError(
                f"field 'data.clock.ages.{path}' is not an age in nanoseconds "
                f"(a number, or a list of numbers, of magnitude below {MAX_AGE_NS:.0e})"
            )


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, doc: dict[str, Any], *, max_bytes: int | None = None) -> int:
    """Write ``doc`` as the latest generation; the former latest becomes ``.prev``.

    Order matters for crash safety: the new content is complete and on disk (fsync) before
    any rename; each rename is atomic and made durable (directory fsync) before the next.
    A crash at any point leaves the latest or the previous complete checkpoint readable.
    A document that the loader would refuse (a non-finite value, over ``max_bytes``) raises
    CheckpointError and leaves both generations as they were. Returns the bytes written.
    """
    bad = non_finite(doc.get("data"), "data")
    if bad is not None:
        raise CheckpointError(f"not written: a non-finite value at {bad} would not load")
    data = encode(doc)
    if max_bytes is not None and len(data) > max_bytes:
        raise CheckpointError(f"not written: {_too_large(len(data), max_bytes)}")
    tmp = tmp_path(path)
    fd = os.open(tmp, _OPEN_WRITE, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathError(f"{tmp} is not a regular file")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    directory = path.parent
    if path.exists():
        os.replace(path, prev_path(path))
        _fsync_dir(directory)
    os.replace(tmp, path)
    _fsync_dir(directory)
    return len(data)


@dataclass
class Judgement:
    """One generation file as read: its document, or why it must not be loaded.

    ``unusable``: the path is not a regular file (or cannot be opened): it must be neither
    loaded nor renamed aside nor replaced by a checkpoint, whatever the start mode.
    """

    path: Path
    doc: dict[str, Any] | None = None
    problem: str = ""
    unusable: bool = False

    @property
    def ok(self) -> bool:
        return self.doc is not None


def judge(path: Path, *, app: str | None = None, max_bytes: int = CAP_BASE) -> Judgement | None:
    """Read and verify one file (at most ``max_bytes``); None when it does not exist."""
    try:
        data = read_capped(path, max_bytes)
    except PathError as exc:
        return Judgement(path, problem=str(exc), unusable=True)
    except CheckpointError as exc:
        return Judgement(path, problem=str(exc))
    if data is None:
        return None
    try:
        return Judgement(path, doc=decode(data, app=app))
    except CheckpointError as exc:
        return Judgement(path, problem=str(exc))


def latest(
    path: Path, *, app: str | None = None, max_bytes: int = CAP_BASE
) -> tuple[Judgement | None, Judgement | None]:
    """(the generation to load, the other one). The latest wins whenever it exists.

    A missing latest with a present ``.prev`` is the expected trace of a crash between the two
    renames of ``write``; a present but bad latest is never skipped over silently: it is
    returned as the one to load, so the caller refuses or moves it aside.
    """
    cur = judge(path, app=app, max_bytes=max_bytes)
    prev = judge(prev_path(path), app=app, max_bytes=max_bytes)
    if cur is not None:
        return cur, prev
    return prev, None
