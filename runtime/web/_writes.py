"""Browser writes as commands on the one command path, answered with an HTTP status and words.

Every write may carry ``preview: true`` (answered with the content to sign, its hash and the
app's rule) and ``signatures`` (each signer's id, password, meaning and the content hash):
both go to the command unchanged; the command handler checks the passwords and replaces
them by manifestations before anything is logged or audited.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.core._gmp import CriticalAction
from runtime.core.manifest import ParameterSpec
from runtime.ops._access import AccessConfig, AccessDeniedError, Principal
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import (
    AckAlarmCommand,
    CommandResponse,
    CommandValue,
    ForceCommand,
    PhaseCommand,
    SetParameterCommand,
    UnforceCommand,
)
from runtime.ops._refusal import RefusalCode
from runtime.ops._signatures import SignatureIn
from runtime.web._sessions import Session
from runtime.web._signing import describe_preview

__all__ = ["AckBody", "ForceBody", "ParameterBody", "PhaseBody", "UnforceBody", "WebCommands"]

Reason = Field(default="", max_length=1000, description="why: goes to the audit trail")


class _Signable(BaseModel):
    """What every write may add for electronic signatures (runtime.ops._signatures)."""

    model_config = ConfigDict(extra="forbid")
    preview: bool = Field(default=False, description="answer the content to sign, do nothing")
    signatures: list[SignatureIn] = Field(default_factory=list, max_length=3)


class ParameterBody(_Signable):
    name: str = Field(max_length=128)
    value: CommandValue
    reason: str = Reason


class AckBody(_Signable):
    block: str = Field(max_length=256)
    comment: str = Reason


class PhaseBody(_Signable):
    block: str = Field(max_length=256)
    command: str = Field(max_length=32)
    reason: str = Reason


class ForceBody(_Signable):
    point: str = Field(max_length=128)
    value: CommandValue
    reason: str = Reason


class UnforceBody(_Signable):
    point: str = Field(max_length=128)
    reason: str = Reason


class WebCommands:
    """Every write: the session's user and secret, a fresh id and ``ts``, the operator's reason.

    Everything an MQTT command goes through applies (authentication, single use, rate
    limits, the role, the audit record with user = the logged-in user, the run between two
    cycles). The HTTP status says why a refusal happened, from the answer's ``code``
    (``RefusalCode``), never from its words: 403 the role, 422 a parameter value outside its
    limits (which the answer carries), 429 a rate limit, 409 anything else, with
    ``signatures_required: true`` when the app wants e-signatures (the page's signing dialog).
    """

    def __init__(
        self,
        handler: CommandHandler,
        *,
        access: AccessConfig | None,
        params: list[ParameterSpec],
        critical: list[CriticalAction] | None = None,
    ) -> None:
        self.handler = handler
        self.critical = critical or []
        self.access = access
        self.params = {p.name: p for p in params}

    def _base(self, session: Session, body: Any, reason: str) -> dict[str, Any]:
        return {
            "preview": body.preview,
            "signatures": body.signatures,
            "id": f"web-{uuid.uuid4().hex}",
            "ts": datetime.now(UTC),
            "user": session.user,
            "token": session.secret,
            "reason": reason,
        }

    def set_parameter(self, s: Session, body: ParameterBody) -> Any:
        return SetParameterCommand(
            cmd="set_parameter",
            name=body.name,
            value=body.value,
            **self._base(s, body, body.reason),
        )

    def ack(self, s: Session, body: AckBody) -> Any:
        return AckAlarmCommand(
            cmd="ack_alarm", block=body.block, **self._base(s, body, body.comment)
        )

    def phase(self, s: Session, body: PhaseBody) -> Any:
        return PhaseCommand(
            cmd="phase", block=body.block, command=body.command, **self._base(s, body, body.reason)
        )

    def force(self, s: Session, body: ForceBody) -> Any:
        return ForceCommand(
            cmd="force", point=body.point, value=body.value, **self._base(s, body, body.reason)
        )

    def unforce(self, s: Session, body: UnforceBody) -> Any:
        return UnforceCommand(cmd="unforce", point=body.point, **self._base(s, body, body.reason))

    async def run(self, session: Session, cmd: Any) -> tuple[int, dict[str, Any]]:
        """Run on a worker thread (the handler writes the audit trail and waits for the scan)."""
        loop = asyncio.get_running_loop()
        resp: CommandResponse | None = await loop.run_in_executor(None, self.handler.handle, cmd)
        assert resp is not None  # handle(answer_all=True) always answers
        body = resp.model_dump(mode="json")
        if resp.status == "accepted":
            return 200, body
        if resp.status == "preview":
            return 200, body | {"sign": describe_preview(self.critical, cmd, resp.new or {})}
        return self._refusal(session, cmd, body)

    def _refusal(
        self, session: Session, cmd: Any, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        code = body.get("code")
        # Without access (commands disabled) or with the user gone, the page may do nothing.
        if code == RefusalCode.NOT_PERMITTED or not self._permitted(session, cmd.cmd):
            return 403, body
        spec = self.params.get(getattr(cmd, "name", "")) if cmd.cmd == "set_parameter" else None
        if code == RefusalCode.OUT_OF_LIMITS and spec is not None:
            return 422, body | {"limits": {"min": spec.min, "max": spec.max, "unit": spec.unit}}
        if code == RefusalCode.RATE_LIMITED:
            return 429, body
        if code == RefusalCode.SIGNATURE_REQUIRED:  # the page previews, then its dialog
            return 409, body | {"signatures_required": True}
        return 409, body

    def _permitted(self, session: Session, cmd: str) -> bool:
        access = self.access
        if access is None:
            return False
        spec: Principal | None = access.users.get(session.user)
        store = access.user_store_for() if spec is None else None
        if store is not None:  # a personal account: its role is in the user store
            spec = store.get(session.user)
        if spec is None:
            return False
        try:
            access.permit(cmd=cmd, user=session.user, spec=spec, role=None)
        except AccessDeniedError:
            return False
        return True
