"""What the edge node process gets at spawn, and the device's metric table built from it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runtime.core.manifest import ParameterSpec
from runtime.front import PointInfo
from runtime.mqtt._config import MqttConfig, SparkplugConfig
from runtime.ops._access import AccessConfig
from runtime.sparkplug._payload import IEC_DATATYPE, DataType

__all__ = ["CONTROLS", "MetricDef", "PointInfo", "SparkplugInit", "device_metrics"]

# Device Control/<name> (Boolean; writing true runs the lifecycle command of that name).
CONTROLS = ("Start", "Stop", "Reset")


@dataclass
class SparkplugInit:
    """Pickled once at spawn (never per cycle)."""

    config: MqttConfig
    access: AccessConfig | None
    audit_file: Path | None
    bdseq_file: Path
    shm_name: str
    app_name: str
    app_version: str
    points: list[PointInfo]
    kinds: list[str]  # how each frame slot is read: 'f', 'i', 'b', 's' (text by pipe)
    deadbands: list[float]  # per point, engineering units (0: every change)
    n_alarms: int
    params: list[ParameterSpec]
    param_values: list[Any]
    phase_views: list[tuple[Any, Any]]
    engine_stats: dict[str, Any]
    wall0_ns: int
    log_format: str = "console"
    parent_pid: int = field(default_factory=os.getpid)

    @property
    def sparkplug(self) -> SparkplugConfig:
        assert self.config.sparkplug is not None
        return self.config.sparkplug

    @property
    def device_id(self) -> str:
        return self.sparkplug.device_id or self.app_name


@dataclass(frozen=True)
class MetricDef:
    """One device metric: its birth name, alias, datatype and where its value comes from."""

    name: str
    alias: int
    datatype: DataType
    kind: Literal["state", "point", "param", "control"]
    index: int  # into the points, the parameters or CONTROLS
    unit: str = ""
    range: tuple[float, float] | None = None
    description: str = ""
    writable: bool = False


def device_metrics(init: SparkplugInit) -> list[MetricDef]:
    """The device's metrics in a fixed order; aliases 1.. (stable while the app is the same).

    ``State`` (RUN/STOP/FAULT), ``Points/<name>`` (read-only), ``Parameters/<name>`` (written
    by DCMD through the command path) and ``Device Control/{Start,Stop,Reset}``.
    """
    defs = [MetricDef("State", 1, DataType.String, "state", 0)]
    for i, p in enumerate(init.points):
        defs.append(
            MetricDef(
                f"Points/{p.name}",
                len(defs) + 1,
                IEC_DATATYPE[p.type],
                "point",
                i,
                p.unit,
                p.range,
                p.description,
            )
        )
    for k, spec in enumerate(init.params):
        defs.append(
            MetricDef(
                f"Parameters/{spec.name}",
                len(defs) + 1,
                IEC_DATATYPE[spec.type],
                "param",
                k,
                spec.unit,
                _range(spec),
                spec.description,
                writable=True,
            )
        )
    for c, name in enumerate(CONTROLS):
        defs.append(
            MetricDef(
                f"Device Control/{name}",
                len(defs) + 1,
                DataType.Boolean,
                "control",
                c,
                writable=True,
            )
        )
    return defs


def _range(spec: ParameterSpec) -> tuple[float, float] | None:
    if spec.min is None or spec.max is None:
        return None
    return (float(spec.min), float(spec.max))
