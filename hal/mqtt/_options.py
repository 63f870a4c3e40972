"""How to reach an MQTT broker (pydantic): address, TLS, login, backoff, cleartext policy."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BrokerOptions",
    "InsecureTransportError",
    "TlsConfig",
    "check_transport",
    "load_broker_options",
    "read_password",
    "resolve_paths",
]


class _Strict(BaseModel):
    # Finite floats only; durations are bounded below so that no loop spins and above so that
    # a timeout stays a number the OS and asyncio accept (1e300 s overflows them).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InsecureTransportError(ValueError):
    """Secrets would travel in clear text and ``allow_insecure`` does not say that is wanted."""


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
        """A verifying client context (hostname checked); never an unverified one.

        Read at every connect, so a renewed certificate is picked up; a missing or unreadable
        file raises ValueError naming it.
        """
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"tls.ca_file {self.ca_file}: {exc.strerror or exc}") from None
        if self.cert_file is not None and self.key_file is not None:
            try:
                ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"tls.cert_file {self.cert_file} / key_file {self.key_file}: "
                    f"{exc.strerror or exc}"
                ) from None
        return ctx


class BrokerOptions(_Strict):
    """The connection part shared by the bridge, the ``mqtt`` driver and ``vplc sim serve``.

    Credentials (a username or password) over plain TCP are refused unless ``allow_insecure``
    says so, and then every start logs a warning: on an untrusted network anyone on the path
    reads them. A client certificate needs TLS anyway.
    """

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str | None = Field(default=None, max_length=128, description="default: per user")
    username: str | None = None
    password_file: Path | None = Field(default=None, description="file holding the password")
    password_env: str | None = Field(default=None, description="env var holding the password")
    tls: TlsConfig | None = None
    allow_insecure: bool = Field(
        default=False,
        description="allow credentials (and command tokens) over plain TCP; warned at each start",
    )
    mqtt_version: Literal["5", "3.1.1"] = Field(
        default="5", description="5 names the broker's reasons (e.g. session taken over)"
    )
    keepalive_s: int = Field(default=10, ge=2, le=3600)
    connect_timeout_s: float = Field(
        default=5.0,
        ge=0.1,
        le=600,
        description="the wait for the broker's CONNACK (and SUBACKs: twice it); the TCP "
        "connect itself is bounded by paho-mqtt's own 5 s, which aiomqtt does not expose",
    )
    reconnect_min_s: float = Field(default=0.2, ge=0.01, le=3600)
    reconnect_max_s: float = Field(default=30.0, ge=0.01, le=3600)

    @model_validator(mode="after")
    def _check_broker(self) -> BrokerOptions:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("a password needs a username")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s is above reconnect_max_s")
        if self.username is not None:
            check_transport(self, secrets="a broker username/password")
        return self

    @property
    def endpoint(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def password(self) -> str | None:
        return read_password(self.password_file, self.password_env)

    def insecure_warning(self) -> str | None:
        """Why this connection is cleartext by choice, for the warning at every start."""
        if self.tls is not None or not self.allow_insecure:
            return None
        return (
            f"allow_insecure: plain TCP to {self.host}:{self.port}; credentials and command "
            "tokens can be read by anyone on the network path (configure tls)"
        )


def check_transport(opts: BrokerOptions, *, secrets: str) -> None:
    """Refuse ``secrets`` over plain TCP unless the config says ``allow_insecure: true``."""
    if opts.tls is None and not opts.allow_insecure:
        raise InsecureTransportError(
            f"{secrets} would travel in clear text to {opts.host}:{opts.port}: configure "
            "tls (ca_file, and a TLS listener on the broker), or set allow_insecure: true "
            "to accept that (a warning is logged at every start)"
        )


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


def resolve_paths(data: dict[str, Any], base: Path, keys: tuple[str, ...] = ()) -> None:
    """Relative file paths of a broker mapping (and ``keys``) resolved against ``base``."""
    for key in ("password_file", *keys):
        if isinstance(data.get(key), str):
            data[key] = str(base / data[key])
    tls = data.get("tls")
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            if isinstance(tls.get(key), str):
                tls[key] = str(base / tls[key])


def load_broker_options(path: Path) -> BrokerOptions:
    """A YAML file of connection keys; relative file paths resolve against its folder.

    Raises ValueError (unreadable, not a mapping) or pydantic's ValidationError (bad keys).
    """
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of connection keys")
    resolve_paths(data, path.parent)
    return BrokerOptions.model_validate(data)
