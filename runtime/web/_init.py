"""What the web process gets from the scan process at spawn (pickled once, never per cycle)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.core._gmp import CriticalAction
from runtime.core.manifest import ParameterSpec
from runtime.ops._access import AccessConfig
from runtime.web._config import WebConfig

__all__ = ["LoopInfo", "WebInit", "WebPoint"]


@dataclass(frozen=True)
class WebPoint:
    """A point as the pages show it."""

    name: str
    type: str
    direction: str
    unit: str
    range: tuple[float, float] | None
    description: str


@dataclass(frozen=True)
class LoopInfo:
    """A PID instance and what it is wired to (a point or parameter name, or None)."""

    path: str
    pv: str | None
    sp: str | None
    unit: str


@dataclass
class WebInit:
    config: WebConfig
    access: AccessConfig | None
    audit_file: Path | None
    shm_name: str
    n_alarms: int  # the frame's alarm slots (alarm_paths may be shorter after a change)
    app_name: str
    app_version: str
    points: list[WebPoint]
    kinds: list[str]  # how each frame slot is read: 'f', 'i', 'b', 's' (text by pipe)
    alarm_paths: list[str]
    params: list[ParameterSpec]
    param_values: list[Any]
    phase_paths: list[str]
    phase_views: list[tuple[Any, Any]]
    loops: list[LoopInfo]
    tasks: list[str]
    engine_stats: dict[str, Any]
    wall0_ns: int
    overview: dict[str, list[str]] = field(default_factory=dict)
    # The app's gmp.critical rules: which writes the pages preview for e-signatures first.
    critical: list[CriticalAction] = field(default_factory=list)
    log_format: str = "console"
    parent_pid: int = field(default_factory=os.getpid)
