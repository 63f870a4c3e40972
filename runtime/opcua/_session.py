"""asyncua's server with vplc's sessions: logins from the access file, writes/calls as commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager

from runtime.opcua._conditions import ACKNOWLEDGE
from runtime.opcua._gateway import SessionUser
from runtime.opcua._limits import LimitedSession, SessionLimits
from runtime.opcua._space import ACK, MethodTarget
from runtime.ops._access import AccessConfig, AccessDeniedError

if TYPE_CHECKING:
    from runtime.opcua._gateway import CommandGateway
    from runtime.opcua._space import AppSpace

__all__ = ["AccessUserManager", "VplcInternalServer"]


class AccessUserManager(UserManager):
    """User name + password logins checked against the access file (password = the token).

    Every known user gets asyncua's ``User`` role (read, browse, subscribe, write, call);
    what a user may change is decided per command by the access file's roles on the
    command path. Anonymous sessions only when the config allows them (reads only: their
    commands fail authentication). Certificate logins are not offered.
    """

    def __init__(self, access: AccessConfig | None, *, anonymous: bool) -> None:
        self.access = access
        self.anonymous = anonymous

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None:
            return SessionUser(role=UserRole.User, name=None) if self.anonymous else None
        if self.access is None:
            return None
        try:
            self.access.authenticate(username, password or "")
        except AccessDeniedError:
            return None  # the session answers BadUserAccessDenied, naming no reason
        return SessionUser(role=UserRole.User, name=username, secret=password)


class VplcSession(LimitedSession):
    """A session whose writes to parameters and calls of vplc methods take the command path
    (and whose subscriptions are limited: ``runtime.opcua._limits``)."""

    iserver: VplcInternalServer

    async def write(self, params: ua.WriteParameters) -> list[ua.StatusCode]:
        gateway, space = self.iserver.vplc_gateway, self.iserver.vplc_space
        if gateway is None or space is None:
            return await super().write(params)
        items = params.NodesToWrite
        results: list[ua.StatusCode | None] = [None] * len(items)
        others: list[int] = []
        user = self.user or User()
        for i, item in enumerate(items):
            k = space.param_by_node.get(item.NodeId)
            if k is None and item.NodeId not in self.aspace:
                results[i] = _code(ua.StatusCodes.BadNodeIdUnknown)
            elif k is None and item.NodeId.NamespaceIndex == space.idx:
                results[i] = _code(ua.StatusCodes.BadNotWritable)  # points, tasks, batch
            elif k is None:
                others.append(i)
            elif item.AttributeId != ua.AttributeIds.Value or item.IndexRange:
                results[i] = ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNotWritable))
            else:
                results[i] = await gateway.write(user, k, item.Value.Value or ua.Variant())
        if others:
            rest = ua.WriteParameters(NodesToWrite=[items[i] for i in others])
            for i, status in zip(others, await super().write(rest), strict=True):
                results[i] = status
        return [
            r if r is not None else ua.StatusCode(ua.UInt32(ua.StatusCodes.BadInternalError))
            for r in results
        ]

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        gateway, space = self.iserver.vplc_gateway, self.iserver.vplc_space
        if gateway is None or space is None:
            return await super().call(params)
        results: list[ua.CallMethodResult] = []
        user = self.user or User()
        for request in params:
            if request.MethodId == ACKNOWLEDGE and request.ObjectId in space.conditions.by_object:
                results.append(await self._acknowledge(gateway, space, user, request))
                continue
            target = space.methods.get(request.MethodId)
            if target is None:
                results.extend(await super().call([request]))
                continue
            result = ua.CallMethodResult()
            if request.ObjectId != target.object_id:
                result.StatusCode = _code(ua.StatusCodes.BadMethodInvalid)
            elif request.InputArguments:
                result.StatusCode = ua.StatusCode(ua.UInt32(ua.StatusCodes.BadTooManyArguments))
            else:
                result.StatusCode = await gateway.call(user, target)
            results.append(result)
        return results

    async def _acknowledge(
        self, gateway: CommandGateway, space: AppSpace, user: User, request: ua.CallMethodRequest
    ) -> ua.CallMethodResult:
        """AcknowledgeableConditionType.Acknowledge(EventId, Comment) on one of our alarms."""
        result = ua.CallMethodResult()
        path, code = space.conditions.ack_target(request.ObjectId, request.InputArguments or [])
        if path is None:
            result.StatusCode = _code(code)
            return result
        target = MethodTarget(block=path, command=ACK, object_id=request.ObjectId)
        result.StatusCode = await gateway.call(user, target)
        return result


def _code(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


class VplcInternalServer(InternalServer):
    """Creates VplcSessions; the gateway and space are set once the address space exists."""

    vplc_gateway: CommandGateway | None = None
    vplc_space: AppSpace | None = None
    vplc_limits: SessionLimits | None = None

    def create_session(
        self, name: str, user: User | None = None, external: bool = False
    ) -> InternalSession:
        who = user if user is not None else User(role=UserRole.Anonymous)
        session = VplcSession(
            self, self.aspace, self.subscription_service, name, user=who, external=external
        )
        session.vplc_limits = self.vplc_limits
        return session
