"""From untrusted bytes to an audited answer: parse, authenticate, check, apply; never raises."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import TypeAdapter, ValidationError

from runtime.ops._access import AccessConfig, AccessDeniedError, CommandPolicy, Principal
from runtime.ops._audit import AuditLog
from runtime.ops._command_guard import CommandGuard, SeenIdsError, default_seen_path
from runtime.ops._commands import Command, CommandResponse, apply_command
from runtime.ops._refusal import RefusalCode
from runtime.ops._signatures import manifestation
from runtime.ops._users import LoginRefusedError

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["MAX_COMMAND_BYTES", "CommandHandler", "Screened", "parse_command"]

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

    The order is the cost order (DESIGN.md: authenticate → authorise → validate → run →
    audit → answer): parse and authenticate first, and a message that fails there is only
    counted (``CommandGuard``: a rate-limited log line, one audit summary per period, answers
    rate-limited), so an anonymous flood costs no disk write. After authentication: retained
    copies, rates, stale or future ``ts`` and used ids are refused and audited; then the role,
    the audit trail's readiness (no record, no action) and the action itself.

    Without an access config every command is refused: a runtime reachable over a network
    must not obey anonymous commands.
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
        seen_path: Path | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
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
        policy = access.commands if access is not None else CommandPolicy()
        if seen_path is None:
            seen_path = policy.seen_file or default_seen_path(source or f"app-{app}")
        try:  # said at start-up, not at the first command: every command would be refused
            seen_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.log.error("command_ids_unavailable", path=str(seen_path), error=exc.strerror)
        if access is not None and audit is not None:
            access.user_store_for(audit=self._store_audit)
        self.guard = CommandGuard(
            policy,
            seen_path=seen_path,
            summary=self._write_summary if audit is not None else None,
            wall=wall,
            mono=mono,
        )

    def statistics(self) -> dict[str, Any]:
        """Accepted and refused commands, and the refusals counted before authentication."""
        return {"accepted": self.accepted, "refused": self.refused, **self.guard.counts}

    def close(self) -> None:
        """Write the pending refusal summary (call when the bridge stops)."""
        self.guard.close()

    def handle_payload(self, payload: bytes | str, *, retain: bool = False) -> CommandResponse:
        """Parse and handle; always an answer (refusals before authentication included)."""
        response = self.handle_message(payload, retain=retain, answer_all=True)
        assert response is not None
        return response

    def handle_message(
        self,
        payload: bytes | str,
        *,
        retain: bool = False,
        topic: str | None = None,
        answer_all: bool = False,
    ) -> CommandResponse | None:
        """``screen`` then, when it passed, ``finish``, on this thread (see ``screen``)."""
        screened = self.screen(payload, retain=retain, topic=topic, answer_all=answer_all)
        return screened.finish() if screened.finish is not None else screened.response

    def screen(
        self,
        payload: bytes | str,
        *,
        retain: bool = False,
        topic: str | None = None,
        answer_all: bool = False,
    ) -> Screened:
        """The cheap part, for the network thread: parse, authenticate, rates (no I/O).

        ``retain``: the message is the broker's retained copy; ``topic``: where it came from.
        The result is either an answer now (``response``; None: do not answer, a refusal
        before authentication beyond the answer rate) or ``finish``, to be run off the network
        thread: it records the id, checks ``ts`` and the role, runs the command between two
        cycles and writes the audit record. A flood of junk thus never leaves the network
        thread and never waits behind a disk write. Any failure, even a bug, is a refusal.
        """
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
                return Screened(self._early(resp, "malformed", answer_all))
            return self._screen(cmd, retain=retain, topic=topic, answer_all=answer_all)
        except Exception as exc:
            return Screened(self._internal_error(exc))

    def handle(
        self,
        cmd: Any,
        *,
        retain: bool = False,
        topic: str | None = None,
        answer_all: bool = True,
    ) -> CommandResponse | None:
        """Authenticate, check single use and rates, authorise and apply a validated command."""
        screened = self._screen(cmd, retain=retain, topic=topic, answer_all=answer_all)
        return screened.finish() if screened.finish is not None else screened.response

    def handle_authenticated(
        self, cmd: Any, *, retain: bool = False, topic: str | None = None
    ) -> CommandResponse:
        """A command whose sender the transport vouched for: no token to check.

        For protocols whose commands carry no user (Sparkplug B NCMD/DCMD): who may publish
        them is the broker's ACL, and the configuration names the access file's user they act
        as. Everything after authentication applies as for any command: rates, retained
        copies, stale ``ts``, used ids, the user's role, the audit trail.
        """
        if self.access is None:
            self.refused += 1
            return _refuse(cmd, "commands are disabled: no access configuration")
        spec = self.access.users.get(cmd.user)
        if spec is None:
            self.refused += 1
            return _refuse(cmd, f"user {cmd.user!r} is not in the access configuration")
        limited = self.guard.rate_limited(cmd.user)
        if limited is not None:
            self.refused += 1
            return _refuse(cmd, limited, RefusalCode.RATE_LIMITED)
        return self._run(cmd, spec, retain=retain, topic=topic)

    def _screen(self, cmd: Any, *, retain: bool, topic: str | None, answer_all: bool) -> Screened:
        if self.access is None:
            reason = "commands are disabled: no access configuration"
            return Screened(self._early(_refuse(cmd, reason), "disabled", answer_all))
        try:
            spec = self.access.authenticate(cmd.user, cmd.token, source=topic or self.source)
        except AccessDeniedError as exc:
            return Screened(self._early(_refuse(cmd, str(exc)), "unauthenticated", answer_all))
        limited = self.guard.rate_limited(cmd.user)
        if limited is not None:
            self.refused += 1
            return Screened(_refuse(cmd, limited, RefusalCode.RATE_LIMITED))
        return Screened(finish=partial(self._run, cmd, spec, retain=retain, topic=topic))

    def _run(
        self, cmd: Any, spec: Principal, *, retain: bool, topic: str | None
    ) -> CommandResponse:
        """The costly part of an authenticated command: id, ts, role, action, audit."""
        try:
            assert self.access is not None
            audit = {"role": cmd.role, "why": cmd.reason, "target": _target(cmd), "topic": topic}
            reason = self._single_use(cmd, retain=retain, topic=topic)
            if reason is not None:
                return self._finish(_refuse(cmd, reason), **audit)
            try:
                role = self.access.permit(cmd=cmd.cmd, user=cmd.user, spec=spec, role=cmd.role)
            except AccessDeniedError as exc:
                return self._finish(_refuse(cmd, str(exc), RefusalCode.NOT_PERMITTED), **audit)
            audit["role"] = role
            invalid = RefusalCode.SIGNATURE_INVALID
            if cmd.signed:
                why = "signed: is set by the runtime after checking passwords, not by a sender"
                return self._finish(_refuse(cmd, why, invalid), **audit)
            if cmd.signatures:
                try:
                    cmd = self._verify_signatures(cmd, topic)
                except AccessDeniedError as exc:  # any signer's: password, role, the sender's
                    return self._finish(_refuse(cmd, str(exc), invalid), **audit)
            if self.audit is not None:
                trouble = self.audit.ready()
                if trouble is not None:  # no record, no action
                    self.log.error("audit_unavailable", error=trouble, id=cmd.id)
                    self.refused += 1
                    return _refuse(
                        cmd, f"the audit trail cannot be written, so nothing is done: {trouble}"
                    )
            return self._finish(self._apply(cmd), **audit)
        except Exception as exc:
            return self._internal_error(exc)

    def _verify_signatures(self, cmd: Any, topic: str | None) -> Any:
        """Each signer's password (11.200: both components at each signing) → manifestations.

        The first signer is the sender; a wrong password is refused, counted towards that
        user's lockout and audited by the user store. AccessDeniedError says why.
        """
        assert self.access is not None
        store = self.access.user_store_for()
        if store is None:
            raise AccessDeniedError(
                "electronic signatures need personal accounts: the access file has no user_store"
            )
        if cmd.signatures[0].user != cmd.user:
            raise AccessDeniedError(
                f"the first signature must be the sender's ({cmd.user!r}), who performs it"
            )
        signed = []
        for sig in cmd.signatures:
            try:
                user = store.authenticate(
                    sig.user,
                    sig.password,
                    now_s=time.time(),
                    purpose="signature",
                    source=topic or self.source,
                )
            except LoginRefusedError as exc:
                raise AccessDeniedError(f"signature of {sig.user!r} refused: {exc}") from None
            self.access.permit(cmd=cmd.cmd, user=sig.user, spec=user, role=None)
            signed.append(
                manifestation(
                    user_id=user.user_id,
                    printed_name=user.printed_name,
                    role=user.role,
                    meaning=sig.meaning,
                    content_hash=sig.content_hash,
                )
            )
        return cmd.model_copy(update={"signatures": [], "signed": signed})

    def _internal_error(self, exc: Exception) -> CommandResponse:
        self.log.exception("command_handler_error", error=repr(exc))
        self.refused += 1
        return CommandResponse(
            id=None, status="refused", reason=f"internal error: {type(exc).__name__}"
        )

    def _single_use(self, cmd: Any, *, retain: bool, topic: str | None) -> str | None:
        if retain:
            where = topic or "the command topic"
            return (
                "retained command message refused: commands must not be published with the "
                "retain flag (the broker would deliver it again at every reconnect); nothing "
                f"was done. Clear it: mosquitto_pub -r -n -t {where}"
            )
        stale = self.guard.stale(cmd.ts)
        if stale is not None:
            return stale
        try:
            return self.guard.replayed(cmd.user, cmd.id)
        except SeenIdsError as exc:
            self.log.error("command_ids_unavailable", error=str(exc))
            return f"replay protection unavailable, so nothing is done: {exc}"

    def _early(
        self, resp: CommandResponse, category: str, answer_all: bool
    ) -> CommandResponse | None:
        """A refusal before authentication: counted and summarised, not audited one by one."""
        self.refused += 1
        answer = self.guard.refused_early(category, resp.reason, resp.user)
        return resp if answer or answer_all else None

    def _store_audit(self, event: str, **fields: Any) -> None:
        """The user store's records; unknown ids and throttled guesses go to the summary only
        (an anonymous flood must cost no disk write), a known user's refusals one by one."""
        if event == "login_refused" and fields.get("code") in ("unknown", "throttled"):
            return
        assert self.audit is not None
        self.audit.append(event, app=self.app_name, **fields)

    def _write_summary(self, body: dict[str, Any]) -> None:
        assert self.audit is not None
        self.audit.append("command_refusals", app=self.app_name, source=self.source, **body)

    def _finish(
        self,
        resp: CommandResponse,
        *,
        role: str | None,
        why: str,
        target: Any = None,
        topic: str | None = None,
    ) -> CommandResponse:
        if resp.status != "refused":
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
                    signatures=resp.signatures,
                    app=self.app_name,
                    source=topic or self.source,
                )
            except Exception as exc:
                # The action may already have happened: answer truthfully, shout about the log.
                self.log.error("audit_write_failed", error=repr(exc), id=resp.id)
        else:
            self.log.info("command", **resp.model_dump(exclude={"ts"}))
        return resp


def _refuse(cmd: Any, reason: str, code: RefusalCode | None = None) -> CommandResponse:
    return CommandResponse(
        id=cmd.id, cmd=cmd.cmd, status="refused", reason=reason, code=code, user=cmd.user
    )


@dataclass(frozen=True, slots=True)
class Screened:
    """``CommandHandler.screen``'s verdict: an answer now (None: none), or ``finish`` to run."""

    response: CommandResponse | None = None
    finish: Callable[[], CommandResponse] | None = None


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
