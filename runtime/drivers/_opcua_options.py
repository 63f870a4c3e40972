"""Options of the ``opcua`` HAL driver (pydantic, unknown keys refused) and NodeId parsing."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from asyncua import ua
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hal import IecType
from hal.mqtt import read_password
from hal.opcua import PolicyName

__all__ = ["ChannelOptions", "OpcuaDriverOptions", "parse_node_id"]

_NSU = re.compile(r"^nsu=([^;]+);(.+)$")


def parse_node_id(text: str) -> tuple[str | None, ua.NodeId]:
    """``(namespace URI or None, NodeId)`` of ``ns=2;s=A.B``, ``nsu=urn:x;s=A.B``, ``i=2258``.

    With ``nsu=`` the namespace index is resolved at each connect (the server may number
    its namespaces differently after a restart); the NodeId then carries index 0.
    Raises ValueError naming what is wrong.
    """
    uri: str | None = None
    rest = text.strip()
    match = _NSU.match(rest)
    if match:
        uri, rest = match.group(1), match.group(2)
        if rest.startswith("ns="):
            raise ValueError(f"{text!r}: give nsu= or ns=, not both")
    try:
        nid = ua.NodeId.from_string(rest)
    except Exception as exc:  # asyncua raises UaStringParsingError, ValueError, KeyError, ...
        raise ValueError(
            f"{text!r} is not a NodeId ({exc}); expected e.g. ns=2;s=Points.TT101, "
            "nsu=urn:vplc:plant;s=TT101 or i=2258"
        ) from None
    return uri, nid


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ChannelOptions(_Strict):
    """One channel: a Variable node of the server, read by subscription or written."""

    node: str = Field(min_length=1, max_length=4096, description="its NodeId")
    type: IecType | None = Field(
        default=None, description="what the node carries (default: checked at connect)"
    )
    sampling_ms: float | None = Field(
        default=None, ge=0, le=3_600_000, description="default: the driver's"
    )
    deadband: float | None = Field(
        default=None, ge=0, description="absolute deadband: smaller changes are not reported"
    )

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        parse_node_id(value)
        return value


class OpcuaDriverOptions(_Strict):
    """The ``options`` of a ``type: opcua`` driver in app.yaml: one OPC UA server."""

    endpoint: str = Field(pattern=r"^opc\.tcp://[^\s]+$", max_length=512)
    security_policy: PolicyName = Field(
        default="Basic256Sha256", description="'None' only with allow_insecure when logging in"
    )
    security_mode: Literal["SignAndEncrypt", "Sign"] = "SignAndEncrypt"
    certificate: Path | None = Field(
        default=None,
        description="client application certificate (DER); default made at first start in "
        "$VPLC_STATE_DIR/opcua-client/<driver>/",
    )
    private_key: Path | None = Field(default=None, description="its key (PEM)")
    server_certificate: Path | None = Field(
        default=None, description="pin the server's certificate (DER or PEM)"
    )
    application_uri: str | None = Field(
        default=None, max_length=256, description="default urn:vplc:driver:<driver>"
    )
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password_file: Path | None = None
    password_env: str | None = Field(default=None, min_length=1, max_length=256)
    allow_insecure: bool = Field(
        default=False, description="allow a login over security policy None (warned at start)"
    )
    sampling_ms: float | None = Field(
        default=None, ge=0, le=3_600_000, description="default: the fastest task's period"
    )
    publishing_ms: float | None = Field(
        default=None, ge=1, le=3_600_000, description="default: the sampling interval"
    )
    keepalive_count: int = Field(
        default=3, ge=1, le=1000, description="publishing intervals without change per keep-alive"
    )
    staleness_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="no notification or keep-alive for this long: inputs BAD (default: "
        "publishing × keepalive_count + timeout_s)",
    )
    timeout_s: float = Field(default=2.0, ge=0.05, le=600, description="per request")
    write_ms: float = Field(default=10.0, ge=1, le=60_000, description="output check period")
    reconnect_max_s: float = Field(default=5.0, ge=0.01, le=3600)
    open_wait_s: float = Field(default=5.0, ge=0, le=3600)
    close_timeout_s: float = Field(default=1.0, ge=0, le=3600)
    channels: dict[str, ChannelOptions] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("channels"), dict):
            chans = {
                k: {"node": v} if isinstance(v, str) else v for k, v in data["channels"].items()
            }
            data = dict(data) | {"channels": chans}
        return data

    @model_validator(mode="after")
    def _check(self) -> OpcuaDriverOptions:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key: give both or neither")
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("a password needs a username")
        if self.username and self.security_policy == "None" and not self.allow_insecure:
            raise ValueError(
                "security_policy: 'None' would send the password readable; use a secure "
                "policy or set allow_insecure: true"
            )
        if self.security_policy == "None" and "security_mode" in self.model_fields_set:
            raise ValueError("security_mode: not used with security_policy 'None'")
        return self

    def app_uri(self, driver: str) -> str:
        return self.application_uri or f"urn:vplc:driver:{driver}"

    def password(self) -> str | None:
        return read_password(self.password_file, self.password_env)

    def pki_dir(self, driver: str) -> Path:
        base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
        return Path(base) / "opcua-client" / driver

    def sampling_for(self, channel: str, default_ms: float) -> float:
        own = self.channels[channel].sampling_ms
        if own is not None:
            return own
        return self.sampling_ms if self.sampling_ms is not None else default_ms

    def publishing_for(self, default_ms: float) -> float:
        if self.publishing_ms is not None:
            return self.publishing_ms
        return max(1.0, self.sampling_ms if self.sampling_ms is not None else default_ms)

    def stale_s(self, default_ms: float) -> float:
        if self.staleness_s is not None:
            return self.staleness_s
        return self.publishing_for(default_ms) / 1e3 * self.keepalive_count + self.timeout_s
