"""The audit trail's on-disk format: canonical JSON lines, the hash chain, the head, old formats.

One record per line, JSON with sorted keys and no spaces (so a verifier re-derives the exact
bytes). Format 2 (``"v": 2``) records carry ``seq`` (= line number), ``ts`` (UTC), ``event``,
the event's fields, ``prev`` (sha256 of the line before, 64 zeros for the first line), ``key``
(the signing key's id) and ``sig`` (Ed25519 over the record without ``sig``). The head file
(``<trail>.head``) holds the last record's ``seq`` and line hash, signed the same way, in
two fixed-size copies written alternately (``head_slot``).

Older files: the runtime's first chain (``seq``/``prev``, no key) and the container manager's
(``when``/``prev_sha256``, no key). A format-2 trail may continue such a file: its first
format-2 record chains to the last old line, so from then on the old part is covered too.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "FORMAT",
    "GENESIS",
    "HEAD_SLOT",
    "RESERVED",
    "Kind",
    "classify",
    "count_lines",
    "encode",
    "head_candidates",
    "head_slot",
    "line_hash",
    "read_last_line",
    "signed_bytes",
]

FORMAT = 2
GENESIS = "0" * 64  # the "previous hash" of the first record
RESERVED = frozenset({"v", "seq", "ts", "event", "prev", "key", "sig"})

Kind = Literal["v2", "runtime-v1", "container-v1", "unknown"]


def encode(record: dict[str, Any]) -> bytes:
    # Canonical form: sorted keys, no spaces, so verification re-derives the same bytes.
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()


def signed_bytes(record: dict[str, Any]) -> bytes:
    """What a signature covers: the canonical record without its ``sig``."""
    return encode({k: v for k, v in record.items() if k != "sig"})


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def classify(record: dict[str, Any]) -> Kind:
    """Which format wrote ``record``."""
    if record.get("v") == FORMAT:
        return "v2"
    if "v" not in record and "prev_sha256" in record:
        return "container-v1"
    if "v" not in record and "seq" in record and "prev" in record:
        return "runtime-v1"
    return "unknown"


def read_last_line(fd: int, size: int) -> tuple[bytes, int]:
    """The last line of the file open at ``fd`` (without its newline) and where it starts.

    Reads backwards in blocks, so resuming a long trail costs one block, not the file.
    A missing final newline is kept as part of the line (a torn write shows as such).
    """
    if size == 0:
        return b"", 0
    end = size
    tail = os.pread(fd, 1, size - 1)
    if tail == b"\n":
        end = size - 1
    block = 8192
    pos, buf = end, b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        nl = buf.rfind(b"\n", 0, end - pos)
        if nl >= 0:
            return buf[nl + 1 : end - pos], pos + nl + 1
    return buf[: end - pos], 0


HEAD_SLOT = 1024  # bytes per head copy; the head file holds two, written alternately


def head_slot(head: dict[str, Any]) -> tuple[int, bytes]:
    """Where and what to write for ``head``: slot ``seq % 2``, padded to ``HEAD_SLOT``.

    Two copies, overwritten in turn in place (one ``pwrite`` and one fsync, no rename): a
    crash in the middle of a write can only tear the copy being written, and the other one
    is the previous head, which a reader then takes (a head one record behind).
    """
    body = encode(head)
    if len(body) >= HEAD_SLOT:
        raise ValueError(f"audit head of {len(body)} bytes does not fit {HEAD_SLOT}")
    return (head["seq"] % 2) * HEAD_SLOT, body.ljust(HEAD_SLOT - 1) + b"\n"


def head_candidates(data: bytes) -> list[dict[str, Any]]:
    """The head copies in a head file that parse as JSON objects, newest ``seq`` first."""
    found = []
    for chunk in data.split(b"\n"):
        text = chunk.strip(b" \0")
        if not text:
            continue
        try:
            head = json.loads(text)
        except (ValueError, RecursionError):
            continue  # a torn copy
        if isinstance(head, dict) and isinstance(head.get("seq"), int):
            found.append(head)
    return sorted(found, key=lambda h: -int(h["seq"]))


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())
