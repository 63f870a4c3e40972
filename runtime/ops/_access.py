"""Who may command the runtime: users (a user store, or shared-secret tokens), ordered roles.

``user_store:`` points at the per-user store (``runtime.ops._users``: scrypt passwords,
lockout, ageing), so MQTT, OPC UA, the CLI and the web HMI take roles from one place; the
command's ``token`` is then the user's password. ``users:`` with sha256 tokens stays for
machine accounts and existing set-ups; an id may not be in both.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from runtime.core._yaml import YamlError, read_yaml_file
from runtime.ops._users import AuditSink, LoginRefusedError, UserRecord, UserStore, UserStoreError

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_ROLES",
    "AccessConfig",
    "AccessDeniedError",
    "CommandPolicy",
    "Principal",
    "UserSpec",
    "hash_token",
    "load_access_config",
]

DEFAULT_ROLES = ("viewer", "operator", "engineer")

# Minimum role per command. Operators run the process (setpoints, alarms, phases); only an
# engineer changes what the machine itself does (lifecycle, forcing), as on a real PLC panel.
DEFAULT_PERMISSIONS: dict[str, str] = {
    "set_parameter": "operator",
    "ack_alarm": "operator",
    "phase": "operator",
    "force": "engineer",
    "unforce": "engineer",
    "start": "engineer",
    "stop": "engineer",
    "reset": "engineer",
    "handover_release": "engineer",
    "handover_claim": "engineer",
    "handover_resume": "engineer",
    "handover_status": "viewer",
    "manage_users": "engineer",  # vplc users add|disable|reset|unlock|enable
}


class AccessDeniedError(Exception):
    """A command whose user, token or role does not allow it; ``str()`` says which."""


def hash_token(token: str) -> str:
    """The hex sha256 a config file stores instead of the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserSpec(BaseModel):
    """One user: the role granted and the sha256 of the user's shared-secret token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


Principal = UserSpec | UserRecord  # what authentication yields: both carry ``role``


class CommandPolicy(BaseModel):
    """How commands are kept single-use and how much any one sender may cost (``commands:``).

    A command carries ``ts`` (when it was sent); it is refused when older than ``max_age_s``
    or more than ``max_future_s`` ahead (clock skew between HMI and node). Its ``id`` (per
    user) is remembered for ``max_age_s + max_future_s`` (after that the ``ts`` check refuses
    a replay anyway), on disk, so a restart does not forget it; at most ``max_ids`` at once.
    Rates are per second with a burst allowance (token buckets): per authenticated user, for
    all authenticated commands together, and for the answers to unauthenticated or malformed
    messages (beyond it those are counted, not answered). Those pre-authentication refusals go
    to the audit trail as one summary record per ``summary_s``, not one record each.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_age_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    max_future_s: float = Field(default=10.0, ge=0.0, le=600.0)
    max_ids: int = Field(default=100_000, ge=100, le=10_000_000)
    user_rate: float = Field(default=10.0, gt=0, le=10_000, description="commands/s per user")
    user_burst: int = Field(default=20, ge=1, le=100_000)
    global_rate: float = Field(default=50.0, gt=0, le=100_000, description="commands/s in all")
    global_burst: int = Field(default=100, ge=1, le=1_000_000)
    refusal_answer_rate: float = Field(
        default=20.0, ge=0, le=100_000, description="answers/s to unauthenticated senders"
    )
    refusal_answer_burst: int = Field(default=20, ge=0, le=100_000)
    summary_s: float = Field(default=60.0, ge=1.0, le=86_400.0)
    seen_file: Path | None = Field(
        default=None,
        description="where used ids are kept (default $VPLC_STATE_DIR/commands/<topic>.seen)",
    )

    @property
    def id_window_s(self) -> float:
        return self.max_age_s + self.max_future_s


class AccessConfig(BaseModel):
    """Roles lowest first, the minimum role per command, the users, and the command policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: tuple[str, ...] = DEFAULT_ROLES
    permissions: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))
    users: dict[str, UserSpec] = Field(default_factory=dict)
    user_store: Path | None = Field(
        default=None, description="per-user store (JSON, vplc users add); relative to this file"
    )
    commands: CommandPolicy = Field(default_factory=CommandPolicy)
    _store: UserStore | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _known_roles(self) -> AccessConfig:
        roles = set(self.roles)
        if len(roles) != len(self.roles):
            raise ValueError("roles: duplicate role name")
        for cmd, role in self.permissions.items():
            if role not in roles:
                raise ValueError(f"permissions.{cmd}: unknown role {role!r} (roles: {self.roles})")
        for name, user in self.users.items():
            if user.role not in roles:
                raise ValueError(f"users.{name}.role: unknown role {user.role!r}")
        return self

    def __getstate__(self) -> dict[Any, Any]:
        # A loaded store holds a lock: a front-end's child gets the file's path and loads
        # the store itself at its first login (it re-reads it whenever another process wrote).
        state = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private and private.get("_store") is not None:
            state["__pydantic_private__"] = {**private, "_store": None}
        return state

    def rank(self, role: str) -> int:
        return self.roles.index(role)

    def authorize(self, *, cmd: str, user: str, token: str | None, role: str | None) -> str:
        """Return the effective role, or raise AccessDeniedError saying why (never which secret)."""
        return self.permit(cmd=cmd, user=user, spec=self.authenticate(user, token), role=role)

    def user_store_for(self, audit: AuditSink | None = None) -> UserStore | None:
        """The user store this file points at (loaded once); ``audit`` receives its refusals."""
        if self.user_store is None:
            return None
        if self._store is None:
            store = UserStore.load(self.user_store, roles=self.roles)
            clash = sorted(set(self.users) & {u.user_id for u in store.users()})
            if clash:
                raise UserStoreError(
                    f"users {clash} are both token users (access file users:) and in the user "
                    f"store {self.user_store}; keep each id in one place"
                )
            self._store = store
        if audit is not None and self._store.audit is None:
            self._store.audit = audit
        return self._store

    def authenticate(
        self, user: str, token: str | None, *, purpose: str = "command", source: str = ""
    ) -> Principal:
        """The user's entry when the token (or the store user's password) matches.

        Else AccessDeniedError. Token users cost one sha256; store users one scrypt (cached
        after the first success per password), with the store's lockout and ageing rules.
        """
        store = self.user_store_for()
        if store is not None and user not in self.users:
            try:
                return store.authenticate(
                    user, token or "", now_s=time.time(), purpose=purpose, source=source
                )
            except LoginRefusedError as exc:
                raise AccessDeniedError(str(exc)) from None
        spec = self.users.get(user)
        # compare_digest on the hash even for unknown users keeps timing uninformative.
        given = hash_token(token or "")
        expected = spec.token_sha256 if spec else "0" * 64
        if spec is None or not hmac.compare_digest(given, expected):
            raise AccessDeniedError(f"user {user!r} is unknown or the token does not match")
        return spec

    def permit(self, *, cmd: str, user: str, spec: Principal, role: str | None) -> str:
        """The effective role of an authenticated user for ``cmd``, or AccessDeniedError."""
        effective = spec.role
        if role is not None:
            if role not in self.roles:
                raise AccessDeniedError(f"unknown role {role!r} (roles: {', '.join(self.roles)})")
            if self.rank(role) > self.rank(spec.role):
                raise AccessDeniedError(f"user {user!r} is {spec.role!r}, may not act as {role!r}")
            effective = role
        needed = self.permissions.get(cmd)
        if needed is None:
            raise AccessDeniedError(f"command {cmd!r} has no permission entry; nobody may run it")
        if self.rank(effective) < self.rank(needed):
            raise AccessDeniedError(
                f"command {cmd!r} needs role {needed!r}; {user!r} is {effective!r}"
            )
        return effective


def load_access_config(path: Path | str) -> AccessConfig:
    """Read an access file (YAML); pydantic errors name the key, ValueError names the file."""
    path = Path(path)
    try:  # UTF-8, bounded, not a FIFO or a device (runtime.core._yaml)
        data: Any = read_yaml_file(path) or {}
    except YamlError as exc:
        raise ValueError(f"{path}: {exc}") from None
    seen = (data.get("commands") or {}).get("seen_file") if isinstance(data, dict) else None
    if isinstance(seen, str):  # relative to the access file, like the bridge config's paths
        data["commands"]["seen_file"] = str(path.parent / seen)
    store = data.get("user_store") if isinstance(data, dict) else None
    if isinstance(store, str):
        data["user_store"] = str(path.parent / Path(store).expanduser())
    config = AccessConfig.model_validate(data)
    try:  # a missing or broken store is a config error now, not a refusal at the first command
        config.user_store_for()
    except UserStoreError as exc:
        raise ValueError(f"{path}: user_store: {exc}") from None
    return config
