"""The web HMI's configuration (``vplc run --web :8080 --web-config web.yaml``): YAML → pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runtime.core._yaml import YamlError, read_yaml_file

__all__ = ["WebConfig", "load_web_config", "parse_listen"]


class WebConfig(BaseModel):
    """Where the HMI listens, who may log in, what is audited, how values and trends are kept.

    Logins are the access file's users (roles: viewer < operator < engineer by default);
    without an access file the HMI is read-only for nobody: every page but the login answers
    401. ``tls_cert`` + ``tls_key`` serve HTTPS (cookies then carry ``Secure``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
    port: int = Field(default=8080, ge=0, le=65535, description="0: any free port")
    access_file: Path | None = Field(default=None, description="users, passwords and roles")
    audit_file: Path | None = Field(default=None, description="the signed audit trail (JSONL)")
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain (HTTPS)")
    tls_key: Path | None = Field(default=None, description="PEM private key (HTTPS)")
    session_idle_s: float = Field(default=900.0, ge=10, le=86_400, description="idle logout")
    session_max: int = Field(default=200, ge=1, le=10_000, description="sessions at once")
    login_failures: int = Field(
        default=5, ge=1, le=100, description="failed logins per user before a lockout"
    )
    login_lockout_s: float = Field(default=60.0, ge=1, le=86_400)
    sample_ms: float = Field(
        default=100.0, ge=10, le=60_000, description="how often values go to the browsers"
    )
    stats_s: float = Field(default=1.0, ge=0.1, le=3600, description="task statistics period")
    command_timeout_s: float = Field(default=2.0, ge=0.01, le=3600)
    trend_s: float = Field(default=3600.0, ge=10, le=7 * 86_400, description="ring buffer span")
    trend_period_s: float = Field(default=1.0, ge=0.05, le=3600, description="ring resolution")
    trend_max_mb: float = Field(
        default=64.0, ge=1, le=4096, description="ring memory cap (the span shrinks to fit)"
    )
    trace_files: list[Path] = Field(
        default_factory=list, description="CSV traces (vplc run --trace) for older trend data"
    )
    max_clients: int = Field(default=50, ge=1, le=1000, description="live streams at once")
    overview: dict[str, list[str]] = Field(
        default_factory=dict, description="Overview groups: title → point names"
    )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "::1") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    @model_validator(mode="after")
    def _tls_pair(self) -> WebConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise ValueError(f"{missing}: TLS needs both tls_cert and tls_key")
        return self


def parse_listen(text: str) -> dict[str, Any]:
    """``:8080``, ``8080``, ``0.0.0.0:8080`` or ``[::1]:8080`` → host/port (ValueError if not)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"expected [HOST]:PORT such as :8080, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port {number} is outside 0..65535")
    return {"port": number} | ({"host": host} if host else {})


def load_web_config(path: Path | str | None, *, listen: str | None = None) -> WebConfig:
    """Read ``path`` (YAML; relative paths inside it are relative to it), then ``listen``.

    pydantic's ValidationError names the key; YamlError and OSError name the file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = read_yaml_file(path)
        except YamlError as exc:
            raise ValueError(str(exc)) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"expected a mapping of options, got {type(loaded).__name__}")
        data = dict(loaded)
        for key in ("access_file", "audit_file", "tls_cert", "tls_key"):
            if isinstance(data.get(key), str):
                data[key] = str(path.parent / Path(data[key]).expanduser())
        if isinstance(data.get("trace_files"), list):
            data["trace_files"] = [
                str(path.parent / f) if isinstance(f, str) else f for f in data["trace_files"]
            ]
    if listen is not None:
        data |= parse_listen(listen)
    return WebConfig.model_validate(data)
