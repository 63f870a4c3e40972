"""Topic names and JSON payload builders for the MQTT bridge (birth, points, state, stats)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from hal import Point
from runtime.blocks import ALARM, PHASE
from runtime.mqtt._instance import Instance

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = [
    "Topics",
    "birth_payload",
    "dumps",
    "iso",
    "offline_payload",
    "param_payload",
    "phase_payload",
    "point_payload",
    "rounder",
]

SCHEMA = 1  # bumped when a payload changes incompatibly; HMIs check it in the birth message


class Topics:
    """``vplc/<site>/<node>/<app>/...``: one prefix per running app instance."""

    def __init__(self, *, site: str, node: str, app: str) -> None:
        self.prefix = f"vplc/{site}/{node}/{app}"
        self.birth = f"{self.prefix}/birth"
        self.state = f"{self.prefix}/state"
        self.stats = f"{self.prefix}/stats"
        self.points = f"{self.prefix}/points"
        self.cmd = f"{self.prefix}/cmd"
        self.cmd_response = f"{self.prefix}/cmd/response"

    def point(self, name: str) -> str:
        return f"{self.prefix}/points/{name}"

    def alarm(self, path: str) -> str:
        return f"{self.prefix}/alarms/{path}"

    def parameter(self, name: str) -> str:
        return f"{self.prefix}/parameters/{name}"

    def phase(self, path: str) -> str:
        return f"{self.prefix}/phases/{path}"


def iso(wall_ns: int) -> str:
    return datetime.fromtimestamp(wall_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def _json_safe(value: Any) -> Any:
    # NaN/inf are not JSON; an HMI gets null and the quality says what it is worth.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str).encode()


def point_payload(
    value: Any, quality: Any, forced: bool, now_ns: int, wall_ns: int
) -> dict[str, Any]:
    return {
        "v": _json_safe(value),
        "q": quality.name,
        "forced": forced,
        "ts": iso(wall_ns),
        "t_app": now_ns / 1e9,
    }


def _same(value: Any) -> Any:
    return value


def rounder(resolution: float | None) -> Callable[[Any], Any]:
    """Round a published number to the point's declared resolution (ints and bools pass)."""
    if resolution is None:
        return _same
    step = float(resolution)
    # Enough decimals to show the step, and no binary noise (0.1 * 3 = 0.30000000000000004).
    digits = max(0, -math.floor(math.log10(step))) + 1

    def to_step(value: Any) -> Any:
        if type(value) is not float or not math.isfinite(value):
            return value
        return round(round(value / step) * step, digits)

    return to_step


def param_payload(value: Any) -> dict[str, Any]:
    return {"v": _json_safe(value)}


def phase_payload(view: tuple[Any, Any]) -> dict[str, Any]:
    return {"state": view[0], "step": _json_safe(view[1])}


def _describe_point(p: Point, deadband: float) -> dict[str, Any]:
    spec = p.spec
    return {
        "name": p.name,
        "type": p.type.value,
        "direction": p.direction.value,
        "unit": spec.unit,
        "description": spec.description,
        "range": list(spec.range) if spec.range else None,
        "resolution": spec.resolution,
        "deadband": deadband,
    }


def _runtime_version() -> str:
    try:
        return version("vplc")
    except PackageNotFoundError:
        return "unknown"


def birth_payload(
    engine: ScanEngine, *, wall_ns: int, instance: Instance, deadbands: Mapping[str, float]
) -> dict[str, Any]:
    """Everything an HMI needs to build its screens without reading app.yaml."""
    app = engine.app
    blocks = list(app.tree.blocks().items())
    return {
        "status": "online",
        "schema": SCHEMA,
        "app": app.name,
        "app_version": app.version,
        "runtime_version": _runtime_version(),
        "ts": iso(wall_ns),
        "instance": instance.as_dict(),
        "points": [_describe_point(p, deadbands.get(p.name, 0.0)) for p in engine.image.points],
        "parameters": [
            {
                "name": p.name,
                "type": p.spec.type.value,
                "unit": p.spec.unit,
                "min": p.spec.min,
                "max": p.spec.max,
                "default": p.spec.default,
                "description": p.spec.description,
            }
            for p in app.parameters.values()
        ],
        "alarms": [path for path, b in blocks if isinstance(b, ALARM)],
        "phases": [path for path, b in blocks if isinstance(b, PHASE)],
        "tasks": [{"name": t.name, "period_ms": t.period_ns / 1e6} for t in engine.tasks],
    }


def offline_payload(
    *,
    app: str,
    reason: str,
    instance: Instance,
    wall_ns: int | None = None,
    state: str = "UNKNOWN",
) -> dict[str, Any]:
    """The goodbye of a clean stop (``state`` STOP, ``ts``) or the last will (UNKNOWN).

    Both say ``stale``: every retained value under the prefix is no longer kept up to date.
    A will cannot know the scan's state (the network may have failed, not the runtime).
    """
    body: dict[str, Any] = {
        "status": "offline",
        "schema": SCHEMA,
        "app": app,
        "reason": reason,
        "state": state,
        "stale": True,
        "instance": instance.as_dict(),
    }
    if wall_ns is not None:
        body["ts"] = iso(wall_ns)
    return body
