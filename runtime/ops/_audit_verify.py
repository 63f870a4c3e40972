"""Verifying an audit trail: chain, signatures against a trusted key, and the anchored head.

``verify_audit_log`` names the first bad record (its line, = its ``seq``) for an edit, a
deletion, an insertion or a re-signed record, and compares the file's end with the signed
head for a truncation or a changed last record. Files of the older unkeyed formats are
reported as "legacy, unkeyed" with their chain checked, not as an obscure failure.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.core._files import open_regular, read_regular
from runtime.ops._audit_format import (
    GENESIS,
    Kind,
    classify,
    encode,
    head_candidates,
    line_hash,
    signed_bytes,
)
from runtime.ops._audit_key import (
    KEY_ENV,
    KEY_NAME,
    AuditKeyError,
    VerifyKey,
    default_key_path,
    load_verify_key,
    public_path,
)

MAX_HEAD_BYTES = 16 * 1024 * 1024  # a head file holds a few copies of one small line

__all__ = ["AuditVerification", "find_trusted_key", "read_head", "verify_audit_log"]

_LEGACY = {"runtime-v1": "the runtime's first format", "container-v1": "the container manager's"}


@dataclass(frozen=True)
class AuditVerification:
    """The verdict: ok, records read, and for a failure the first bad line (1-based) and why.

    ``line`` is 0 when the problem is not one record (no trusted key, a missing head).
    """

    ok: bool
    records: int
    error: str = ""
    line: int = 0
    legacy: int = 0
    key: str = ""
    head_seq: int | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        if not self.ok:
            where = f"record {self.line}: " if self.line else ""
            return f"FAILED: {where}{self.error}"
        text = f"OK: {self.records} record(s)"
        if self.key:
            text += f", signed by key {self.key}, head at record {self.head_seq}"
        if self.legacy:
            text += f"; the first {self.legacy} are legacy, unkeyed (covered by the chain after)"
        return text


def find_trusted_key(trail: Path) -> VerifyKey | None:
    """The key to check a trail against when none is given.

    ``$VPLC_AUDIT_KEY``, this node's default key (state dir), or a ``keys/`` folder next to
    the trail (the container manager's state dir); a ``.pub`` is enough for verifying.
    """
    candidates: list[Path] = []
    if os.environ.get(KEY_ENV):
        candidates.append(Path(os.environ[KEY_ENV]))
    candidates += [default_key_path(), trail.parent / "keys" / KEY_NAME]
    for private in candidates:
        for path in (public_path(private), private):
            if path.is_file():
                try:
                    return load_verify_key(path)
                except AuditKeyError:
                    continue
    return None


def read_head(path: Path, key: VerifyKey) -> tuple[dict[str, Any] | None, str | None]:
    """The newest head copy whose signature holds, or why there is none to trust."""
    try:
        data = read_regular(path, MAX_HEAD_BYTES)
    except OSError as exc:
        return None, f"head file {path}: cannot read: {exc.strerror}"
    problem = f"head file {path}: not an audit head"
    for head in head_candidates(data):
        if not isinstance(head.get("hash"), str) or not isinstance(head.get("sig"), str):
            continue
        if head.get("key") != key.id:
            problem = f"head file {path}: signed by key {head.get('key')}, not key {key.id}"
        elif not key.verify(head["sig"], signed_bytes(head)):
            problem = f"head file {path}: its signature does not verify (altered or forged)"
        else:
            return head, None
    return None, problem


class _Walk:
    """State while reading the file line by line."""

    def __init__(self, key: VerifyKey | None, head_seq: int | None = None) -> None:
        self.key = key
        self.head_seq = head_seq  # the line hash at this seq is kept for the head check
        self.hash_at_head: str | None = None
        self.embedded: VerifyKey | None = None
        self.count = 0
        self.legacy = 0
        self.legacy_kind: Kind | None = None
        self.prev = GENESIS
        self.prev_raw: bytes | None = None
        self.last_prev = GENESIS

    def step(self, line: bytes, record: dict[str, Any]) -> str | None:
        kind = classify(record)
        if kind == "unknown":
            return "not an audit record of any known format"
        if kind != "v2":
            return self._legacy(line, record, kind)
        n = self.count + 1
        if encode(record) != line:
            return "not in canonical form (the line was edited)"
        if record.get("seq") != n:
            return f"sequence number {record.get('seq')!r} where {n} was expected"
        if record.get("prev") != self.prev:
            return "hash chain broken: a record before it was removed, added or altered"
        if self.embedded is None:
            problem = self._first_signed(record)
            if problem:
                return problem
        key = self.key or self.embedded
        assert key is not None
        if record.get("key") != key.id:
            return f"signed by key {record.get('key')!r}, not the trusted key {key.id}"
        if not isinstance(record.get("sig"), str) or not key.verify(
            record["sig"], signed_bytes(record)
        ):
            return (
                "signature does not verify: the record was altered (or recomputed without the key)"
            )
        return None

    def _first_signed(self, record: dict[str, Any]) -> str | None:
        if record.get("event") != "trail_start" or not isinstance(record.get("public_key"), str):
            return "the first signed record is not a trail_start naming its public key"
        try:
            self.embedded = VerifyKey.from_b64(record["public_key"], "the trail")
        except ValueError:
            return "trail_start: public_key is not an Ed25519 key"
        if self.key is not None and self.embedded.id != self.key.id:
            return (
                f"the trail names key {self.embedded.id}, not the trusted key {self.key.id} "
                "(re-signed with another key?)"
            )
        return None

    def _legacy(self, line: bytes, record: dict[str, Any], kind: Kind) -> str | None:
        if self.embedded is not None:
            return f"a record of {_LEGACY[kind]} (unkeyed) after signed records"
        if self.legacy_kind not in (None, kind):
            return "records of two different older formats in one file"
        self.legacy_kind = kind
        n = self.count + 1
        if kind == "runtime-v1":
            if record.get("prev") != self.prev:
                return "hash chain broken (legacy, unkeyed part)"
            if record.get("seq") != n:
                return "sequence number out of order (legacy, unkeyed part)"
            if encode(record) != line:
                return "not in canonical form (legacy, unkeyed part)"
        else:
            want = "" if self.prev_raw is None else hashlib.sha256(self.prev_raw).hexdigest()
            if record.get("prev_sha256") != want:
                return "hash chain broken (legacy, unkeyed part)"
            if json.dumps(record, sort_keys=True).encode() != line:
                return "not in its format's canonical form (legacy, unkeyed part)"
        self.legacy += 1
        return None

    def advance(self, line: bytes, record: dict[str, Any]) -> None:
        self.count += 1
        self.last_prev = str(record.get("prev", self.prev))
        self.prev = line_hash(line)
        self.prev_raw = line
        if self.count == self.head_seq:
            self.hash_at_head = self.prev


def verify_audit_log(
    path: Path | str,
    *,
    key: VerifyKey | Path | str | None = None,
    head: Path | str | None = None,
    allow_legacy: bool = False,
) -> AuditVerification:
    """Check a trail; ``key`` the trusted public key (default: ``find_trusted_key``)."""
    path = Path(path)
    trusted = load_verify_key(Path(key)) if isinstance(key, str | Path) else key
    trusted = trusted or find_trusted_key(path)
    # parent / name, not with_name: a FILE of "" or "." has no name to replace (ValueError)
    head_path = Path(head) if head else path.parent / f"{path.name}.head"
    walk = _Walk(trusted, _peek_seq(head_path) if head_path.exists() else None)
    try:  # not a FIFO (would block) nor a device like /dev/zero (one endless line)
        fh = open_regular(path)
    except OSError as exc:
        return AuditVerification(False, 0, f"cannot read {path}: {exc.strerror}")
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return _bad(walk, lineno, "incomplete last line (a crash while writing it?)")
            line = raw[:-1]
            if not line.strip():
                return _bad(walk, lineno, "empty line inside the trail")
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                return _bad(walk, lineno, "not JSON")
            if not isinstance(record, dict):
                return _bad(walk, lineno, "not a JSON object")
            problem = walk.step(line, record)
            if problem:
                return _bad(walk, lineno, problem)
            walk.advance(line, record)
    return _finish(walk, path, head_path, allow_legacy)


def _bad(walk: _Walk, line: int, error: str) -> AuditVerification:
    key = walk.key or walk.embedded
    return AuditVerification(False, walk.count, error, line, walk.legacy, key.id if key else "")


def _finish(walk: _Walk, path: Path, head_path: Path, allow_legacy: bool) -> AuditVerification:
    n = walk.count
    if walk.embedded is None and head_path.exists():  # signed records were here
        head = _peek_seq(head_path)
        return AuditVerification(
            False,
            n,
            f"truncated: the file ends at record {n} but the head {head_path.name} says "
            f"{head}: every signed record is gone",
            n + 1,
            walk.legacy,
        )
    if walk.embedded is None:  # nothing signed: empty, or only an older format
        if walk.legacy == 0:
            return AuditVerification(True, 0, notes=("empty trail",))
        what = _LEGACY[walk.legacy_kind or "runtime-v1"]
        verdict = (
            f"legacy, unkeyed: {n} record(s) of {what}, chain intact, but with no key and no "
            "anchored head a truncation, a changed last record or a recomputed chain cannot "
            "be detected (the next append starts a signed chain that covers these records)"
        )
        if allow_legacy:
            return AuditVerification(True, n, legacy=n, notes=(verdict,))
        return AuditVerification(False, n, verdict, 0, n)
    if walk.key is None:
        return AuditVerification(
            False,
            n,
            f"no trusted public key: the signatures check out against the key the trail names "
            f"itself ({walk.embedded.id}), which proves nothing against someone who re-signed "
            "it; give --key with the public key kept by QA",
            0,
            walk.legacy,
            walk.embedded.id,
        )
    return _check_head(walk, path, head_path)


def _peek_seq(head_path: Path) -> Any:
    """The head's ``seq`` before its signature is checked (only to know what to keep)."""
    try:
        heads = head_candidates(read_regular(head_path, MAX_HEAD_BYTES))
    except OSError:
        return "?"
    return heads[0]["seq"] if heads else "?"


def _check_head(walk: _Walk, path: Path, head_path: Path) -> AuditVerification:
    n, key = walk.count, walk.key
    assert key is not None

    def fail(error: str, line: int = 0) -> AuditVerification:
        return AuditVerification(False, n, error, line, walk.legacy, key.id)

    if not head_path.exists():
        return fail(f"head file {head_path} missing: a truncation cannot be ruled out")
    head, problem = read_head(head_path, key)
    if head is None:
        return fail(problem or "unreadable head")
    seq, notes = head["seq"], []
    if seq > n:
        return fail(
            f"truncated: the file ends at record {n} but the signed head says {seq}: "
            f"{seq - n} record(s) missing at the end",
            n + 1,
        )
    if seq == n and head["hash"] != walk.prev:
        return fail("the last record is not the one the signed head names (altered)", n)
    if seq < n:
        if head["hash"] != walk.hash_at_head:
            return fail(f"record {seq} is not the one the signed head names (altered)", seq)
        # Every record after the head was checked above (chain and signature): only the key's
        # holder can have written them, e.g. a crash between a record and its head update.
        notes.append(f"the head is {n - seq} record(s) behind (a crash before its update?)")
    if head.get("trail") != path.name:
        notes.append(f"the head was written for a trail named {head.get('trail')!r}")
    return AuditVerification(True, n, "", 0, walk.legacy, key.id, seq, tuple(notes))
