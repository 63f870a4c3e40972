"""Deployment records: the audit trail (runtime's signed one) and each deployment's images."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from containers._image import LABEL
from runtime.ops import (
    KEY_ENV,
    KEY_NAME,
    AuditLog,
    AuditVerification,
    classify,
    load_verify_key,
    public_path,
    verify_audit_log,
)

if TYPE_CHECKING:
    from docker.models.containers import Container

__all__ = ["AuditTrail", "DeploymentStore", "default_state_dir", "default_user", "note_restarts"]


def default_state_dir() -> Path:
    """/var/lib/vplc-deploy for root (a plant node), else ~/.local/state/vplc."""
    if os.geteuid() == 0:
        return Path("/var/lib/vplc-deploy")
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "vplc"


def default_user() -> str:
    return os.environ.get("USER") or getpass.getuser()


class AuditTrail:
    """The manager's audit trail: the one signed trail format of ``runtime.ops._audit``.

    ``STATE_DIR/audit.jsonl``, one ``container`` record per deploy/update/rollback/remove
    (outcome ok, failed or refused, with image IDs) and per restart observed; signed with the
    key in ``STATE_DIR/keys/`` (``$VPLC_AUDIT_KEY`` overrides) and anchored by
    ``audit.jsonl.head``. Appends take an exclusive lock on the file, so two managers running
    at once keep one chain. A trail of the earlier unkeyed format is continued, not replaced:
    its first signed record chains to the old last line. Opened at the first use, so a
    read-only command (status) by a user who cannot write the state dir still works.
    """

    EVENT = "container"

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "audit.jsonl"
        self.key_path = _key_path(state_dir)
        self._log: AuditLog | None = None

    @property
    def log(self) -> AuditLog:
        if self._log is None:
            self._log = AuditLog(self.path, key_file=self.key_path)
        return self._log

    def append(self, **record: Any) -> dict[str, Any]:
        return self.log.append(self.EVENT, **record)

    def records(self) -> list[dict[str, Any]]:
        """The container operations, oldest first (earlier unkeyed ones included)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            every = [json.loads(line) for line in fh if line.strip()]
        return [r for r in every if r.get("event") == self.EVENT or classify(r) == "container-v1"]

    def verify(self) -> bool:
        """True when the trail is intact against this node's key and its signed head."""
        return self.verification().ok

    def verification(self) -> AuditVerification:
        for candidate in (public_path(self.key_path), self.key_path):
            if candidate.exists():
                return verify_audit_log(self.path, key=load_verify_key(candidate))
        return verify_audit_log(self.path)  # no key (yet): an empty or unkeyed trail says so


def _key_path(state_dir: Path) -> Path:
    env = os.environ.get(KEY_ENV)
    return Path(env) if env else state_dir / "keys" / KEY_NAME


def note_restarts(
    audit: AuditTrail, store: DeploymentStore, containers: list[Container], *, who: str
) -> list[dict[str, Any]]:
    """Record restarts Docker made since the manager last looked (RestartCount growth).

    The manager is not a daemon: a restart by the restart policy is seen when ``status``,
    ``update``, ``rollback``, ``remove`` or ``logs`` next looks at the container, and recorded
    then (``observed_at``) with the container's last start time. Counts are kept per
    container ID in the deployment's record, so each restart is recorded once.
    """
    written = []
    for c in containers:
        name = c.labels.get(LABEL + "deployment")
        rec = store.get(name) if name else None
        if name is None or rec is None or not c.id:
            continue
        count = int(c.attrs.get("RestartCount", 0) or 0)
        seen = dict(rec.get("restarts_seen") or {})
        before = int(seen.get(c.id, 0))
        if count <= before:
            continue
        state = c.attrs.get("State") or {}
        written.append(
            audit.append(
                who=who,
                what="restart",
                deployment=name,
                outcome="observed",
                restarts=count - before,
                restart_count=count,
                container=c.id[:12],
                image_id=c.attrs.get("Image"),
                version=c.labels.get(LABEL + "version"),
                started_at=state.get("StartedAt"),
                exit_code=state.get("ExitCode"),
                state=state.get("Status"),
                reason="restarted by Docker's restart policy (seen by the manager)",
            )
        )
        store.put(name, rec | {"restarts_seen": {c.id: count}})
    return written


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
