"""The one audit trail (runtime and container manager): signed, hash-chained, head anchored.

Append-only JSON lines (format in ``runtime.ops._audit_format``): each record names the hash of
the line before and is signed with the node's Ed25519 key (``runtime.ops._audit_key``); after
every append the head (last ``seq`` and hash, signed) is written to ``<trail>.head`` and
handed to listeners (the MQTT bridge publishes it retained). So an edit anywhere fails a
signature, a deletion breaks the chain, and a truncation or a re-signed copy no longer
matches the head held outside the file.

Writing: one ``write`` with ``O_APPEND`` under an exclusive ``flock`` on the trail, so
several processes (the bridge, the CLI, the container manager) keep one chain; a writer that
finds the file changed under it re-reads the tail (one block, not the file). fsync policy
(``fsync=True``, the default): the record is fsynced before ``append`` returns, because an
action answered "accepted" must survive a crash right after; then the head is written in
place (one of its two copies, ``runtime.ops._audit_format.head_slot``) and fsynced. The head is
never ahead of the durable records; a crash may leave it behind (a torn copy: the other one
is the previous head), which is accepted when every record after it is this key's signed
chain (only the key's holder can write those) and repaired by the next append.

Key policy, as a GMP auditor would want it: a new trail (no file, or only records of the
older unkeyed formats) creates the key at first use (0600) and logs its id; a trail already
signed refuses to open without its key (restore the key from backup: a fresh key would make
the records after it unattributable), refuses another key, and refuses to append when the
file no longer matches its head (appending would hide a truncation). No record, no action:
the command path checks ``ready()`` before it runs a command.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from runtime.ops._audit_format import (
    FORMAT,
    GENESIS,
    HEAD_SLOT,
    RESERVED,
    classify,
    count_lines,
    encode,
    head_slot,
    line_hash,
    read_last_line,
    signed_bytes,
)
from runtime.ops._audit_key import (
    AuditKeyError,
    SigningKey,
    create_signing_key,
    default_key_path,
    load_signing_key,
    public_path,
)
from runtime.ops._audit_verify import AuditVerification, read_head, verify_audit_log

__all__ = [
    "GENESIS",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditVerification",
    "head_path_for",
    "verify_audit_log",
]

HeadListener = Callable[[dict[str, Any]], None]


class AuditError(Exception):
    """The trail cannot be appended to (it does not match its head, a torn line, …)."""


def head_path_for(path: Path) -> Path:
    return path.parent / f"{path.name}.head"  # not with_name: "" and "." have no name


@dataclass
class _Tail:
    """What the writer knows about the end of the file: last seq/hash, keyed or not, size."""

    seq: int = 0
    hash: str = GENESIS
    keyed: bool = False
    key: str | None = None
    size: int = 0


class AuditLog:
    """One trail file; ``append(event, **fields)`` writes a signed record and the head."""

    def __init__(
        self,
        path: Path | str,
        *,
        key_file: Path | str | None = None,
        head_file: Path | str | None = None,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.head_path = Path(head_file) if head_file else head_path_for(self.path)
        self.key_path = Path(key_file) if key_file else default_key_path()
        self._fsync = fsync
        self._lock = threading.Lock()
        self._listeners: list[HeadListener] = []
        self._log = structlog.get_logger("vplc.audit")
        self._head: dict[str, Any] | None = None
        with self._locked() as fd:
            self._tail = self._read_tail(fd)
            self._signer = self._key_for(self._tail)
            self._check_head(self._tail)

    # ------------------------------------------------------------------ reading the file
    @contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o640)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or /dev/null would take records
                raise AuditError(f"audit trail {self.path}: not a regular file (a FIFO or device)")
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _read_tail(self, fd: int) -> _Tail:
        size = os.fstat(fd).st_size
        line, _ = read_last_line(fd, size)
        if not line:
            return _Tail(size=size)
        if not os.pread(fd, 1, size - 1) == b"\n":
            raise AuditError(
                f"audit trail {self.path}: the last line is incomplete (a crash while writing "
                f"it?); nothing is appended until it is looked at: run `vplc audit verify "
                f"{self.path}`"
            )
        try:
            record = json.loads(line)
            kind = classify(record) if isinstance(record, dict) else "unknown"
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            kind, record = "unknown", {}
        if kind == "v2" and not (isinstance(record.get("seq"), int) and record["seq"] >= 1):
            kind = "unknown"  # an edited last line: its seq is what a new record continues
        if kind == "unknown":
            raise AuditError(
                f"audit trail {self.path}: the last line is not an audit record; run "
                f"`vplc audit verify {self.path}`"
            )
        if kind == "v2":
            return _Tail(
                seq=int(record["seq"]),
                hash=line_hash(line),
                keyed=True,
                key=str(record.get("key")),
                size=size,
            )
        # An older unkeyed file: a new signed chain continues it from its last line.
        return _Tail(seq=count_lines(self.path), hash=line_hash(line), size=size)

    def _key_for(self, tail: _Tail) -> SigningKey:
        if self.key_path.exists():
            signer = load_signing_key(self.key_path)
            if tail.keyed and signer.public.id != tail.key:
                raise AuditKeyError(
                    f"audit trail {self.path} is signed with key {tail.key}, but {self.key_path}"
                    f" is key {signer.public.id}: give the trail's own key (VPLC_AUDIT_KEY)"
                )
            return signer
        if tail.keyed:
            raise AuditKeyError(
                f"audit trail {self.path} is signed with key {tail.key}, and that key "
                f"({self.key_path}) is missing: restore it from backup. A new key is not "
                "created for a signed trail: the records after it could not be attributed. "
                "To start a new trail deliberately, move the file and its .head aside (keep "
                "them with their public key)."
            )
        signer = create_signing_key(self.key_path)
        self._log.warning(
            "audit_key_created",
            key=signer.public.id,
            private=str(self.key_path),
            public=str(public_path(self.key_path)),
            note="give the public key to QA: `vplc audit verify --key` checks against it",
        )
        return signer

    def _check_head(self, tail: _Tail) -> None:
        """Refuse to continue a file that no longer matches its signed head."""
        if not self.head_path.exists():
            if tail.keyed:
                raise AuditError(
                    f"audit trail {self.path}: its head file {self.head_path} is missing, so "
                    "a truncation cannot be ruled out; run `vplc audit verify` and restore "
                    "the head (or move the trail aside to start a new one)"
                )
            return
        head, problem = read_head(self.head_path, self._signer.public)
        if problem or head is None:
            raise AuditError(f"audit trail {self.path}: {problem}")
        if (head["seq"], head["hash"]) == (tail.seq, tail.hash):
            self._head = head
            return
        if head["seq"] < tail.seq:
            # The head lags (a crash before its update): fine if everything after it is this
            # key's signed chain; appending would otherwise launder foreign lines into it.
            verdict = verify_audit_log(self.path, key=self._signer.public, head=self.head_path)
            if verdict.ok:
                self._log.warning("audit_head_behind", trail=str(self.path), notes=verdict.notes)
                self._head = head
                return
            raise AuditError(f"audit trail {self.path}: {verdict.summary()}")
        raise AuditError(
            f"audit trail {self.path} ends at record {tail.seq}, but its signed head "
            f"{self.head_path} says record {head['seq']} (hash {head['hash'][:12]}…): records "
            "were removed or altered after they were written. Nothing is appended until this "
            f"is resolved (appending would hide it); run `vplc audit verify {self.path}`"
        )

    # ------------------------------------------------------------------ public API
    @property
    def head(self) -> str:
        """sha256 of the last record's line (the chain's tip)."""
        return self._tail.hash

    @property
    def seq(self) -> int:
        return self._tail.seq

    @property
    def key_id(self) -> str:
        return self._signer.public.id

    def head_record(self) -> dict[str, Any] | None:
        """The signed head as last written (``{"v","trail","seq","hash","ts","key","sig"}``)."""
        return self._head

    def add_listener(self, callback: HeadListener) -> None:
        """Call ``callback(head)`` after each append (e.g. publish it retained on MQTT)."""
        self._listeners.append(callback)

    def ready(self) -> str | None:
        """None when an append would succeed now, else why not (checked before actions)."""
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            return f"audit trail {self.path}: {exc.strerror}"
        if size == self._tail.size:
            return None
        try:
            with self._lock, self._locked() as fd:
                self._resync(fd)
        except (AuditError, AuditKeyError, OSError) as exc:
            return str(exc)
        return None

    def _resync(self, fd: int) -> None:
        if os.fstat(fd).st_size != self._tail.size:
            tail = self._read_tail(fd)
            if tail.keyed and tail.key != self._signer.public.id:
                raise AuditKeyError(f"audit trail {self.path}: now signed by key {tail.key}")
            self._check_head(tail)
            self._tail = tail

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one signed record (``event`` plus fields) and the head; return the record."""
        clash = RESERVED & fields.keys()
        if clash:
            raise ValueError(f"audit fields {sorted(clash)} are the record's own; rename them")
        with self._lock, self._locked() as fd:
            self._resync(fd)
            saved = self._tail
            try:
                lines: list[bytes] = []
                if not self._tail.keyed:
                    lines.append(self._record(self._genesis_fields(), "trail_start"))
                line = self._record(fields, event)
                lines.append(line)
                os.write(fd, b"".join(x + b"\n" for x in lines))
                if self._fsync:
                    os.fsync(fd)
            except BaseException:
                self._tail = saved  # a failed write (disk full) must not advance the chain
                raise
            self._tail.size = os.fstat(fd).st_size
            self._head = self._write_head()
        record: dict[str, Any] = json.loads(line)
        self._log.info("audit", audit_event=event, **{k: v for k, v in fields.items()})
        for listener in list(self._listeners):
            try:
                listener(self._head)
            except Exception as exc:  # a listener (MQTT) must never lose the record
                self._log.error("audit_listener_failed", error=repr(exc))
        return record

    # ------------------------------------------------------------------ writing
    def _genesis_fields(self) -> dict[str, Any]:
        legacy = None
        if self._tail.seq:
            legacy = {"records": self._tail.seq, "last_hash": self._tail.hash}
        return {
            "public_key": self._signer.public.b64(),
            "host": socket.gethostname(),
            "continues_unkeyed": legacy,
        }

    def _record(self, fields: dict[str, Any], event: str) -> bytes:
        tail = self._tail
        record = {
            "v": FORMAT,
            "seq": tail.seq + 1,
            "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
            "event": event,
            **fields,
            "prev": tail.hash,
            "key": self._signer.public.id,
        }
        # Through JSON once, so the signed bytes are those a reader re-derives (str(), tuples).
        record = json.loads(encode(record))
        record["sig"] = self._signer.sign(signed_bytes(record))
        line = encode(record)
        self._tail = _Tail(
            seq=tail.seq + 1,
            hash=line_hash(line),
            keyed=True,
            key=self._signer.public.id,
            size=tail.size,
        )
        return line

    def _write_head(self) -> dict[str, Any]:
        head: dict[str, Any] = {
            "v": FORMAT,
            "trail": self.path.name,
            "seq": self._tail.seq,
            "hash": self._tail.hash,
            "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
            "key": self._signer.public.id,
        }
        head["sig"] = self._signer.sign(signed_bytes(head))
        offset, slot = head_slot(head)
        fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < 2 * HEAD_SLOT:  # a new head file: both copies
                os.pwrite(fd, slot + slot, 0)
            else:
                os.pwrite(fd, slot, offset)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return head

    def records(self) -> list[dict[str, Any]]:
        """Every record of the file, oldest first (older formats included as they are)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            return [json.loads(line) for line in fh if line.strip()]
