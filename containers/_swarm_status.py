"""``vplc status`` rows for Swarm services: version, replicas, update state, tasks, scan."""

from __future__ import annotations

from typing import Any

import docker.errors

from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._ops import read_heartbeat
from containers._status import scan_summary

__all__ = ["FAILED", "status"]

FAILED = ("failed", "rejected", "orphaned")


def status(mgr: DeploymentManager, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (the manager's containers) plus one row per vplc service of the swarm."""
    if not (mgr.info.get("Swarm") or {}).get("ControlAvailable"):
        return rows
    out = list(rows)
    for svc in _client(mgr).services.list(filters={"label": LABEL + "deployment"}):
        labels = svc.attrs["Spec"]["Labels"]
        tasks = sorted(svc.tasks(), key=lambda t: t["CreatedAt"], reverse=True)
        live = [t for t in tasks if t["DesiredState"] == "running"]
        cid = next(
            (
                t["Status"]["ContainerStatus"]["ContainerID"]
                for t in live
                if "ContainerStatus" in t["Status"]
            ),
            None,
        )
        c = _local(mgr, cid)
        out.append(
            {
                "deployment": labels.get(LABEL + "deployment"),
                "target": "swarm",
                "app": labels.get(LABEL + "app"),
                "version": labels.get(LABEL + "version"),
                "image": labels.get(LABEL + "image"),
                "service_version": svc.version,
                "replicas": f"{sum(t['Status']['State'] == 'running' for t in live)}/1",
                "update_state": (svc.attrs.get("UpdateStatus") or {}).get("State"),
                "state": live[0]["Status"]["State"] if live else "none",
                "health": ((c.attrs["State"].get("Health") or {}).get("Status") if c else None)
                or "n/a",
                "restarts": sum(t["Status"]["State"] in FAILED for t in tasks),
                "scan": scan_summary(read_heartbeat(c)) if c and c.status == "running" else None,
                "tasks": [
                    {
                        "id": t["ID"][:12],
                        "version": t["Spec"]["ContainerSpec"]["Labels"].get(LABEL + "version"),
                        "state": t["Status"]["State"],
                        "desired": t["DesiredState"],
                        "error": t["Status"].get("Err"),
                    }
                    for t in tasks
                ],
            }
        )
    return out


def _local(mgr: DeploymentManager, cid: str | None) -> Any:
    try:
        return mgr.client.containers.get(cid) if cid else None
    except docker.errors.NotFound:
        return None  # the task runs on another node


def _client(mgr: DeploymentManager) -> Any:
    return mgr.client  # untyped: types-docker leaves the services API unannotated
