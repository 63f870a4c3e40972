"""What the server process gets from the scan process at spawn (pickled once, never per cycle)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.core.manifest import ParameterSpec
from runtime.front import PointInfo
from runtime.opcua._config import OpcuaConfig
from runtime.opcua._programs import BlockInfo, LeafInfo
from runtime.ops._access import AccessConfig

__all__ = ["OpcuaInit", "PointInfo"]


@dataclass
class OpcuaInit:
    config: OpcuaConfig
    access: AccessConfig | None
    audit_file: Path | None
    pki_dir: Path
    shm_name: str
    app_name: str
    app_version: str
    points: list[PointInfo]
    kinds: list[str]  # how each frame slot is read: 'f', 'i', 'b', 's' (text by pipe)
    n_alarms: int
    alarm_paths: list[str]  # instance path of each frame alarm slot (program.path)
    params: list[ParameterSpec]
    param_values: list[Any]
    phase_paths: list[str]
    phase_views: list[tuple[Any, Any]]
    engine_stats: dict[str, Any]
    wall0_ns: int
    program_names: list[str] = field(default_factory=list)
    blocks: list[BlockInfo] = field(default_factory=list)
    leaves: list[LeafInfo] = field(default_factory=list)
    log_format: str = "console"
    parent_pid: int = field(default_factory=os.getpid)
