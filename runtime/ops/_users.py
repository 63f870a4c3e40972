"""The user store (21 CFR 11.300): unique ids, scrypt passwords, rules, ageing, lockout, audit.

One JSON file (mode 0600) holds the password policy and the users. A user is never deleted,
only disabled, so an id stays unique forever and every signature keeps naming a known person.
Every refusal (unknown id, wrong password, locked, disabled, expired, must change) raises
``LoginRefusedError`` and goes to the audit sink when one is given; a wrong password counts towards
the lockout, which is written to disk before the refusal is answered.

Several processes (the runtime, the MQTT bridge, the CLI, the web HMI) share the file: every
change happens under an exclusive ``flock`` of ``<file>.lock`` after re-reading the file if
another process changed it, and is written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runtime.core._files import read_regular
from runtime.ops._passwords import DEFAULT_N, hash_password, verify_password

MAX_STORE_BYTES = 256 * 1024 * 1024

__all__ = [
    "STORE_FORMAT",
    "AuditSink",
    "LoginRefusedError",
    "PasswordPolicy",
    "PasswordRejectedError",
    "UserRecord",
    "UserStore",
    "UserStoreError",
    "check_user_id",
]

STORE_FORMAT = "vplc-users-1"
AuditSink = Callable[..., Any]  # called as sink(event, **fields), e.g. AuditLog.append
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
# No shared or default accounts (11.300(a), Annex 11 §12): generic names are refused as ids.
_GENERIC_IDS = frozenset(
    {"admin", "administrator", "root", "guest", "default", "shared", "test", "user", "users",
     "operator", "engineer", "viewer", "system", "service", "supervisor", "qa", "manager",
     "anonymous", "nobody", "vplc", "plc"}
)  # fmt: skip
RefusalCode = Literal[
    "unknown", "bad_password", "locked", "disabled", "expired", "must_change", "throttled"
]


def _iso(wall_s: float) -> str:
    return datetime.fromtimestamp(wall_s, UTC).isoformat(timespec="seconds")


class UserStoreError(Exception):
    """The store file cannot be read, parsed or written; ``str()`` names the file and field."""


class PasswordRejectedError(ValueError):
    """A new password breaks the policy; ``str()`` lists every rule it breaks."""


class LoginRefusedError(Exception):
    """Authentication refused; ``str()`` is what the person may be told, ``code`` the cause.

    The message never says whether an id exists when the password is wrong (``unknown`` and
    ``bad_password`` read the same); the audit record names the real cause.
    """

    def __init__(self, reason: str, *, user_id: str, code: RefusalCode) -> None:
        super().__init__(reason)
        self.user_id = user_id
        self.code = code


class PasswordPolicy(BaseModel):
    """Password rules, ageing and lockout (``policy:`` in the store file)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min_length: int = Field(default=12, ge=8, le=128)
    min_classes: int = Field(
        default=3, ge=1, le=4, description="of lower case, upper case, digits, other characters"
    )
    history: int = Field(default=5, ge=0, le=24, description="earlier passwords not reusable")
    max_age_days: float = Field(default=90.0, ge=0, le=3650, description="0: never expires")
    max_failures: int = Field(default=5, ge=1, le=100, description="wrong passwords → locked")
    lockout_s: float | None = Field(
        default=None, gt=0, description="how long a lockout lasts; null: until an admin unlocks"
    )
    failed_login_rate: float = Field(
        default=5.0, gt=0, le=1000, description="failed logins/s on this node before throttling"
    )
    failed_login_burst: int = Field(default=20, ge=1, le=10_000)
    kdf_n: int = Field(default=DEFAULT_N, ge=2**14, le=2**20, description="scrypt cost N")


class UserRecord(BaseModel):
    """One person: id, printed name (11.50), role, password state, enabled or disabled."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    user_id: str
    printed_name: str = Field(min_length=1, max_length=128)
    role: str = Field(min_length=1, max_length=64)
    password_hash: str = Field(repr=False)
    password_set_s: float
    must_change: bool = False
    history: list[str] = Field(default_factory=list, repr=False)
    disabled: bool = False
    disabled_s: float | None = None
    disabled_reason: str = ""
    failures: int = Field(default=0, ge=0)
    locked: bool = False
    locked_s: float | None = None
    created_s: float
    created_by: str

    def password_age_days(self, now_s: float) -> float:
        return (now_s - self.password_set_s) / 86_400.0

    def password_expires_s(self, policy: PasswordPolicy) -> float | None:
        """When the password expires (wall seconds), None when the policy does not age them."""
        if policy.max_age_days <= 0:
            return None
        return self.password_set_s + policy.max_age_days * 86_400.0

    def is_locked(self, policy: PasswordPolicy, now_s: float) -> bool:
        if not self.locked:
            return False
        if policy.lockout_s is None or self.locked_s is None:
            return True
        return now_s < self.locked_s + policy.lockout_s

    def public(self, policy: PasswordPolicy, now_s: float) -> dict[str, Any]:
        """What ``vplc users list`` shows: never the hash."""
        expires = self.password_expires_s(policy)
        return {
            "user_id": self.user_id,
            "printed_name": self.printed_name,
            "role": self.role,
            "status": "disabled"
            if self.disabled
            else "locked"
            if self.is_locked(policy, now_s)
            else "active",
            "password_set": _iso(self.password_set_s),
            "password_expires": _iso(expires) if expires is not None else None,
            "must_change": self.must_change,
            "failures": self.failures,
            "disabled_reason": self.disabled_reason or None,
            "created": _iso(self.created_s),
            "created_by": self.created_by,
        }


class _StoreFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["vplc-users-1"] = "vplc-users-1"
    policy: PasswordPolicy = Field(default_factory=PasswordPolicy)
    users: dict[str, UserRecord] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_are_ids(self) -> _StoreFile:
        for key, user in self.users.items():
            if key != user.user_id:
                raise ValueError(f"users.{key}.user_id is {user.user_id!r}, not {key!r}")
        return self


def check_user_id(user_id: str) -> None:
    """Raise ValueError unless ``user_id`` is a well-formed, personal (not generic) id."""
    if not _ID_RE.match(user_id):
        raise ValueError(
            f"user id {user_id!r}: expected 2-64 characters, letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    if user_id.lower() in _GENERIC_IDS:
        raise ValueError(
            f"user id {user_id!r} is a generic name; ids are personal (no shared or default "
            "accounts, 21 CFR 11.300(a)): use the person's own id, e.g. jdoe"
        )


def _classes(password: str) -> int:
    kinds = (str.islower, str.isupper, str.isdigit)
    found = sum(any(test(c) for c in password) for test in kinds)
    return found + any(not (c.isalnum()) for c in password)


class UserStore:
    """The users of one node; see the module docstring for sharing between processes."""

    def __init__(
        self,
        path: Path | str,
        *,
        policy: PasswordPolicy | None = None,
        audit: AuditSink | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> None:
        self.path = Path(path)
        self.policy = policy or PasswordPolicy()
        self.audit = audit
        self.roles = roles
        self._users: dict[str, UserRecord] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._budget = float(self.policy.failed_login_burst)
        self._budget_at: float | None = None
        # A remote HMI sends its user's password with every command: remember a successful
        # check (an HMAC under a per-process key, never the password) so that costs no scrypt.
        self._cache_key = os.urandom(32)
        self._verified: dict[str, bytes] = {}

    # ------------------------------------------------------------------ file
    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        audit: AuditSink | None = None,
        roles: tuple[str, ...] | None = None,
        create: bool = False,
        policy: PasswordPolicy | None = None,
    ) -> UserStore:
        """Read the store; ``create``: a missing file is a new, empty store (with ``policy``)."""
        store = cls(path, audit=audit, roles=roles, policy=policy)
        if store.path.exists():
            store._read()
        elif not create:
            raise UserStoreError(
                f"user store {store.path}: no such file (create it with `vplc users add "
                f"--store {store.path} ...`)"
            )
        return store

    def _read(self) -> None:
        try:
            stat = self.path.stat()
            # Not a FIFO (blocks) nor /dev/zero (fills memory); a store of 10,000 users is ~10 MB.
            data = json.loads(read_regular(self.path, MAX_STORE_BYTES).decode("utf-8"))
        except OSError as exc:
            raise UserStoreError(f"user store {self.path}: {exc.strerror}") from None
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise UserStoreError(f"user store {self.path}: not valid JSON ({exc})") from None
        try:
            parsed = _StoreFile.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(file)"
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            raise UserStoreError(f"user store {self.path}: {loc}: {msg}") from None
        if self.roles is not None:
            for user in parsed.users.values():
                if user.role not in self.roles:
                    raise UserStoreError(
                        f"user store {self.path}: users.{user.user_id}.role: unknown role "
                        f"{user.role!r} (roles: {', '.join(self.roles)})"
                    )
        self.policy = parsed.policy
        self._users = dict(parsed.users)
        self._stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def save(self) -> None:
        """Write the store atomically (0600): temporary file, fsync, rename."""
        body = _StoreFile(policy=self.policy, users=self._users).model_dump(mode="json")
        text = json.dumps(body, indent=2, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            stat = self.path.stat()
        except OSError as exc:
            raise UserStoreError(f"user store {self.path}: cannot write: {exc.strerror}") from None
        self._stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Exclusive access across processes; re-read when another process wrote the file."""
        with self._lock:
            lock_path = self.path.with_name(self.path.name + ".lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._refresh()
                yield
            finally:
                os.close(fd)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._stamp:
            self._read()

    # ------------------------------------------------------------------ reading
    def get(self, user_id: str) -> UserRecord | None:
        with self._lock:
            self._refresh()
            user = self._users.get(user_id)
            return user.model_copy() if user is not None else None

    def users(self) -> list[UserRecord]:
        with self._lock:
            self._refresh()
            return [u.model_copy() for u in self._users.values()]

    # ------------------------------------------------------------------ authentication
    def authenticate(
        self, user_id: str, password: str, *, now_s: float, purpose: str = "login", source: str = ""
    ) -> UserRecord:
        """The user's record if the password is right and the account usable, else refused.

        ``purpose`` (login, command, signature) and ``source`` go into the audit record of a
        refusal. A wrong password counts towards the lockout; reaching ``max_failures`` locks.
        """
        with self._transaction():
            try:
                return self._authenticate(user_id, password, now_s=now_s, allow_stale=False)
            except LoginRefusedError as exc:
                self._refused(exc, now_s=now_s, purpose=purpose, source=source)
                raise

    def _authenticate(
        self, user_id: str, password: str, *, now_s: float, allow_stale: bool
    ) -> UserRecord:
        policy = self.policy
        user = self._users.get(user_id)
        wrong = f"user id {user_id!r} or its password is wrong"
        if user is not None and user.disabled:
            raise LoginRefusedError(
                f"user {user_id!r} is disabled ({user.disabled_reason or 'no reason given'})",
                user_id=user_id,
                code="disabled",
            )
        if user is not None and user.is_locked(policy, now_s):
            until = (
                f"until {_iso(user.locked_s + policy.lockout_s)}"
                if policy.lockout_s is not None and user.locked_s is not None
                else "until an administrator unlocks it (vplc users reset/unlock)"
            )
            raise LoginRefusedError(
                f"user {user_id!r} is locked after {user.failures} failed attempts, {until}",
                user_id=user_id,
                code="locked",
            )
        if not self._take_budget(now_s):
            raise LoginRefusedError(
                "too many failed logins on this node; try again in a few seconds",
                user_id=user_id,
                code="throttled",
            )
        if user is None:
            verify_password(password, "")  # the same cost as a real check: timing tells nothing
            self._spend_budget()
            raise LoginRefusedError(wrong, user_id=user_id, code="unknown")
        proof = hmac.new(
            self._cache_key, f"{user.password_hash}\0{password}".encode(), hashlib.sha256
        ).digest()
        cached = self._verified.get(user_id)
        if cached is None or not hmac.compare_digest(cached, proof):
            if not verify_password(password, user.password_hash):
                self._spend_budget()
                self._count_failure(user, now_s)
                raise LoginRefusedError(wrong, user_id=user_id, code="bad_password")
            self._verified[user_id] = proof
        if user.failures or user.locked:
            user.failures, user.locked, user.locked_s = 0, False, None
            self.save()
        if not allow_stale:
            self._check_fresh(user, now_s)
        return user.model_copy()

    def _check_fresh(self, user: UserRecord, now_s: float) -> None:
        if user.must_change:
            raise LoginRefusedError(
                f"user {user.user_id!r}: the password was reset by an administrator; set a new "
                f"one first (vplc users passwd {user.user_id})",
                user_id=user.user_id,
                code="must_change",
            )
        expires = user.password_expires_s(self.policy)
        if expires is not None and now_s >= expires:
            raise LoginRefusedError(
                f"user {user.user_id!r}: the password expired on {_iso(expires)}; set a new one "
                f"(vplc users passwd {user.user_id})",
                user_id=user.user_id,
                code="expired",
            )

    def _take_budget(self, now_s: float) -> bool:
        """Failed logins cost one scrypt each: a node-wide budget keeps a guessing flood cheap."""
        p = self.policy
        if self._budget_at is not None:
            self._budget = min(
                float(p.failed_login_burst),
                self._budget + max(0.0, now_s - self._budget_at) * p.failed_login_rate,
            )
        self._budget_at = now_s
        return self._budget >= 1.0

    def _spend_budget(self) -> None:
        self._budget -= 1.0

    def _count_failure(self, user: UserRecord, now_s: float) -> None:
        user.failures += 1
        if user.failures >= self.policy.max_failures and not user.locked:
            user.locked, user.locked_s = True, now_s
            self.save()  # the lockout is on disk before the refusal is answered
            self._emit("user_locked", subject=user.user_id, failures=user.failures, at=_iso(now_s))
        else:
            self.save()

    def _refused(self, exc: LoginRefusedError, *, now_s: float, purpose: str, source: str) -> None:
        user = self._users.get(exc.user_id)
        self._emit(
            "login_refused",
            user=exc.user_id,
            code=exc.code,
            reason=str(exc),
            purpose=purpose,
            source=source,
            failures=user.failures if user is not None else None,
            status="refused",
            at=_iso(now_s),
        )

    def _emit(self, event: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit(event, **fields)

    # ------------------------------------------------------------------ administration
    def check_password(self, user_id: str, printed_name: str, password: str) -> None:
        """Raise PasswordRejectedError listing every rule ``password`` breaks (history aside)."""
        p = self.policy
        broken = []
        if len(password) < p.min_length:
            broken.append(f"at least {p.min_length} characters (got {len(password)})")
        if _classes(password) < p.min_classes:
            broken.append(
                f"at least {p.min_classes} of: lower case, upper case, digits, other characters"
            )
        lowered = password.lower()
        names = [user_id.lower(), *(w.lower() for w in printed_name.split() if len(w) >= 3)]
        if any(n and n in lowered for n in names):
            broken.append("must not contain the user id or a part of the printed name")
        if broken:
            raise PasswordRejectedError(f"password for {user_id!r} rejected: " + "; ".join(broken))

    def _check_reuse(self, user: UserRecord, password: str) -> None:
        if self.policy.history == 0:
            return
        earlier = [user.password_hash, *user.history][: self.policy.history]
        if any(verify_password(password, h) for h in earlier):
            raise PasswordRejectedError(
                f"password for {user.user_id!r} rejected: it is one of the last "
                f"{self.policy.history} passwords of this user"
            )

    def _set_password(self, user: UserRecord, password: str, now_s: float) -> None:
        if self.policy.history:
            user.history = [user.password_hash, *user.history][: self.policy.history - 1]
        user.password_hash = hash_password(password, n=self.policy.kdf_n)
        user.password_set_s = now_s

    def add(
        self,
        user_id: str,
        *,
        printed_name: str,
        role: str,
        password: str,
        now_s: float,
        by: str,
        must_change: bool = True,
    ) -> UserRecord:
        """A new user; ``must_change``: the first password is temporary (set by someone else)."""
        check_user_id(user_id)
        if self.roles is not None and role not in self.roles:
            raise ValueError(f"role {role!r} is unknown (roles: {', '.join(self.roles)})")
        if not printed_name.strip():
            raise ValueError("printed name is empty: signatures show it (21 CFR 11.50)")
        self.check_password(user_id, printed_name, password)
        with self._transaction():
            if user_id in self._users:
                state = "disabled" if self._users[user_id].disabled else "active"
                raise ValueError(
                    f"user id {user_id!r} exists already ({state}); ids are never reused"
                )
            user = UserRecord(
                user_id=user_id,
                printed_name=printed_name.strip(),
                role=role,
                password_hash=hash_password(password, n=self.policy.kdf_n),
                password_set_s=now_s,
                must_change=must_change,
                created_s=now_s,
                created_by=by,
            )
            self._users[user_id] = user
            self.save()
        self._emit("user_added", who=by, subject=user_id, role=role, printed_name=printed_name)
        return user.model_copy()

    def _existing(self, user_id: str) -> UserRecord:
        user = self._users.get(user_id)
        if user is None:
            known = ", ".join(sorted(self._users)) or "none"
            raise KeyError(f"no user {user_id!r} in {self.path} (users: {known})")
        return user

    def disable(self, user_id: str, *, reason: str, now_s: float, by: str) -> UserRecord:
        """Disable (never delete): the id stays reserved and its records stay attributable."""
        if not reason.strip():
            raise ValueError("disabling a user needs a reason (it goes to the audit trail)")
        with self._transaction():
            user = self._existing(user_id)
            if user.disabled:
                raise ValueError(f"user {user_id!r} is disabled already")
            user.disabled, user.disabled_s, user.disabled_reason = True, now_s, reason.strip()
            self.save()
        self._emit("user_disabled", who=by, subject=user_id, why=reason)
        return user.model_copy()

    def enable(self, user_id: str, *, reason: str, now_s: float, by: str) -> UserRecord:
        with self._transaction():
            user = self._existing(user_id)
            if not user.disabled:
                raise ValueError(f"user {user_id!r} is not disabled")
            user.disabled, user.disabled_s, user.disabled_reason = False, None, ""
            self.save()
        self._emit("user_enabled", who=by, subject=user_id, why=reason, at=_iso(now_s))
        return user.model_copy()

    def reset(self, user_id: str, *, password: str, now_s: float, by: str) -> UserRecord:
        """An administrator sets a temporary password: unlocks, and the user must change it."""
        with self._transaction():
            user = self._existing(user_id)
            self.check_password(user_id, user.printed_name, password)
            self._set_password(user, password, now_s)
            user.must_change = True
            user.failures, user.locked, user.locked_s = 0, False, None
            self.save()
        self._emit("user_password_reset", who=by, subject=user_id)
        return user.model_copy()

    def unlock(self, user_id: str, *, now_s: float, by: str) -> UserRecord:
        with self._transaction():
            user = self._existing(user_id)
            user.failures, user.locked, user.locked_s = 0, False, None
            self.save()
        self._emit("user_unlocked", who=by, subject=user_id, at=_iso(now_s))
        return user.model_copy()

    def change_password(
        self, user_id: str, old: str, new: str, *, now_s: float, source: str = ""
    ) -> UserRecord:
        """The user's own change (after a reset or expiry): the old password, then the rules."""
        with self._transaction():
            try:
                user = self._authenticate(user_id, old, now_s=now_s, allow_stale=True)
            except LoginRefusedError as exc:
                self._refused(exc, now_s=now_s, purpose="password_change", source=source)
                raise
            stored = self._users[user_id]
            self.check_password(user_id, user.printed_name, new)
            self._check_reuse(stored, new)
            self._set_password(stored, new, now_s)
            stored.must_change = False
            self.save()
        self._emit("user_password_changed", who=user_id, subject=user_id)
        return stored.model_copy()
