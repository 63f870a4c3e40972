"""The OPC UA server configuration (``vplc run --opcua opcua.yaml``): YAML → pydantic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runtime.core._yaml import YamlError, read_yaml_file

__all__ = ["SECURE_POLICIES", "OpcuaConfig", "default_pki_dir", "load_opcua_config"]

Policy = Literal["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "None"]
# Every endpoint signs and encrypts; Basic128Rsa15 and Basic256 (SHA-1) are deprecated by the
# OPC Foundation and not offered at all.
SECURE_POLICIES: tuple[Policy, ...] = (
    "Basic256Sha256",
    "Aes128_Sha256_RsaOaep",
    "Aes256_Sha256_RsaPss",
)


def default_pki_dir() -> Path:
    """``$VPLC_STATE_DIR/opcua`` (default ``~/.local/state/vplc/opcua``)."""
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / "opcua"


class OpcuaConfig(BaseModel):
    """Where the server listens, how it is secured, who may log in and what is audited.

    Secure by default: only SignAndEncrypt endpoints, user name and password logins checked
    against the access file (the same users, secrets and roles as MQTT commands), no
    anonymous sessions. ``"None"`` in ``security_policies`` opens an unencrypted endpoint
    (passwords would cross the network readable) and is warned about at every start.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    host: str = Field(default="0.0.0.0", min_length=1, max_length=253)
    port: int = Field(default=4840, ge=1, le=65535)
    path: str = Field(default="vplc", pattern=r"^[A-Za-z0-9_.\-/]{0,64}$")
    security_policies: list[Policy] = Field(
        default_factory=lambda: list(SECURE_POLICIES),
        min_length=1,
        description="SignAndEncrypt endpoints offered; 'None' adds an unsecured endpoint",
    )
    anonymous: bool = Field(
        default=False, description="anonymous sessions may browse, read and subscribe (no writes)"
    )
    trust_all_clients: bool = Field(
        default=False,
        description="accept any client application certificate (no trust list; warned at start)",
    )
    access_file: Path | None = Field(
        default=None, description="users (the token is the OPC UA password) and roles (YAML)"
    )
    audit_file: Path | None = Field(default=None, description="the signed audit trail (JSONL)")
    pki_dir: Path | None = Field(
        default=None,
        description="application certificate and key (default $VPLC_STATE_DIR/opcua/<app>)",
    )
    namespace_uri: str | None = Field(
        default=None, max_length=256, description="default urn:vplc:<app>"
    )
    sample_ms: float = Field(
        default=100.0, ge=10, le=60_000, description="how often values are copied to the server"
    )
    stats_s: float = Field(default=1.0, ge=0.1, le=3600, description="task statistics period")
    programs_s: float = Field(
        default=1.0, ge=0.1, le=3600, description="how often Programs (block variables) are read"
    )
    command_timeout_s: float = Field(default=2.0, ge=0.01, le=3600)
    max_sessions: int = Field(default=50, ge=1, le=10_000)
    # Subscription limits (runtime/opcua/_limits.py): one past a count is refused with
    # BadTooManySubscriptions / BadTooManyMonitoredItems; intervals and queues are revised.
    max_subscriptions_per_session: int = Field(default=10, ge=1, le=1_000)
    max_monitored_items_per_session: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="data-change and event items over all of a session's subscriptions",
    )
    min_publishing_interval_ms: float = Field(
        default=50.0,
        ge=10,
        le=60_000,
        description="a faster requested publishing interval is revised up to this",
    )
    max_queue_size: int = Field(
        default=100, ge=1, le=10_000, description="largest queue of a monitored item"
    )
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="largest request a client may send (asyncua's default is 100 MiB)",
    )

    @model_validator(mode="after")
    def _check(self) -> OpcuaConfig:
        if len(set(self.security_policies)) != len(self.security_policies):
            raise ValueError("security_policies: a policy is listed twice")
        if self.access_file is None and not self.anonymous:
            raise ValueError(
                "access_file: required unless anonymous is true (without users nobody could log in)"
            )
        return self

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/{self.path}"

    @property
    def insecure(self) -> bool:
        return "None" in self.security_policies


def load_opcua_config(path: Path | str) -> OpcuaConfig:
    """Read a server config file (YAML); relative paths inside resolve against its folder."""
    path = Path(path)
    try:  # a regular UTF-8 file, bounded YAML: a FIFO or a YAML bomb is refused, not run
        data: Any = read_yaml_file(path) or {}
    except YamlError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    for key in ("access_file", "audit_file", "pki_dir"):
        if isinstance(data.get(key), str):
            data[key] = str(path.parent / data[key])
    return OpcuaConfig.model_validate(data)
