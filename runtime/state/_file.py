"""Crash-safe checkpoint files: checksummed JSON, temp + fsync + atomic rename, two generations.

Standard library only, so a crash-test helper process can load this module on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "vplc-retain"
SCHEMA = 1


class CheckpointError(Exception):
    """A checkpoint file that must not be loaded; ``str()`` says what is wrong with it."""


def prev_path(path: Path) -> Path:
    """Where the previous generation lives: ``<file>.prev`` next to the latest."""
    return path.with_name(path.name + ".prev")


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


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
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"not valid JSON ({exc}): truncated or corrupt") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"not a vplc retain file (no 'format: {FORMAT}' marker)")
    if doc.get("schema") != SCHEMA:
        raise CheckpointError(
            f"schema version {doc.get('schema')!r} is not supported (this runtime reads "
            f"schema {SCHEMA})"
        )
    stored = doc.pop("sha256", None)
    actual = hashlib.sha256(_canonical(doc)).hexdigest()
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
    return doc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, doc: dict[str, Any]) -> int:
    """Write ``doc`` as the latest generation; the former latest becomes ``.prev``.

    Order matters for crash safety: the new content is complete and on disk (fsync) before
    any rename; each rename is atomic and made durable (directory fsync) before the next.
    A crash at any point leaves the latest or the previous complete checkpoint readable.
    Returns the number of bytes written.
    """
    data = encode(doc)
    tmp = tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
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
    """One generation file as read: its document, or why it must not be loaded."""

    path: Path
    doc: dict[str, Any] | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.doc is not None


def judge(path: Path, *, app: str | None = None) -> Judgement | None:
    """Read and verify one file; None when it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Judgement(path, problem=f"cannot be read: {exc.strerror}")
    try:
        return Judgement(path, doc=decode(data, app=app))
    except CheckpointError as exc:
        return Judgement(path, problem=str(exc))


def latest(path: Path, *, app: str | None = None) -> tuple[Judgement | None, Judgement | None]:
    """(the generation to load, the other one). The latest wins whenever it exists.

    A missing latest with a present ``.prev`` is the expected trace of a crash between the two
    renames of ``write``; a present but bad latest is never skipped over silently: it is
    returned as the one to load, so the caller refuses or moves it aside.
    """
    cur, prev = judge(path, app=app), judge(prev_path(path), app=app)
    if cur is not None:
        return cur, prev
    return prev, None
