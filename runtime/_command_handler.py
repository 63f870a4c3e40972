"""From untrusted bytes to an audited answer: parse, authorize, apply, log; never raises."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import TypeAdapter, ValidationError

from runtime._access import AccessConfig, AccessDeniedError
from runtime._audit import AuditLog
from runtime._commands import Command, CommandResponse, apply_command

if TYPE_CHECKING:
    from runtime._engine import ScanEngine

__all__ = ["MAX_COMMAND_BYTES", "CommandHandler", "parse_command"]

MAX_COMMAND_BYTES = 64 * 1024
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)


class BadCommandError(Exception):
    def __init__(self, reason: str, raw: Any = None) -> None:
        super().__init__(reason)
        self.raw = raw


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _lenient(payload: bytes | str) -> Any:
    """Python's own JSON reading (NaN allowed), only to recover the id to answer to."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_command(payload: bytes | str, *, max_bytes: int = MAX_COMMAND_BYTES) -> Any:
    """Decode and validate one command; raise BadCommandError carrying the raw object if any."""
    if len(payload) > max_bytes:
        raise BadCommandError(f"payload of {len(payload)} bytes exceeds the {max_bytes} byte limit")
    try:
        raw = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadCommandError(f"malformed JSON: {exc}", _lenient(payload)) from None
    if not isinstance(raw, dict):
        raise BadCommandError(f"a command is a JSON object, got {type(raw).__name__}")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise BadCommandError(f"invalid command: {_describe(exc)}", raw) from None
    except RecursionError:
        raise BadCommandError("invalid command: nested too deeply", raw) from None


def _recover_id(raw: Any) -> str | int | None:
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class CommandHandler:
    """Turns command payloads into responses for one engine, with access control and audit.

    Without an access config every command is refused: a runtime reachable over a network
    must not obey anonymous commands. Every command, accepted or refused, is audited.
    """

    def __init__(
        self,
        engine: ScanEngine | None,
        *,
        access: AccessConfig | None,
        audit: AuditLog | None,
        timeout_s: float = 2.0,
        max_bytes: int = MAX_COMMAND_BYTES,
        source: str = "",
        app: str | None = None,
        apply: Callable[[Any], CommandResponse] | None = None,
    ) -> None:
        # Without an engine (the out-of-process MQTT bridge) ``apply`` carries an authorized
        # command to the process that has one; parsing, roles and audit stay here.
        if apply is None:
            if engine is None:
                raise ValueError("CommandHandler needs an engine or an apply function")
            eng = engine

            def apply(cmd: Any) -> CommandResponse:
                return apply_command(eng, cmd, timeout_s=self.timeout_s)

        if app is None:
            if engine is None:
                raise ValueError("CommandHandler needs an engine or an app name")
            app = engine.app.name
        self.engine = engine
        self.app_name = app
        self._apply = apply
        self.access = access
        self.audit = audit
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.source = source
        self.accepted = 0
        self.refused = 0
        self.log = structlog.get_logger("vplc.commands").bind(app=app)

    def handle_payload(self, payload: bytes | str) -> CommandResponse:
        """Parse and handle; any failure, even a bug, becomes a refused response."""
        try:
            try:
                cmd = parse_command(payload, max_bytes=self.max_bytes)
            except BadCommandError as exc:
                raw = exc.raw if isinstance(exc.raw, dict) else {}
                resp = CommandResponse(
                    id=_recover_id(raw),
                    cmd=raw.get("cmd") if isinstance(raw.get("cmd"), str) else None,
                    status="refused",
                    reason=str(exc),
                    user=raw.get("user") if isinstance(raw.get("user"), str) else None,
                )
                return self._finish(resp, role=None, why="")
            return self.handle(cmd)
        except Exception as exc:
            self.log.exception("command_handler_error")
            return CommandResponse(
                id=None, status="refused", reason=f"internal error: {type(exc).__name__}"
            )

    def handle(self, cmd: Any) -> CommandResponse:
        """Authorize and apply a validated command."""
        role: str | None = None
        if self.access is None:
            resp = CommandResponse(
                id=cmd.id,
                cmd=cmd.cmd,
                status="refused",
                reason="commands are disabled: no access configuration",
                user=cmd.user,
            )
            return self._finish(resp, role=None, why=cmd.reason)
        try:
            role = self.access.authorize(cmd=cmd.cmd, user=cmd.user, token=cmd.token, role=cmd.role)
        except AccessDeniedError as exc:
            resp = CommandResponse(
                id=cmd.id, cmd=cmd.cmd, status="refused", reason=str(exc), user=cmd.user
            )
            return self._finish(resp, role=cmd.role, why=cmd.reason, target=_target(cmd))
        resp = self._apply(cmd)
        return self._finish(resp, role=role, why=cmd.reason, target=_target(cmd))

    def _finish(
        self, resp: CommandResponse, *, role: str | None, why: str, target: Any = None
    ) -> CommandResponse:
        if resp.status == "accepted":
            self.accepted += 1
        else:
            self.refused += 1
        if self.audit is not None:
            try:
                self.audit.append(
                    "command",
                    id=resp.id,
                    cmd=resp.cmd,
                    target=target,
                    user=resp.user,
                    role=role,
                    status=resp.status,
                    reason=resp.reason,
                    why=why,
                    old=_auditable(resp.old),
                    new=_auditable(resp.new),
                    app=self.app_name,
                    source=self.source,
                )
            except Exception as exc:
                # The action may already have happened: answer truthfully, shout about the log.
                self.log.error("audit_write_failed", error=repr(exc), id=resp.id)
        else:
            self.log.info("command", **resp.model_dump(exclude={"ts"}))
        return resp


def _auditable(value: Any) -> Any:
    """Large values (a handover snapshot) go to the audit log as their digest, not in full."""
    text = json.dumps(value, default=str, sort_keys=True)
    if len(text) <= 4096:
        return value
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "bytes": len(text)}


def _target(cmd: Any) -> Any:
    for key in ("name", "point", "block"):
        if hasattr(cmd, key):
            target = getattr(cmd, key)
            if hasattr(cmd, "command"):
                return f"{target}:{cmd.command}"
            return target
    return None
