"""What the edge node process gets at spawn, and the device's metric table built from it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runtime.blocks import COMMANDS as PHASE_COMMANDS
from runtime.core.manifest import ParameterSpec
from runtime.front import PointInfo
from runtime.mqtt._config import MqttConfig, SparkplugConfig
from runtime.ops._access import AccessConfig
from runtime.sparkplug._payload import IEC_DATATYPE, DataType

__all__ = [
    "ALARM_PARTS",
    "CONTROLS",
    "PHASE_PARTS",
    "MetricDef",
    "PointInfo",
    "SparkplugInit",
    "device_metrics",
]

# Device Control/<name> (Boolean; writing true runs the lifecycle command of that name).
CONTROLS = ("Start", "Stop", "Reset")
# Alarms/<path>/<part> per ALARM block, in this order: (part, datatype, writable, about).
# Active, Acked and Severity are the frame's alarm slots (runtime.front ALARM_FIELDS: ACTIVE,
# UNACKED, SEVERITY), Text comes by pipe; Acknowledge = true is an ack_alarm command.
ALARM_PARTS: tuple[tuple[str, DataType, bool, str], ...] = (
    ("Active", DataType.Boolean, False, "the alarm is active (any of its limits)"),
    ("Acked", DataType.Boolean, False, "acknowledged (false from activation until an ack)"),
    ("Severity", DataType.Int32, False, "0 none, 1 H/L, 2 HH/LL/BAD"),
    ("Text", DataType.String, False, "the alarm's message"),
    ("Acknowledge", DataType.Boolean, True, "write true to acknowledge (ack_alarm command)"),
)
# Batch/<path>/<part> per PHASE block. Step is the phase program's ``step`` variable as text
# (untyped in the program, so String: a birth's datatype must not change), as OPC UA shows it.
PHASE_PARTS: tuple[tuple[str, DataType, bool, str], ...] = (
    ("State", DataType.String, False, "the ISA-88 state (IDLE, RUNNING, HELD, ...)"),
    ("Step", DataType.String, False, "the phase program's step ('' if it has none)"),
    (
        "Command",
        DataType.String,
        True,
        f"write {', '.join(PHASE_COMMANDS)} (the phase command); reads ''",
    ),
)


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
    alarm_paths: list[str]  # instance path of each frame alarm slot (program.path)
    params: list[ParameterSpec]
    param_values: list[Any]
    phase_paths: list[str]
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
    kind: Literal["state", "point", "param", "control", "alarm", "phase"]
    index: int  # into the points, the parameters, CONTROLS, the alarms or the phases
    unit: str = ""
    range: tuple[float, float] | None = None
    description: str = ""
    writable: bool = False
    part: str = ""  # of an alarm (ALARM_PARTS) or a phase (PHASE_PARTS)
    path: str = ""  # the ALARM or PHASE block's instance path


def device_metrics(init: SparkplugInit) -> list[MetricDef]:
    """The device's metrics in a fixed order; aliases 1.. (stable while the app is the same).

    ``State`` (RUN/STOP/FAULT), ``Points/<name>`` (read-only), ``Parameters/<name>`` (written
    by DCMD through the command path), ``Device Control/{Start,Stop,Reset}``, then
    ``Alarms/<path>/*`` and ``Batch/<path>/*`` (after the others, so that their aliases did
    not move when these were added).
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
    _per_block(defs, "Alarms", "alarm", "ALARM", init.alarm_paths, ALARM_PARTS)
    _per_block(defs, "Batch", "phase", "PHASE", init.phase_paths, PHASE_PARTS)
    return defs


def _per_block(
    defs: list[MetricDef],
    folder: str,
    kind: Literal["alarm", "phase"],
    block: str,
    paths: list[str],
    parts: tuple[tuple[str, DataType, bool, str], ...],
) -> None:
    """One metric per part of each block (``<folder>/<path>/<part>``), aliases continuing."""
    for index, path in enumerate(paths):
        for part, datatype, writable, about in parts:
            defs.append(
                MetricDef(
                    f"{folder}/{path}/{part}",
                    len(defs) + 1,
                    datatype,
                    kind,
                    index,
                    description=f"{block} {path}: {about}",
                    writable=writable,
                    part=part,
                    path=path,
                )
            )


def _range(spec: ParameterSpec) -> tuple[float, float] | None:
    if spec.min is None or spec.max is None:
        return None
    return (float(spec.min), float(spec.max))
