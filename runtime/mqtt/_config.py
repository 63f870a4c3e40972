"""The MQTT bridge configuration (YAML → pydantic); secrets are read from files or env vars."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from hal.mqtt import BrokerOptions, TlsConfig, check_transport, resolve_paths
from runtime.core._yaml import YamlError, read_yaml_file

__all__ = ["MqttConfig", "TlsConfig", "load_mqtt_config"]

_TOPIC_LEVEL = r"^[A-Za-z0-9_.-]+$"  # no '/', '+', '#': a level must not change the layout


class MqttConfig(BrokerOptions):
    """Where to connect (BrokerOptions), how to name topics, how telemetry is published.

    An access file turns commands on: their tokens are credentials, so without TLS the
    config also needs ``allow_insecure: true``.
    """

    site: str = Field(pattern=_TOPIC_LEVEL)
    node: str = Field(pattern=_TOPIC_LEVEL)
    client_id: str | None = Field(
        default=None, max_length=128, description="default: vplc-<site>-<node>-<app>"
    )
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
        default_factory=dict,
        description="point name → deadband in engineering units (overrides deadband_percent)",
    )
    deadband_percent: float = Field(
        default=0.1,
        ge=0,
        le=100,
        description="default deadband of a numeric point with a range: this % of the range",
    )
    point_messages: Literal["each", "batch", "both"] = Field(
        default="each",
        description="each: one retained message per point topic; batch: one message per "
        "drain on P/points with every changed point (≈50× cheaper per update); both",
    )
    queue_size: int = Field(default=20_000, ge=16, description="scan → bridge queue bound")
    max_command_bytes: int = Field(default=64 * 1024, ge=256, le=1024 * 1024)
    command_timeout_s: float = Field(default=2.0, ge=0.01, le=3600)
    process: bool = Field(
        default=True,
        description="run the MQTT client in a child process: the scan only writes values to "
        "shared memory, so network load cannot hold the scan process's GIL (false: a thread "
        "of the scan process, which costs the scan up to ~100x its p99 wake latency under "
        "load; see tests/bench/bench_mqtt.py)",
    )
    access_file: Path | None = Field(default=None, description="users, tokens and roles (YAML)")
    audit_file: Path | None = Field(default=None, description="JSON-lines hash-chained audit log")

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        for name, band in self.deadband.items():
            if band < 0:
                raise ValueError(f"deadband.{name}: must be >= 0, got {band}")
        if self.access_file is not None:
            check_transport(self, secrets="command tokens (access_file)")
        return self


def load_mqtt_config(path: Path | str) -> MqttConfig:
    """Read a bridge config file (YAML); relative paths inside resolve against its folder."""
    path = Path(path)
    try:  # a regular UTF-8 file, bounded YAML: a FIFO or a YAML bomb is refused, not run
        data: Any = read_yaml_file(path) or {}
    except YamlError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    resolve_paths(data, path.parent, ("access_file", "audit_file"))
    return MqttConfig.model_validate(data)
