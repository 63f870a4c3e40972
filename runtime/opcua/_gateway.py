"""OPC UA writes and method calls as commands on the one command path, answered as StatusCodes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole

from hal import coerce
from runtime.core.manifest import ParameterSpec
from runtime.front import shortest_float32
from runtime.opcua._space import ACK, MethodTarget
from runtime.ops._access import AccessConfig, AccessDeniedError
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import (
    AckAlarmCommand,
    CommandResponse,
    PhaseCommand,
    SetParameterCommand,
)

__all__ = ["ANONYMOUS", "CommandGateway", "SessionUser", "shortest_float32"]

ANONYMOUS = "anonymous"  # the command path's user name for an anonymous session
_log = structlog.get_logger("vplc.opcua")
S = ua.StatusCodes


@dataclass
class SessionUser(User):
    """An OPC UA session's user: the access file's name; the password is its command token.

    The password is kept (never shown) so each write or call is authenticated again on the
    command path exactly as an MQTT command is, with the access file as the one authority.
    """

    secret: str | None = field(default=None, repr=False)


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


class CommandGateway:
    """Turns a session's write or call into a command, runs it, maps the answer to a StatusCode.

    Everything a command from MQTT goes through applies: authentication against the access
    file, single use (a fresh id and ``ts`` per OPC UA request), rate limits, the role, the
    audit record (user = the session's user name), the run between two cycles. The handler
    blocks (disk, the pipe to the scan process), so it runs on worker threads.
    """

    def __init__(
        self,
        handler: CommandHandler,
        *,
        access: AccessConfig | None,
        params: list[ParameterSpec],
        source: str,
    ) -> None:
        self.handler = handler
        self.access = access
        self.params = params
        self.source = source

    # ------------------------------------------------------------------ writes
    async def write(self, user: User, k: int, variant: ua.Variant) -> ua.StatusCode:
        spec = self.params[k]
        value = variant.Value
        if isinstance(value, bytes | bytearray | list | tuple | dict) or value is None:
            # Not a scalar any command carries; the OPC UA type system already says why.
            _log.warning("opcua_write_refused", parameter=spec.name, variant=variant.VariantType)
            return _status(S.BadTypeMismatch)
        if not isinstance(value, bool | int | float | str):
            return _status(S.BadTypeMismatch)
        if variant.VariantType == ua.VariantType.Float and isinstance(value, float):
            value = shortest_float32(value)
        name, secret = _who(user)
        cmd = SetParameterCommand(
            cmd="set_parameter",
            id=self._new_id(),
            ts=datetime.now(UTC),
            user=name,
            token=secret,
            reason=f"OPC UA write ({self.source})",
            name=spec.name,
            value=value,
        )
        resp = await self._run(cmd)
        if resp.status == "accepted":
            return _status(S.Good)
        return self._refusal(resp, name, "set_parameter", spec=spec, value=value)

    # ------------------------------------------------------------------ methods
    async def call(self, user: User, target: MethodTarget) -> ua.StatusCode:
        name, secret = _who(user)
        if target.command == ACK:
            ack = AckAlarmCommand(
                cmd="ack_alarm",
                id=self._new_id(),
                ts=datetime.now(UTC),
                user=name,
                token=secret,
                reason=f"OPC UA method call ({self.source})",
                block=target.block,
            )
            resp = await self._run(ack)
            if resp.status == "accepted":
                return _status(S.Good)
            return self._refusal(resp, name, "ack_alarm")
        cmd = PhaseCommand(
            cmd="phase",
            id=self._new_id(),
            ts=datetime.now(UTC),
            user=name,
            token=secret,
            reason=f"OPC UA method call ({self.source})",
            block=target.block,
            command=target.command,
        )
        resp = await self._run(cmd)
        if resp.status == "accepted":
            return _status(S.Good)
        return self._refusal(resp, name, "phase")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _new_id() -> str:
        return f"opcua-{uuid.uuid4().hex}"

    async def _run(self, cmd: Any) -> CommandResponse:
        loop = asyncio.get_running_loop()
        resp = await loop.run_in_executor(None, self.handler.handle, cmd)
        assert resp is not None  # handle(answer_all=True) always answers
        if resp.status != "accepted":
            _log.info("opcua_command_refused", user=cmd.user, cmd=cmd.cmd, reason=resp.reason)
        return resp

    def _refusal(
        self,
        resp: CommandResponse,
        user: str,
        cmd: str,
        *,
        spec: ParameterSpec | None = None,
        value: Any = None,
    ) -> ua.StatusCode:
        """The StatusCode a client understands for why the command path refused."""
        if not self._permitted(user, cmd):
            return _status(S.BadUserAccessDenied)
        if spec is not None:
            try:
                coerce(spec.type, value)
            except TypeError:
                return _status(S.BadTypeMismatch)
            except ValueError:
                return _status(S.BadOutOfRange)
            try:
                spec.check(value)
            except (TypeError, ValueError):
                return _status(S.BadOutOfRange)
        if "commands/s" in resp.reason:
            return _status(S.BadTooManyOperations)
        return _status(S.BadInvalidState)

    def _permitted(self, user: str, cmd: str) -> bool:
        access = self.access
        spec = access.users.get(user) if access is not None else None
        if access is None or spec is None:
            return False
        try:
            access.permit(cmd=cmd, user=user, spec=spec, role=None)
        except AccessDeniedError:
            return False
        return True


def _who(user: User) -> tuple[str, str | None]:
    if isinstance(user, SessionUser) and user.role is not UserRole.Anonymous and user.name:
        return user.name, user.secret
    return ANONYMOUS, None
