"""Swarm service specs from deployment files: hardening, placement, secrets, update policy."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from containers._dockerfile import STATE_DIR, UID
from containers._errors import InvalidInputError
from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._ops import container_name
from containers._spec import Deployment, RestartPolicy

__all__ = [
    "NS",
    "check_and_build",
    "check_service_claims",
    "dropped_fields",
    "hostname",
    "service_name",
    "service_spec",
]

NS = 1_000_000_000  # the service API counts time in nanoseconds
_RESTART = {RestartPolicy.NO: "none", RestartPolicy.ON_FAILURE: "on-failure"}
# Swarm secrets are files; the runtime reads passwords from the environment (password_env).
# This wrapper exports each file as a variable and execs the image's entrypoint (PID 1 stays
# vplc, so SIGTERM still reaches the scan). Values never appear in `docker service inspect`.
_EXPORT = (
    'for f in /run/secrets/*; do [ -f "$f" ] && export "${f##*/}=$(cat "$f")"; done; exec "$@"'
)


def service_name(name: str) -> str:
    return container_name(name)  # vplc-<name>; task containers are vplc-<name>.1.<task id>


def service_spec(
    dep: Deployment,
    *,
    image_id: str,
    labels: dict[str, str],
    entrypoint: list[str],
    secrets: list[dict[str, Any]],
    hostname: str,
) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_service`` / ``update_service`` (Engine API JSON)."""
    ours = {k: v for k, v in labels.items() if k.startswith(LABEL)}
    container: dict[str, Any] = {
        # The image ID, not the tag: a task then never asks a registry for the tag (air-gapped);
        # every node must hold the image (`docker save | docker load`).
        "Image": image_id,
        # Not org.vplc.deployment: the container manager lists (and status()[0]s) those labels.
        "Labels": {**ours, LABEL + "service": dep.name, LABEL + "image": dep.image},
        "Env": [f"{k}={v}" for k, v in sorted(dep.environment.items())],
        "User": f"{UID}:{UID}",
        "ReadOnly": True,
        "Mounts": [
            {
                "Type": "volume",
                "Source": dep.volume,
                "Target": STATE_DIR,
                "VolumeOptions": {"Labels": {LABEL + "deployment": dep.name}},
            },
            # No noexec/nosuid options for service tmpfs mounts in this API version.
            {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 16 * 1024**2}},
        ],
        "CapabilityDrop": ["ALL"],
        "CapabilityAdd": ["CAP_SYS_NICE"] if dep.realtime else [],
        "StopGracePeriod": 10 * NS,
        "Secrets": secrets,
    }
    if secrets:
        container["Command"] = ["/bin/sh", "-c", _EXPORT, "vplc", *entrypoint]
    if dep.rtprio:
        container["Ulimits"] = [{"Name": "rtprio", "Soft": dep.rtprio, "Hard": dep.rtprio}]
    mem, cpus = dep.resources.memory_bytes, round(dep.resources.cpus * NS)
    task: dict[str, Any] = {
        "ContainerSpec": container,
        # Reservations = limits: the scheduler never overcommits a node with PLCs.
        "Resources": {
            "Limits": {"NanoCPUs": cpus, "MemoryBytes": mem, "Pids": 256},
            "Reservations": {"NanoCPUs": cpus, "MemoryBytes": mem},
        },
        "RestartPolicy": {"Condition": _RESTART.get(dep.restart, "any"), "Delay": NS},
        # A PLC belongs to the node wired to its I/O and holding its state volume: always pin.
        "Placement": {"Constraints": [f"node.hostname == {dep.node or hostname}"]},
        "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m", "max-file": "3"}},
    }
    if dep.network_mode.value == "host":
        task["Networks"] = [{"Target": "host"}]
    order = dep.swarm.update_order.value
    change = {"Parallelism": 1, "Monitor": round(dep.swarm.monitor_s * NS), "Order": order}
    return {
        "task_template": task,
        "name": service_name(dep.name),
        "labels": {**ours, LABEL + "deployment": dep.name, LABEL + "image": dep.image},
        "mode": {"Replicated": {"Replicas": 1}},  # one PLC: never two writers
        "update_config": {**change, "FailureAction": "rollback", "MaxFailureRatio": 0},
        "rollback_config": {**change, "FailureAction": "pause", "MaxFailureRatio": 0},
    }


def hostname(mgr: DeploymentManager) -> str:
    swarm = mgr.info.get("Swarm") or {}
    if not swarm.get("ControlAvailable"):
        raise InvalidInputError(
            "target: swarm needs a Swarm manager: this engine is not one (`docker swarm init`, "
            "or point DOCKER_HOST at a manager node)"
        )
    return str(mgr.client.nodes.get(swarm["NodeID"]).attrs["Description"]["Hostname"])


def check_and_build(
    mgr: DeploymentManager, dep: Deployment
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check the deployment against the swarm; return the service spec and the image labels."""
    host = hostname(mgr)
    nodes = {n.attrs["Description"]["Hostname"]: n.attrs for n in mgr.client.nodes.list()}
    node = dep.node or host
    if node not in nodes:
        raise InvalidInputError(f"at node: no swarm node {node!r} (nodes: {sorted(nodes)})")
    ncpu = nodes[node]["Description"]["Resources"]["NanoCPUs"] / NS
    if dep.resources.cpus > ncpu:
        raise InvalidInputError(f"at resources.cpus: {dep.resources.cpus:g} > {ncpu:g} on {node}")
    labels = mgr.image_labels(dep.image)
    mgr._check_outputs(dep, labels)  # stand-alone containers on this engine
    check_service_claims(mgr, dep.name, labels)
    image = mgr.client.images.get(dep.image)
    config = image.attrs["Config"]
    entrypoint = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    secrets = _secrets(mgr, dep, dep.credentials.resolve(Path.cwd()))
    spec = service_spec(
        dep, image_id=image.id or "", labels=labels, entrypoint=entrypoint, secrets=secrets,
        hostname=host,
    )  # fmt: skip
    return spec, labels


def check_service_claims(mgr: DeploymentManager, name: str, labels: dict[str, str]) -> None:
    """No two deployments may drive one output: compare with every vplc service of the swarm."""
    if not (mgr.info.get("Swarm") or {}).get("ControlAvailable"):
        return
    mine = set(json.loads(labels.get(LABEL + "outputs", "[]")))
    for svc in mgr.client.services.list(filters={"label": LABEL + "deployment"}):
        other = svc.attrs["Spec"]["Labels"]
        shared = mine & set(json.loads(other.get(LABEL + "outputs", "[]")))
        if other.get(LABEL + "deployment") != name and shared:
            raise InvalidInputError(
                f"deployment {name!r} claims outputs already driven by Swarm service "
                f"{svc.name}: {', '.join(sorted(shared))}"
            )


def _secrets(mgr: DeploymentManager, dep: Deployment, env: dict[str, str]) -> list[dict[str, Any]]:
    """One Swarm secret per credential, named by content hash (secrets are immutable)."""
    refs = []
    for key, value in sorted(env.items()):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise InvalidInputError(f"credentials: {key!r} is not an environment variable name")
        digest = hashlib.sha256(f"{key}={value}".encode()).hexdigest()[:12]
        name = f"vplc-{dep.name[:32]}-{key[:12].lower()}-{digest}".replace("_", "-")
        found = mgr.client.secrets.list(filters={"name": name})
        secret = next((s for s in found if s.name == name), None) or mgr.client.secrets.create(
            name=name, data=value.encode(), labels={LABEL + "deployment": dep.name}
        )
        file = {"Name": key, "UID": str(UID), "GID": str(UID), "Mode": 0o400}
        refs.append({"SecretID": secret.id, "SecretName": name, "File": file})
    return refs


def dropped_fields(svc: Any, spec: dict[str, Any]) -> list[str]:
    """Hardening fields the engine silently ignored (older engines drop unknown fields)."""
    want, got = spec["task_template"], svc.attrs["Spec"]["TaskTemplate"]
    fields = [("ContainerSpec", k) for k in ("CapabilityDrop", "ReadOnly", "Ulimits")]
    return [
        f"{a}.{b}"
        for a, b in [*fields, ("Resources", "Limits")]
        if want[a].get(b) and got.get(a, {}).get(b) != want[a][b]
    ]
