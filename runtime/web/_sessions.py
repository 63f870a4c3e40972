"""Web HMI logins and sessions: the access file's users, idle timeout, CSRF tokens, lockouts."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.ops._access import AccessConfig, AccessDeniedError

__all__ = ["LoginRefusedError", "Session", "SessionStore", "authenticate"]


class LoginRefusedError(Exception):
    """A login that did not open a session; ``str()`` is what the login page shows."""


def authenticate(access: AccessConfig | None, user: str, password: str) -> tuple[str, str]:
    """(user id, role) when ``password`` is the user's secret: the password of a user in the
    access file's ``user_store`` (scrypt, lockout and ageing there, refusals audited), or a
    token user's token. The same secret MQTT commands and OPC UA logins carry, so one access
    file serves every front-end.
    """
    if access is None:
        raise LoginRefusedError("logins are disabled: the web HMI has no access file")
    try:
        spec = access.authenticate(user, password, purpose="login", source="web")
    except AccessDeniedError:
        raise LoginRefusedError("unknown user or wrong password") from None
    return user, spec.role


@dataclass
class Session:
    """One browser's login. ``secret`` stays in this process (never in a cookie): every
    command is authenticated again on the command path with it, as MQTT's and OPC UA's are."""

    sid: str
    user: str
    role: str
    csrf: str
    created_s: float
    last_s: float
    secret: str = field(repr=False)

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionStore:
    """Sessions by id with an idle timeout; failed logins counted per user, then a lockout."""

    def __init__(
        self,
        access: AccessConfig | None,
        *,
        idle_s: float,
        max_sessions: int,
        failures: int,
        lockout_s: float,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access = access
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self.max_failures = failures
        self.lockout_s = lockout_s
        self.mono = mono
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # user → (count, locked until)
        self.logins = 0
        self.refused = 0

    def login(self, user: str, password: str) -> Session:
        now = self.mono()
        count, until = self._failures.get(user, (0, 0.0))
        if until > now:
            self.refused += 1
            raise LoginRefusedError(
                f"user {user!r} is locked out for {until - now:.0f} s after {count} failed logins"
            )
        try:
            user_id, role = authenticate(self.access, user, password)
        except LoginRefusedError:
            self.refused += 1
            count += 1
            locked = now + self.lockout_s if count >= self.max_failures else 0.0
            self._failures[user] = (0 if locked else count, locked)
            raise
        self._failures.pop(user, None)
        self.expire()
        if len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_s)
            del self._sessions[oldest.sid]
        session = Session(
            sid=secrets.token_urlsafe(32),
            user=user_id,
            role=role,
            csrf=secrets.token_urlsafe(32),
            created_s=now,
            last_s=now,
            secret=password,
        )
        self._sessions[session.sid] = session
        self.logins += 1
        return session

    def get(self, sid: str | None, *, touch: bool = True) -> Session | None:
        """The live session for a cookie value; an idle one is ended here."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self.mono()
        if now - session.last_s > self.idle_s:
            del self._sessions[sid]
            return None
        if touch:
            session.last_s = now
        return session

    def alive(self, sid: str) -> bool:
        return self.get(sid, touch=False) is not None

    def logout(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def expire(self) -> None:
        now = self.mono()
        for sid in [s.sid for s in self._sessions.values() if now - s.last_s > self.idle_s]:
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)
