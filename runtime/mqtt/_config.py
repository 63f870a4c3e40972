"""The MQTT bridge configuration (YAML → pydantic); secrets are read from files or env vars."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runtime._yaml import YamlError, read_yaml_file

__all__ = ["MqttConfig", "TlsConfig", "load_mqtt_config"]

_TOPIC_LEVEL = r"^[A-Za-z0-9_.-]+$"  # no '/', '+', '#': a level must not change the layout


class _Strict(BaseModel):
    # Finite floats only; durations are bounded below so that no loop spins and above so that
    # a timeout stays a number the OS and asyncio accept (1e300 s overflows them).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TlsConfig(_Strict):
    """Server verification by ``ca_file``; ``cert_file``/``key_file`` for a client certificate."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file go together")
        return self

    def context(self) -> ssl.SSLContext:
        """A verifying client context (hostname checked); never an unverified one."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        if self.cert_file is not None and self.key_file is not None:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


class MqttConfig(_Strict):
    """Where to connect, how to name topics, and how telemetry is sampled and published."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    site: str = Field(pattern=_TOPIC_LEVEL)
    node: str = Field(pattern=_TOPIC_LEVEL)
    client_id: str | None = Field(default=None, description="default: vplc-<site>-<node>-<app>")
    username: str | None = None
    password_file: Path | None = Field(default=None, description="file holding the password")
    password_env: str | None = Field(default=None, description="env var holding the password")
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=10, ge=2, le=3600)
    sample_ms: float = Field(
        default=10.0, ge=0.05, le=3_600_000, description="how often the scan compares values"
    )
    publish_ms: float = Field(
        default=20.0, ge=1, le=3_600_000, description="how often the queue is drained"
    )
    refresh_s: float = Field(
        default=60.0, ge=0.01, le=86400, description="full republish of every point"
    )
    stats_s: float = Field(
        default=5.0, ge=0.01, le=86400, description="task statistics and state period"
    )
    deadband: dict[str, float] = Field(
        default_factory=dict, description="point name → absolute deadband (default 0)"
    )
    point_messages: Literal["each", "batch", "both"] = Field(
        default="each",
        description="each: one retained message per point topic; batch: one message per "
        "drain on P/points with every changed point (≈50× cheaper per update); both",
    )
    queue_size: int = Field(default=20_000, ge=16, description="scan → bridge queue bound")
    max_command_bytes: int = Field(default=64 * 1024, ge=256, le=1024 * 1024)
    command_timeout_s: float = Field(default=2.0, ge=0.01, le=3600)
    reconnect_min_s: float = Field(default=0.2, ge=0.01, le=3600)
    reconnect_max_s: float = Field(default=30.0, ge=0.01, le=3600)
    process: bool = Field(
        default=False,
        description="run the MQTT client in a child process: the scan only writes values to "
        "shared memory, so network load cannot hold the scan process's GIL",
    )
    access_file: Path | None = Field(default=None, description="users, tokens and roles (YAML)")
    audit_file: Path | None = Field(default=None, description="JSON-lines hash-chained audit log")

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        check_login_and_backoff(self)
        for name, band in self.deadband.items():
            if band < 0:
                raise ValueError(f"deadband.{name}: must be >= 0, got {band}")
        return self

    def password(self) -> str | None:
        return read_password(self.password_file, self.password_env)


def check_login_and_backoff(cfg: Any) -> None:
    """The broker-login and reconnect checks the bridge and the MQTT driver options share."""
    if cfg.password_file is not None and cfg.password_env is not None:
        raise ValueError("give password_file or password_env, not both")
    if (cfg.password_file or cfg.password_env) and not cfg.username:
        raise ValueError("a password needs a username")
    if cfg.reconnect_min_s > cfg.reconnect_max_s:
        raise ValueError("reconnect_min_s is above reconnect_max_s")


def read_password(password_file: Path | None, password_env: str | None) -> str | None:
    """Read a broker password now, so a rotated secret is picked up at the next reconnect."""
    if password_file is not None:
        return password_file.read_text(encoding="utf-8").strip()
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise ValueError(f"password_env: environment variable {password_env} unset")
        return value
    return None


def load_mqtt_config(path: Path | str) -> MqttConfig:
    """Read a bridge config file (YAML); relative paths inside resolve against its folder."""
    path = Path(path)
    try:  # a regular UTF-8 file, bounded YAML: a FIFO or a YAML bomb is refused, not run
        data: Any = read_yaml_file(path) or {}
    except YamlError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    base = path.parent
    for key in ("password_file", "access_file", "audit_file"):
        if isinstance(data.get(key), str):
            data[key] = str(base / data[key])
    tls = data.get("tls")
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            if isinstance(tls.get(key), str):
                tls[key] = str(base / tls[key])
    return MqttConfig.model_validate(data)
