"""The user store: password hashing, rules, ageing, lockout, disable, audit of every refusal."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.ops._passwords import hash_parameters, hash_password, verify_password
from runtime.ops._users import (
    LoginRefusedError,
    PasswordPolicy,
    PasswordRejectedError,
    UserStore,
    UserStoreError,
    check_user_id,
)

T0 = 1_750_000_000.0
GOOD = "Correct-Horse-7"
FAST = PasswordPolicy(kdf_n=2**14, max_failures=3)


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


def _store(tmp_path: Path, sink: Sink | None = None, policy: PasswordPolicy = FAST) -> UserStore:
    return UserStore.load(
        tmp_path / "users.json",
        create=True,
        policy=policy,
        audit=sink,
        roles=("viewer", "operator", "engineer"),
    )


def _active(store: UserStore, user_id: str = "jdoe", role: str = "operator") -> None:
    store.add(user_id, printed_name="Jane Doe", role=role, password="Temp-Pass-123", now_s=T0,
              by="boot")  # fmt: skip
    store.change_password(user_id, "Temp-Pass-123", GOOD, now_s=T0)


def test_hash_is_self_describing_salted_and_verifies() -> None:
    a, b = hash_password("s3cret-Pass", n=2**12), hash_password("s3cret-Pass", n=2**12)
    assert a != b and a.startswith("scrypt$4096$8$1$")
    assert hash_parameters(a) == (4096, 8, 1)
    assert verify_password("s3cret-Pass", a)
    assert not verify_password("s3cret-pass", a)
    assert not verify_password("s3cret-Pass", "scrypt$4096$8$1$!!$!!")
    assert not verify_password("", "")
    with pytest.raises(ValueError, match="power of two"):
        hash_password("x", n=3000)


def test_add_and_authenticate_returns_the_record(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _active(store)
    user = store.authenticate("jdoe", GOOD, now_s=T0 + 10)
    assert (user.user_id, user.printed_name, user.role) == ("jdoe", "Jane Doe", "operator")
    assert user.password_age_days(T0 + 86_400) == pytest.approx(1.0)
    # Another process reading the same file sees the same user.
    again = UserStore.load(tmp_path / "users.json")
    assert again.authenticate("jdoe", GOOD, now_s=T0 + 20).role == "operator"
    assert os.stat(tmp_path / "users.json").st_mode & 0o777 == 0o600
    assert GOOD not in (tmp_path / "users.json").read_text()


def test_first_password_must_be_changed(tmp_path: Path) -> None:
    sink = Sink()
    store = _store(tmp_path, sink)
    store.add("jdoe", printed_name="Jane Doe", role="operator", password="Temp-Pass-123",
              now_s=T0, by="boot")  # fmt: skip
    with pytest.raises(LoginRefusedError) as err:
        store.authenticate("jdoe", "Temp-Pass-123", now_s=T0)
    assert err.value.code == "must_change"
    assert sink.events[-1][0] == "login_refused" and sink.events[-1][1]["code"] == "must_change"


def test_lockout_after_max_failures_is_audited_and_persistent(tmp_path: Path) -> None:
    sink = Sink()
    store = _store(tmp_path, sink)
    _active(store)
    for i in range(3):
        with pytest.raises(LoginRefusedError) as err:
            store.authenticate("jdoe", "wrong", now_s=T0 + i, purpose="signature")
        assert err.value.code == "bad_password"
    assert "user_locked" in sink.names()
    refusals = [f for e, f in sink.events if e == "login_refused"]
    assert [f["failures"] for f in refusals] == [1, 2, 3]
    assert refusals[0]["purpose"] == "signature"
    # The right password no longer helps, in this process or another one.
    with pytest.raises(LoginRefusedError) as err:
        store.authenticate("jdoe", GOOD, now_s=T0 + 10)
    assert err.value.code == "locked" and "administrator" in str(err.value)
    with pytest.raises(LoginRefusedError):
        UserStore.load(tmp_path / "users.json").authenticate("jdoe", GOOD, now_s=T0 + 11)
    store.unlock("jdoe", now_s=T0 + 12, by="admin1")
    assert store.authenticate("jdoe", GOOD, now_s=T0 + 13).user_id == "jdoe"


def test_timed_lockout_expires(tmp_path: Path) -> None:
    store = _store(tmp_path, policy=PasswordPolicy(kdf_n=2**14, max_failures=1, lockout_s=60))
    _active(store)
    with pytest.raises(LoginRefusedError):
        store.authenticate("jdoe", "nope", now_s=T0)
    with pytest.raises(LoginRefusedError, match="until"):
        store.authenticate("jdoe", GOOD, now_s=T0 + 59)
    assert store.authenticate("jdoe", GOOD, now_s=T0 + 61).failures == 0


def test_unknown_and_wrong_password_read_the_same_but_audit_differs(tmp_path: Path) -> None:
    sink = Sink()
    store = _store(tmp_path, sink)
    _active(store)
    with pytest.raises(LoginRefusedError) as unknown:
        store.authenticate("mallory", GOOD, now_s=T0)
    with pytest.raises(LoginRefusedError) as wrong:
        store.authenticate("jdoe", "bad", now_s=T0)
    assert "or its password is wrong" in str(unknown.value)
    assert "or its password is wrong" in str(wrong.value)
    codes = [f["code"] for e, f in sink.events if e == "login_refused"]
    assert codes == ["unknown", "bad_password"]


def test_password_ageing(tmp_path: Path) -> None:
    store = _store(tmp_path, policy=PasswordPolicy(kdf_n=2**14, max_age_days=30))
    _active(store)
    store.authenticate("jdoe", GOOD, now_s=T0 + 29 * 86_400)
    with pytest.raises(LoginRefusedError) as err:
        store.authenticate("jdoe", GOOD, now_s=T0 + 31 * 86_400)
    assert err.value.code == "expired"
    store.change_password("jdoe", GOOD, "Another-Good-8", now_s=T0 + 31 * 86_400)
    store.authenticate("jdoe", "Another-Good-8", now_s=T0 + 32 * 86_400)


def test_password_rules_and_history(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(PasswordRejectedError, match="at least 12 characters"):
        store.add("jdoe", printed_name="Jane Doe", role="operator", password="short",
                  now_s=T0, by="b")  # fmt: skip
    with pytest.raises(PasswordRejectedError, match="3 of"):
        store.add("jdoe", printed_name="Jane Doe", role="operator", password="alllowercaseletters",
                  now_s=T0, by="b")  # fmt: skip
    with pytest.raises(PasswordRejectedError, match="user id"):
        store.add("jdoe", printed_name="Jane Doe", role="operator", password="Jdoe-is-great-1",
                  now_s=T0, by="b")  # fmt: skip
    _active(store)
    with pytest.raises(PasswordRejectedError, match="last 5 passwords"):
        store.change_password("jdoe", GOOD, GOOD, now_s=T0 + 1)
    with pytest.raises(PasswordRejectedError, match="last 5 passwords"):
        store.change_password("jdoe", GOOD, "Temp-Pass-123", now_s=T0 + 1)


def test_ids_are_unique_personal_and_never_reused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _active(store)
    for bad in ("admin", "Operator", "a", "has space"):
        with pytest.raises(ValueError):
            check_user_id(bad)
    with pytest.raises(ValueError, match="unknown"):
        store.add("bob", printed_name="Bob B", role="wizard", password=GOOD, now_s=T0, by="b")
    store.disable("jdoe", reason="left the company", now_s=T0 + 5, by="admin1")
    with pytest.raises(ValueError, match="never reused"):
        store.add("jdoe", printed_name="Other Jane", role="viewer", password=GOOD, now_s=T0,
                  by="b")  # fmt: skip
    with pytest.raises(LoginRefusedError) as err:
        store.authenticate("jdoe", GOOD, now_s=T0 + 6)
    assert err.value.code == "disabled" and "left the company" in str(err.value)
    listed = store.get("jdoe")
    assert listed is not None and listed.public(store.policy, T0)["status"] == "disabled"


def test_reset_unlocks_and_forces_a_change(tmp_path: Path) -> None:
    sink = Sink()
    store = _store(tmp_path, sink)
    _active(store)
    for i in range(3):
        with pytest.raises(LoginRefusedError):
            store.authenticate("jdoe", "x", now_s=T0 + i)
    store.reset("jdoe", password="Reset-Pass-456", now_s=T0 + 10, by="admin1")
    with pytest.raises(LoginRefusedError) as err:
        store.authenticate("jdoe", "Reset-Pass-456", now_s=T0 + 11)
    assert err.value.code == "must_change"
    store.change_password("jdoe", "Reset-Pass-456", "Brand-New-Pass-9", now_s=T0 + 12)
    assert store.authenticate("jdoe", "Brand-New-Pass-9", now_s=T0 + 13).failures == 0
    assert {"user_password_reset", "user_password_changed"} <= set(sink.names())
    reset = dict(sink.events)["user_password_reset"]
    assert reset == {"who": "admin1", "subject": "jdoe"}


def test_failed_login_flood_is_throttled_without_scrypt(tmp_path: Path) -> None:
    policy = PasswordPolicy(kdf_n=2**14, failed_login_rate=1.0, failed_login_burst=2)
    store = _store(tmp_path, policy=policy)
    codes = []
    for _ in range(4):
        with pytest.raises(LoginRefusedError) as err:
            store.authenticate("nobody-here", "x", now_s=T0)
        codes.append(err.value.code)
    assert codes == ["unknown", "unknown", "throttled", "throttled"]
    with pytest.raises(LoginRefusedError) as err:
        store.authenticate("nobody-here", "x", now_s=T0 + 5)
    assert err.value.code == "unknown"


def test_bad_store_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"format": "vplc-users-1", "policy": {"min_lenght": 3}}))
    with pytest.raises(UserStoreError, match=r"policy\.min_lenght: unknown field"):
        UserStore.load(path)
    with pytest.raises(UserStoreError, match="no such file"):
        UserStore.load(tmp_path / "missing.json")
