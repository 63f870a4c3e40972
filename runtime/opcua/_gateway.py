"""OPC UA writes and method calls as commands on the one command path, answered as StatusCodes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

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
from runtime.ops._refusal import RefusalCode

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


class _Envelope(TypedDict):
    """The fields every command carries besides its own (``runtime.ops._commands``)."""

    id: str
    ts: datetime
    user: str
    token: str | None
    reason: str


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
        # Shows the link's parameter values in the address space (``Sampler.show_params``):
        # an accepted write's value is there before the client gets Good, so its next read
        # returns it, not the value of the sample before.
        self.after_accepted: Callable[[], Awaitable[None]] | None = None

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
            **self._envelope(name, secret, "write"),
            name=spec.name,
            value=value,
        )
        return await self._answer(cmd, spec=spec, value=value)

    # ------------------------------------------------------------------ methods
    async def call(self, user: User, target: MethodTarget) -> ua.StatusCode:
        name, secret = _who(user)
        envelope = self._envelope(name, secret, "method call")
        if target.command == ACK:
            ack = AckAlarmCommand(cmd="ack_alarm", **envelope, block=target.block)
            return await self._answer(ack)
        cmd = PhaseCommand(cmd="phase", **envelope, block=target.block, command=target.command)
        return await self._answer(cmd)

    # ------------------------------------------------------------------ helpers
    def _envelope(self, user: str, secret: str | None, what: str) -> _Envelope:
        """What every command from OPC UA carries: a fresh id and time (single use, as each
        request is one command), the session's user and token, and where it came from."""
        return {
            "id": f"opcua-{uuid.uuid4().hex}",
            "ts": datetime.now(UTC),
            "user": user,
            "token": secret,
            "reason": f"OPC UA {what} ({self.source})",
        }

    async def _answer(
        self,
        cmd: SetParameterCommand | AckAlarmCommand | PhaseCommand,
        *,
        spec: ParameterSpec | None = None,
        value: Any = None,
    ) -> ua.StatusCode:
        """Run the command; Good, or the StatusCode for why it was refused."""
        resp = await self._run(cmd)
        if resp.status == "accepted":
            if self.after_accepted is not None:
                await self.after_accepted()
            return _status(S.Good)
        return self._refusal(resp, cmd.user, cmd.cmd, spec=spec, value=value)

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
        if resp.code == RefusalCode.RATE_LIMITED:  # the user's rate or the runtime's
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
