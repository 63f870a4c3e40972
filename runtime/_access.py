"""Who may command the runtime: users, shared-secret tokens and ordered roles, from config."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_ROLES",
    "AccessConfig",
    "AccessDeniedError",
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


class AccessConfig(BaseModel):
    """Roles lowest first, the minimum role per command, and the users."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: tuple[str, ...] = DEFAULT_ROLES
    permissions: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))
    users: dict[str, UserSpec] = Field(default_factory=dict)

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

    def rank(self, role: str) -> int:
        return self.roles.index(role)

    def authorize(self, *, cmd: str, user: str, token: str | None, role: str | None) -> str:
        """Return the effective role, or raise AccessDeniedError saying why (never which secret)."""
        spec = self.users.get(user)
        # compare_digest on the hash even for unknown users keeps timing uninformative.
        given = hash_token(token or "")
        expected = spec.token_sha256 if spec else "0" * 64
        if spec is None or not hmac.compare_digest(given, expected):
            raise AccessDeniedError(f"user {user!r} is unknown or the token does not match")
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
    """Read an access file (YAML); pydantic errors name the key."""
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return AccessConfig.model_validate(data)
