"""Sessions of the web HMI: idle timeout, lockout, CSRF comparison (clock injected)."""

from __future__ import annotations

import pytest

from runtime.ops._access import AccessConfig, hash_token
from runtime.web._sessions import LoginRefusedError, SessionStore


def store(now: list[float]) -> SessionStore:
    access = AccessConfig.model_validate(
        {"users": {"olga": {"role": "operator", "token_sha256": hash_token("pw")}}}
    )
    return SessionStore(
        access, idle_s=60, max_sessions=2, failures=2, lockout_s=30, mono=lambda: now[0]
    )


def test_idle_session_ends_and_activity_keeps_it() -> None:
    now = [0.0]
    s = store(now)
    session = s.login("olga", "pw")
    now[0] = 50
    assert s.get(session.sid) is session  # activity at 50 s
    now[0] = 100
    assert s.get(session.sid, touch=False) is session  # 50 s idle: still alive
    assert s.alive(session.sid)
    now[0] = 111
    assert s.get(session.sid) is None  # 61 s idle: ended
    assert len(s) == 0


def test_lockout_after_failures_then_unlocked() -> None:
    now = [0.0]
    s = store(now)
    for _ in range(2):
        with pytest.raises(LoginRefusedError, match="wrong password"):
            s.login("olga", "bad")
    with pytest.raises(LoginRefusedError, match="locked out"):
        s.login("olga", "pw")
    now[0] = 31
    assert s.login("olga", "pw").role == "operator"


def test_oldest_session_makes_room_and_csrf_compares() -> None:
    now = [0.0]
    s = store(now)
    first = s.login("olga", "pw")
    now[0] = 1
    second = s.login("olga", "pw")
    now[0] = 2
    s.login("olga", "pw")
    assert s.get(first.sid) is None and s.get(second.sid) is second
    assert second.csrf_ok(second.csrf) and not second.csrf_ok(first.csrf)
    assert not second.csrf_ok(None)


def test_no_access_file_no_login() -> None:
    s = SessionStore(None, idle_s=60, max_sessions=2, failures=2, lockout_s=30)
    with pytest.raises(LoginRefusedError, match="no access file"):
        s.login("olga", "pw")
