"""The MQTT bridge configuration (YAML → pydantic); secrets are read from files or env vars."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hal.mqtt import BrokerOptions, TlsConfig, check_transport, resolve_paths
from runtime.core._yaml import YamlError, read_yaml_file

__all__ = ["MqttConfig", "SparkplugConfig", "TlsConfig", "load_mqtt_config"]

_TOPIC_LEVEL = r"^[A-Za-z0-9_.-]+$"  # no '/', '+', '#': a level must not change the layout
# Sparkplug 3.0: group, edge node, device and host ids are UTF-8 without '/', '+' and '#'.
_SPARKPLUG_ID = r"^[^/+#\s]+$"


class SparkplugConfig(BaseModel):
    """``sparkplug:`` in the bridge config: publish as a Sparkplug B edge node instead of JSON.

    Topics ``spBv1.0/<group_id>/{NBIRTH,NDEATH,NCMD}/<edge_node_id>`` and
    ``spBv1.0/<group_id>/{DBIRTH,DDEATH,DDATA,DCMD}/<edge_node_id>/<device_id>`` (the app
    is the device). runtime/sparkplug says how values, properties and DCMDs map.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    group_id: str = Field(pattern=_SPARKPLUG_ID, max_length=128)
    edge_node_id: str = Field(pattern=_SPARKPLUG_ID, max_length=128)
    device_id: str | None = Field(
        default=None, pattern=_SPARKPLUG_ID, max_length=128, description="default: the app name"
    )
    primary_host_id: str | None = Field(
        default=None,
        pattern=_SPARKPLUG_ID,
        max_length=128,
        description="births only while spBv1.0/STATE/<primary_host_id> says online; when it "
        "goes offline: NDEATH and disconnect, then wait for it again",
    )
    command_user: str | None = Field(
        default=None,
        max_length=64,
        description="the access file's user every NCMD/DCMD acts as (its role decides what "
        "is allowed); Sparkplug commands carry no user, so who may publish them is the "
        "broker's ACL on spBv1.0/<group_id>/DCMD/<edge_node_id>/#. Unset: commands refused",
    )
    bdseq_file: Path | None = Field(
        default=None,
        description="where bdSeq survives a restart (default "
        "$VPLC_STATE_DIR/sparkplug/<group_id>-<edge_node_id>.bdseq)",
    )


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
    sparkplug: SparkplugConfig | None = Field(
        default=None, description="run the Sparkplug B edge node instead of the JSON bridge"
    )

    @model_validator(mode="before")
    @classmethod
    def _sparkplug_labels(cls, data: Any) -> Any:
        # The JSON topics' site and node mean nothing to a Sparkplug node: not required then.
        if isinstance(data, dict) and data.get("sparkplug") is not None:
            data = {"site": "sparkplug", "node": "sparkplug"} | data
        return data

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        for name, band in self.deadband.items():
            if band < 0:
                raise ValueError(f"deadband.{name}: must be >= 0, got {band}")
        if self.access_file is not None:
            check_transport(self, secrets="command tokens (access_file)")
        sp = self.sparkplug
        if sp is not None and sp.command_user is not None and self.access_file is None:
            raise ValueError("sparkplug.command_user: needs access_file (the user's role)")
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
    sparkplug = data.get("sparkplug")
    if isinstance(sparkplug, dict) and isinstance(sparkplug.get("bdseq_file"), str):
        sparkplug["bdseq_file"] = str(path.parent / sparkplug["bdseq_file"])
    return MqttConfig.model_validate(data)
