"""Container-level operations: hardened create options, heartbeat and log reads."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from containers._dockerfile import CONFIG_MOUNT, HEARTBEAT, STATE_DIR, UID
from containers._image import LABEL
from containers._spec import Deployment
from runtime.ops import IMAGE_ENV

__all__ = ["container_name", "create_options", "last_logs", "read_heartbeat"]


def container_name(deployment: str) -> str:
    return f"vplc-{deployment}"


def create_options(
    dep: Deployment, *, image_labels: dict[str, str], env: dict[str, str], image_id: str
) -> dict[str, Any]:
    """``containers.create`` keyword arguments: least privilege unless the file says otherwise.

    The container is created from ``image_id`` (resolved once by the caller, recorded in the
    history and the audit trail), so a tag moved meanwhile cannot change what runs.
    """
    labels = {
        LABEL + "deployment": dep.name,
        LABEL + "node": dep.node or "",
        LABEL + "image": dep.image,
        LABEL + "image-id": image_id,
        **{k: v for k, v in image_labels.items() if k.startswith(LABEL)},
    }
    options: dict[str, Any] = {
        "image": image_id,
        "name": container_name(dep.name),
        "detach": True,
        "labels": labels,
        # The batch record's header names the image the app ran from (runtime/ops/_batch.py).
        "environment": {**dep.environment, **env, IMAGE_ENV: f"{dep.image}@{image_id}"},
        "user": f"{UID}:{UID}",
        "read_only": True,
        # Python and the libraries want a writable /tmp; keep it small and in memory.
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=16m"},
        "volumes": {dep.volume: {"bind": STATE_DIR, "mode": "rw"}},
        "cap_drop": ["ALL"],
        # SCHED_FIFO needs CAP_SYS_NICE (or RLIMIT_RTPRIO, see `rtprio`); it is the only one kept.
        "cap_add": ["SYS_NICE"] if dep.realtime else [],
        "security_opt": ["no-new-privileges:true"],
        "privileged": dep.privileged,
        "mem_limit": dep.resources.memory_bytes,
        "memswap_limit": dep.resources.memory_bytes,  # equal to the limit: no swap, ever
        "nano_cpus": round(dep.resources.cpus * 1e9),
        "pids_limit": 256,
        "network_mode": dep.network_mode.value,
        "restart_policy": {"Name": dep.restart.value},
        # Bounded logs: a plant node must not fill its disk with a chatty app.
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
    }
    if dep.serve.files():
        assert dep.config_dir is not None  # the deployment's own check
        options["volumes"][str(dep.config_dir)] = {"bind": CONFIG_MOUNT, "mode": "ro"}
        options["command"] = dep.serve.flags(CONFIG_MOUNT)  # after the image's entrypoint
    if dep.ports:
        options["ports"] = {f"{inside}/tcp": outside for inside, outside in dep.ports.items()}
    if dep.resources.cpuset is not None:
        options["cpuset_cpus"] = dep.resources.cpuset
    if dep.rtprio:
        options["ulimits"] = [docker.types.Ulimit(name="rtprio", soft=dep.rtprio, hard=dep.rtprio)]
    return options


def last_logs(container: Container, lines: int = 15) -> list[str]:
    try:
        raw = container.logs(tail=lines)
    except docker.errors.APIError:
        return []
    return [x for x in raw.decode("utf-8", "replace").splitlines() if x.strip()]


def read_heartbeat(container: Container) -> dict[str, Any] | None:
    """The heartbeat JSON, from a running container or (via the archive API) a stopped one."""
    try:
        container.reload()  # the cached status is stale right after a stop
        if container.status == "running":
            result = container.exec_run(["cat", HEARTBEAT], user=str(UID))
            output = result.output
            if result.exit_code != 0 or not isinstance(output, bytes):
                return None
            return dict(json.loads(output))
        stream, _ = container.get_archive(HEARTBEAT)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            return dict(json.loads(member.read())) if member else None
    except (
        docker.errors.APIError,
        docker.errors.NotFound,
        ValueError,
        KeyError,
        IndexError,
        tarfile.TarError,
    ):
        return None
