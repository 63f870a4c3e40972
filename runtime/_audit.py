"""Append-only audit trail: JSON lines chained by sha256, so silent alteration is detectable."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "verify_audit_log"]

GENESIS = "0" * 64  # the "previous hash" of the first record


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _encode(record: dict[str, Any]) -> bytes:
    # Canonical form: sorted keys, no spaces, so verification re-derives the same bytes.
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()


class AuditLog:
    """One file, one JSON object per line; each record holds ``prev``: sha256 of the line before.

    21 CFR Part 11 asks that records cannot be altered without it being noticed: changing,
    inserting or deleting a line breaks the chain at the next line (``verify_audit_log``).
    Each append is flushed and fsynced because an operator action that was answered
    "accepted" must survive a crash right after.
    """

    def __init__(self, path: Path | str, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._log = structlog.get_logger("vplc.audit")
        self._prev, self._seq = self._resume()
        self._size = self.path.stat().st_size if self.path.exists() else 0

    def _resume(self) -> tuple[str, int]:
        """Continue the chain of an existing file from its last line."""
        if not self.path.exists():
            return GENESIS, 0
        last = b""
        count = 0
        with self.path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    last = line.rstrip(b"\n")
                    count += 1
        return (_line_hash(last) if last else GENESIS), count

    @property
    def head(self) -> str:
        """sha256 of the last record; publish it elsewhere to anchor the tail of the chain."""
        return self._prev

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record (``event`` plus fields) and log it; returns the record written."""
        with self._lock, self.path.open("ab") as fh:
            # flock + re-reading the tail when someone else appended keeps one chain even
            # when several writers (the bridge, a CLI) share the file.
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            if os.fstat(fh.fileno()).st_size != self._size:
                self._prev, self._seq = self._resume()
            record = {
                "seq": self._seq + 1,
                "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                "event": event,
                **fields,
                "prev": self._prev,
            }
            line = _encode(record)
            fh.write(line + b"\n")
            fh.flush()
            if self._fsync:
                os.fsync(fh.fileno())
            self._size = fh.tell()
            self._prev = _line_hash(line)
            self._seq += 1
        fields_ = {k: v for k, v in record.items() if k not in ("prev", "event")}
        self._log.info("audit", audit_event=event, **fields_)
        return record


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """Result of checking a chain: ok, how many records, and the first broken line (1-based)."""

    ok: bool
    records: int
    error: str = ""
    line: int = 0


def verify_audit_log(path: Path | str) -> AuditVerification:
    """Re-derive the hash chain; report the first line that was altered, inserted or removed."""
    prev = GENESIS
    count = 0
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\n")
            if not line:
                return AuditVerification(False, count, "empty line inside the log", lineno)
            try:
                record = json.loads(line)
            except ValueError:
                return AuditVerification(False, count, "line is not JSON", lineno)
            if not isinstance(record, dict):
                return AuditVerification(False, count, "line is not a JSON object", lineno)
            if record.get("prev") != prev:
                return AuditVerification(
                    False, count, "hash chain broken: the previous line was altered", lineno
                )
            if record.get("seq") != count + 1:
                return AuditVerification(False, count, "sequence number out of order", lineno)
            if _encode(record) != line:
                return AuditVerification(False, count, "line is not in canonical form", lineno)
            prev = _line_hash(line)
            count += 1
    return AuditVerification(True, count)
