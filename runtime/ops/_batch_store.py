"""Batch records on disk: ids, the record's hash and its audit link, atomic writes, checking.

A record is one JSON file, ``<dir>/<batch id>.json``. Its ``integrity`` member holds the
sha256 of the canonical JSON of the record without that member, and the audit trail's head
(seq and line hash) when the record was closed; the trail then gets a ``batch_record`` entry
naming the batch id and that sha256. So the trail anchors the record (an edited record no
longer matches the trail) and the record names the point of the trail it was written at.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.core._files import read_regular
from runtime.ops._audit import AuditLog
from runtime.ops._audit_format import line_hash
from runtime.ops._audit_key import VerifyKey
from runtime.ops._audit_verify import AuditVerification, verify_audit_log
from runtime.ops._signatures import canonical_hash

__all__ = [
    "RecordCheck",
    "UnknownBatchError",
    "check_record",
    "default_batch_dir",
    "list_records",
    "load_record",
    "next_batch_id",
    "record_hash",
    "seal_and_write",
    "used_batch_ids",
]

MAX_RECORD_BYTES = 256 * 1024 * 1024  # a long batch with many events is a few MB
_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}-\d{8}-\d{3,}$")


class UnknownBatchError(Exception):
    """No record with that id in the directory (the message lists the ones there are)."""


def default_batch_dir() -> Path:
    """``$VPLC_STATE_DIR/batches`` (default ``~/.local/state/vplc/batches``)."""
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / "batches"


def used_batch_ids(directory: Path) -> set[str]:
    """The ids of the records in ``directory`` (read once, before the scan starts)."""
    return {p.stem for p in directory.glob("*.json")} if directory.is_dir() else set()


def next_batch_id(used: set[str], prefix: str, day: str) -> str:
    """``<prefix>-<YYYYMMDD>-<NNN>``, the next number of that day not in ``used`` (added to it).

    In memory, so the scan thread never lists a directory; one recorder per directory.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}-{day}-(\d+)$")
    numbers = [int(m.group(1)) for u in used if (m := pattern.match(u))]
    batch_id = f"{prefix}-{day}-{max(numbers, default=0) + 1:03d}"
    used.add(batch_id)
    return batch_id


def record_hash(record: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``record`` without its ``integrity`` member."""
    return canonical_hash({k: v for k, v in record.items() if k != "integrity"})


def seal_and_write(record: dict[str, Any], directory: Path, audit: AuditLog | None) -> Path:
    """Link the record to the trail's head, hash it, write it atomically, anchor it in the trail.

    Runs off the scan thread (the recorder's writer) or after a virtual run.
    """
    directory.mkdir(parents=True, exist_ok=True)
    link: dict[str, Any]
    if audit is not None:
        link = {
            "audit_trail": str(audit.path.resolve()),
            "audit_key": audit.key_id,
            "audit_head_seq": audit.seq,
            "audit_head_hash": audit.head,
        }
    else:
        link = {
            "audit_trail": None,
            "note": "no audit trail configured: the record is not anchored",
        }
    record["audit_link"] = link  # inside the hashed content: the hash covers the link
    record.pop("integrity", None)
    digest = record_hash(record)
    record["integrity"] = {
        "sha256": digest,
        "algorithm": "sha256 of the canonical JSON without 'integrity'",
    }
    path = directory / f"{record['header']['batch_id']}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(directory)
    if audit is not None:
        header = record["header"]
        audit.append(
            "batch_record",
            batch_id=header["batch_id"],
            app=header["app"],
            version=header["version"],
            status=record["summary"]["status"],
            sha256=digest,
            file=path.name,
        )
    return path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_records(directory: Path) -> list[dict[str, Any]]:
    """One summary row per record in ``directory``, oldest first; unreadable files say so."""
    rows = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(read_regular(path, MAX_RECORD_BYTES).decode("utf-8"))
            shape = _shape_problem(record)
            if shape:
                raise ValueError(shape)
            header, summary = record["header"], record["summary"]
            rows.append(
                {
                    "batch_id": header["batch_id"],
                    "product": header["product"],
                    "app": f"{header['app']} {header['version']}",
                    "start": header["start"]["at"],
                    "end": (header.get("end") or {}).get("at"),
                    "status": summary["status"],
                    "deviations": summary["deviations"],
                    "file": str(path),
                }
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else exc
            rows.append({"batch_id": path.stem, "status": f"unreadable: {why}", "file": str(path)})
    return sorted(rows, key=lambda r: str(r.get("start") or ""))


def load_record(directory: Path, batch_id: str) -> dict[str, Any]:
    """The record of ``batch_id``; UnknownBatchError naming the directory and the ids there."""
    path = directory / f"{batch_id}.json"
    if not _ID.match(batch_id) or not path.is_file():
        known = [p.stem for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []
        more = f", … {len(known) - 10} more" if len(known) > 10 else ""
        there = ", ".join(known[-10:]) + more if known else "none"
        raise UnknownBatchError(
            f"no batch record {batch_id!r} in {directory} (records there: {there}). A batch "
            "id looks like BR-20250301-001 (the app's gmp.batch.id_prefix, the UTC day the "
            "batch started, a number); give the directory with --dir if the records are "
            "elsewhere (default $VPLC_STATE_DIR/batches), and list them with `vplc batch list`"
        )
    try:
        record: dict[str, Any] = json.loads(read_regular(path, MAX_RECORD_BYTES).decode("utf-8"))
    except OSError as exc:
        raise UnknownBatchError(f"batch record {path}: cannot read: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise UnknownBatchError(f"batch record {path}: not readable as JSON: {exc}") from None
    shape = _shape_problem(record)
    if shape:
        raise UnknownBatchError(f"batch record {path}: not a batch record: {shape}")
    return record


def _shape_problem(record: Any) -> str:
    """What makes ``record`` no batch record at all ("" when header and summary are there)."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    for key in ("header", "summary"):
        if not isinstance(record.get(key), dict):
            return f"expected {key!r} to be an object, got {type(record.get(key)).__name__}"
    if not isinstance(record["header"].get("batch_id"), str):
        return "expected header.batch_id to be a string"
    return ""


@dataclass
class RecordCheck:
    """What can be claimed about a record: its own hash, the trail, the links between them."""

    ok: bool
    lines: list[str] = field(default_factory=list)
    audit: AuditVerification | None = None

    def summary(self) -> str:
        head = "INTEGRITY VERIFIED" if self.ok else "INTEGRITY NOT VERIFIED"
        return f"{head}: " + "; ".join(self.lines)


def check_record(
    record: dict[str, Any],
    *,
    trail: Path | None = None,
    key: VerifyKey | None = None,
) -> RecordCheck:
    """Recompute the record's hash and check it against the audit trail (``trail`` overrides
    the path the record names); every problem is a line saying where it broke."""
    check = RecordCheck(ok=True)
    link = record.get("audit_link") or {}
    integrity = record.get("integrity") or {}
    if not isinstance(link, dict) or not isinstance(integrity, dict):
        link = link if isinstance(link, dict) else {}
        integrity = integrity if isinstance(integrity, dict) else {}
        check.ok = False
        check.lines.append("audit_link or integrity is not an object: the record was edited")
    stored = integrity.get("sha256")
    digest = record_hash(record)
    if stored != digest:
        check.ok = False
        check.lines.append(
            f"the record's content does not match its own sha256 (stored "
            f"{str(stored)[:12]}…, computed {digest[:12]}…): it was edited"
        )
    else:
        check.lines.append(f"record sha256 {digest}")
    named = link.get("audit_trail")
    if named is not None and not isinstance(named, str):  # an edit: not what seal_and_write wrote
        check.ok = False
        check.lines.append(
            f"audit_link.audit_trail is not a path ({named!r}): the record was edited"
        )
        named = None
    path = trail or (Path(named) if named else None)
    if path is None:
        check.ok = False
        check.lines.append("no audit trail anchors this record (none was configured)")
        return check
    if not path.is_file():
        check.ok = False
        check.lines.append(f"audit trail {path} not found (give it with --audit)")
        return check
    verdict = verify_audit_log(path, key=key)
    check.audit = verdict
    if not verdict.ok:
        check.ok = False
        where = f"at record {verdict.line}" if verdict.line else "as a whole"
        check.lines.append(f"the audit trail {path} FAILED verification {where}: {verdict.error}")
        return check
    check.lines.append(f"audit trail {path}: {verdict.summary()}")
    _check_links(check, record, link | {"sha256": stored}, path)
    return check


def _check_links(
    check: RecordCheck, record: dict[str, Any], link: dict[str, Any], path: Path
) -> None:
    batch_id = record["header"]["batch_id"]
    lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    seq = link.get("audit_head_seq")
    if (
        isinstance(seq, int)
        and seq > 0
        and (seq > len(lines) or line_hash(lines[seq - 1]) != link.get("audit_head_hash"))
    ):
        check.ok = False
        check.lines.append(f"audit record {seq} is not the head the record was linked to")
    anchors = [json.loads(x) for x in lines if b'"batch_record"' in x]
    mine = [
        a for a in anchors if a.get("event") == "batch_record" and a.get("batch_id") == batch_id
    ]
    if not any(a.get("sha256") == link.get("sha256") for a in mine):
        check.ok = False
        check.lines.append(
            f"the audit trail holds no batch_record entry for {batch_id} with this sha256"
        )
    else:
        seqs = ", ".join(str(a["seq"]) for a in mine if a.get("sha256") == link.get("sha256"))
        check.lines.append(f"anchored in the audit trail at record {seqs}")
    commands = {
        (r.get("id"), r.get("user")): r
        for r in (json.loads(x) for x in lines if b'"command"' in x)
        if r.get("event") == "command" and r.get("status") == "accepted"
    }
    actions = record.get("operator_actions")
    missing = [
        str(a.get("command_id"))
        for a in (actions if isinstance(actions, list) else [])
        if isinstance(a, dict)  # an edited record may hold anything: the hash says so
        and a.get("audited")
        and (a.get("command_id"), a.get("user")) not in commands
    ]
    if missing:
        check.ok = False
        check.lines.append(f"operator action(s) {', '.join(missing)} have no accepted audit record")
