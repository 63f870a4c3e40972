"""``vplc status`` rows of container deployments: container state, engine state and scan."""

from __future__ import annotations

from typing import Any

from docker.models.containers import Container

from containers._image import LABEL
from containers._ops import read_heartbeat

__all__ = ["container_row", "scan_summary"]


def container_row(c: Container) -> dict[str, Any]:
    """One deployment container: what runs (version, image ID), how it is, what the scan says.

    ``engine`` and ``fault_reason`` come from the heartbeat: a container can be running while
    its runtime sits in FAULT with its outputs safe, and that must show.
    """
    state = c.attrs["State"]
    beat = read_heartbeat(c) if c.status == "running" else None
    return {
        "deployment": c.labels.get(LABEL + "deployment"),
        "app": c.labels.get(LABEL + "app"),
        "version": c.labels.get(LABEL + "version"),
        "image": c.labels.get(LABEL + "image"),
        "image_id": c.attrs.get("Image"),
        "state": c.status,
        "engine": beat.get("state") if beat else None,
        "fault_reason": (beat.get("fault_reason") or None) if beat else None,
        "health": (state.get("Health") or {}).get("Status", "none"),
        "restarts": c.attrs.get("RestartCount", 0),
        "started_at": state.get("StartedAt"),
        "scan": scan_summary(beat),
    }


def scan_summary(beat: dict[str, Any] | None) -> dict[str, Any] | None:
    if beat is None:
        return None
    tasks = beat.get("statistics", {}).get("tasks", {})
    return {
        "mqtt": [
            {
                "who": c.get("who"),
                "connected": c.get("connected"),
                "reason": c.get("reason") or None,
                "last_error": c.get("last_error") or None,
                "down_s": c.get("down_s"),
                "collision": c.get("collision"),
            }
            for c in beat.get("connections", [])
        ],
        "state": beat.get("state"),
        "fault_reason": beat.get("fault_reason") or None,
        "app_time_s": round(float(beat.get("app_time_s", 0.0)), 1),
        "tasks": {
            name: {
                "cycles": t.get("cycles"),
                "overruns": t.get("overruns"),
                "exec_p99_us": t.get("exec_us", {}).get("p99"),
                "latency_p99_us": t.get("wake_latency_us", {}).get("p99"),
            }
            for name, t in tasks.items()
        },
    }
