"""Deployment records: the append-only audit trail and each deployment's current/previous image."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["AuditTrail", "DeploymentStore", "default_state_dir", "default_user"]


def default_state_dir() -> Path:
    """/var/lib/vplc-deploy for root (a plant node), else ~/.local/state/vplc."""
    if os.geteuid() == 0:
        return Path("/var/lib/vplc-deploy")
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "vplc"


def default_user() -> str:
    return os.environ.get("USER") or getpass.getuser()


class AuditTrail:
    """``audit.jsonl``: one JSON record per deploy/update/rollback/remove, hash-chained.

    Each record carries the sha256 of the previous line, so an edited or deleted line breaks the
    chain (``verify()``); records are appended with O_APPEND and fsync'd before returning.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "audit.jsonl"

    def _last_hash(self) -> str:
        if not self.path.exists():
            return ""
        lines = self.path.read_bytes().splitlines()
        return hashlib.sha256(lines[-1]).hexdigest() if lines else ""

    def append(self, **record: Any) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}
        entry["prev_sha256"] = self._last_hash()
        line = json.dumps(entry, sort_keys=True).encode() + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text(encoding="utf-8").splitlines() if x]

    def verify(self) -> bool:
        """True when every record names the hash of the line before it."""
        prev = ""
        for raw in self.path.read_bytes().splitlines() if self.path.exists() else []:
            if json.loads(raw).get("prev_sha256") != prev:
                return False
            prev = hashlib.sha256(raw).hexdigest()
        return True


class DeploymentStore:
    """``deployments/<name>.json``: the deployment file as applied, current and previous image."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "deployments"

    def get(self, name: str) -> dict[str, Any] | None:
        path = self.dir / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def put(self, name: str, record: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{name}.json.tmp"
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / f"{name}.json")

    def delete(self, name: str) -> None:
        (self.dir / f"{name}.json").unlink(missing_ok=True)
