"""Reading YAML input files defensively: regular files only, a size cap, bounded nesting and
alias expansion, and every failure as one ``InputFileError`` sentence (never a traceback).

A FIFO would block a plain read forever, ``/dev/zero`` would fill memory, ``[[[[…`` overflows
PyYAML's recursive composer and a "billion laughs" document expands a few aliases into 10⁹
nodes for whatever walks it next; each is refused here, before any model sees the data.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

__all__ = ["InputFileError", "load_yaml_file", "load_yaml_text", "read_text_file"]

MAX_FILE_BYTES = 16 << 20  # far beyond any manifest or scenario written by hand
MAX_DEPTH = 64  # nesting levels of mappings and sequences
MAX_NODES = 200_000  # nodes after alias expansion


class InputFileError(Exception):
    """An input file that cannot be read as what it should be; ``str()`` says why."""


def read_text_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputFileError("file not found") from None
    except OSError as exc:
        raise InputFileError(f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError("not a regular file (a folder, FIFO or device)")
        if info.st_size > max_bytes:
            raise InputFileError(f"{info.st_size:,} bytes: more than {max_bytes:,} allowed")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputFileError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputFileError(f"more than {max_bytes:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the "
            "file as UTF-8"
        ) from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts nesting depth and expanded nodes while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._anchor_sizes: dict[str, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            self._count(self._anchor_sizes.get(str(event.anchor), 1))
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise InputFileError(f"nested more than {MAX_DEPTH} levels deep")
        before = self._nodes
        self._count(1)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        anchor = getattr(event, "anchor", None)
        if anchor is not None:  # what each later alias of it will expand to
            self._anchor_sizes[str(anchor)] = self._nodes - before
        return node

    def _count(self, n: int) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise InputFileError(
                f"more than {MAX_NODES:,} values once aliases are expanded (a YAML bomb?)"
            )


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document with bounded depth and expansion; InputFileError on anything."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputFileError(f"{where}YAML syntax error: {problem}") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        # e.g. a 5000-digit integer, a date like 2001-13-45, a key that cannot be hashed
        raise InputFileError(f"a value YAML cannot convert: {exc}") from None


def load_yaml_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """``read_text_file`` then ``load_yaml_text``."""
    return load_yaml_text(read_text_file(path, max_bytes=max_bytes))
