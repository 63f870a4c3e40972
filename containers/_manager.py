"""The deployment manager: deploy, status, logs and remove, each recorded in the audit trail."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
from docker.models.containers import Container

from containers._base import Progress
from containers._errors import DeployError, InvalidInputError
from containers._image import LABEL
from containers._ops import container_name, create_options, last_logs, read_heartbeat, wait_healthy
from containers._record import AuditTrail, DeploymentStore
from containers._spec import Deployment, load_deployment, parse_cpuset

__all__ = ["DeploymentManager"]


class DeploymentManager:
    """Deployments on one Docker engine (one node), with records under ``state_dir``."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        state_dir: Path,
        user: str,
        progress: Progress = print,
    ) -> None:
        self.client = client
        self.user = user
        self.progress = progress
        self.audit = AuditTrail(state_dir)
        self.store = DeploymentStore(state_dir)
        self._info: dict[str, Any] | None = None

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = dict(self.client.info())
        return self._info

    # ------------------------------------------------------------------ checks
    def check(self, dep: Deployment, *, source: str) -> dict[str, str]:
        """Refuse what this node cannot run; return the image's labels."""
        node, ncpu = self.info.get("Name", "?"), int(self.info.get("NCPU", 1))
        if dep.node is not None and dep.node != node:
            raise InvalidInputError(
                f"{source}: at node: deployment is for node {dep.node!r} but the Docker engine "
                f"here is {node!r}; point DOCKER_HOST at that node's engine"
            )
        if dep.resources.cpuset is not None:
            missing = [c for c in parse_cpuset(dep.resources.cpuset) if c >= ncpu]
            if missing:
                raise InvalidInputError(
                    f"{source}: at resources.cpuset: CPU(s) {missing} do not exist on node "
                    f"{node!r}, which has CPUs 0-{ncpu - 1}"
                )
        if dep.resources.cpus > ncpu:
            raise InvalidInputError(
                f"{source}: at resources.cpus: {dep.resources.cpus:g} CPUs asked, node {node!r} "
                f"has {ncpu}"
            )
        labels = self.image_labels(dep.image)
        self._check_outputs(dep, labels)
        return labels

    def image_labels(self, image: str) -> dict[str, str]:
        try:
            labels = dict(self.client.images.get(image).labels or {})
        except docker.errors.ImageNotFound:
            raise InvalidInputError(
                f"image {image!r} does not exist in this Docker engine (no registry is used): "
                f"build it with `vplc image build APP_DIR`"
            ) from None
        if LABEL + "app" not in labels:
            raise InvalidInputError(
                f"image {image!r} is not a vplc app image (no {LABEL}app label)"
            )
        return labels

    def _check_outputs(self, dep: Deployment, labels: dict[str, str]) -> None:
        """Two deployments on one node must never drive the same physical output."""
        mine = set(json.loads(labels.get(LABEL + "outputs", "[]")))
        for other in self.containers():
            other_name = other.labels.get(LABEL + "deployment")
            if other_name == dep.name:
                continue
            shared = mine & set(json.loads(other.labels.get(LABEL + "outputs", "[]")))
            if shared:
                raise InvalidInputError(
                    f"deployment {dep.name!r} claims outputs already driven by deployment "
                    f"{other_name!r} on this node: {', '.join(sorted(shared))}; remove that "
                    f"deployment first or bind the app to other channels"
                )

    # ------------------------------------------------------------------ queries
    def containers(self) -> list[Container]:
        # ignore_removed: a container removed between the listing and its inspection (a
        # swarm task, a concurrent `vplc remove`) is simply no longer there
        found = self.client.containers.list(
            all=True, filters={"label": LABEL + "deployment"}, ignore_removed=True
        )
        return sorted(found, key=lambda c: c.name or "")

    def container(self, name: str) -> Container:
        try:
            return self.client.containers.get(container_name(name))
        except docker.errors.NotFound:
            raise InvalidInputError(f"no deployment named {name!r} on this node") from None

    # ------------------------------------------------------------------ deploy
    def deploy(self, path: Path) -> dict[str, Any]:
        dep = load_deployment(path)
        base = path.resolve().parent
        if dep.credentials.env_file is not None and not dep.credentials.env_file.is_absolute():
            creds = dep.credentials.model_copy(update={"env_file": base / dep.credentials.env_file})
            dep = dep.model_copy(update={"credentials": creds})
        labels = self.check(dep, source=str(path))
        try:
            self.client.containers.get(container_name(dep.name))
            raise InvalidInputError(
                f"deployment {dep.name!r} exists already: use `vplc update {dep.name} IMAGE`"
            )
        except docker.errors.NotFound:
            pass
        version = labels.get(LABEL + "version")
        health = self.start(dep, labels, what="deploy", from_version=None)
        self.store.put(
            dep.name, {"spec": dep.model_dump(mode="json"), "image": dep.image, "previous": None}
        )
        self.record("deploy", dep.name, None, version, "ok", healthy_after_s=health)
        return {"name": dep.name, "image": dep.image, "healthy_after_s": health}

    def start(
        self, dep: Deployment, labels: dict[str, str], *, what: str, from_version: str | None
    ) -> float:
        """Create and start the container and wait for healthy; on failure remove it and raise."""
        env = dep.credentials.resolve(Path.cwd())
        self.ensure_volume(dep)
        container = self.client.containers.create(
            **create_options(dep, image_labels=labels, env=env)
        )
        container.start()
        self.progress(f"{dep.name}: started {dep.image}, waiting for healthy")
        health = wait_healthy(container, timeout_s=dep.health_timeout_s)
        if health.ok:
            self.progress(f"{dep.name}: healthy after {health.seconds:.1f} s")
            return round(health.seconds, 2)
        logs = last_logs(container)
        container.remove(force=True)
        to_version = labels.get(LABEL + "version")
        self.record(what, dep.name, from_version, to_version, "failed", reason=health.reason)
        raise DeployError(
            f"{dep.name}: {dep.image} did not become healthy: {health.reason}; the container "
            f"was removed. Last log lines:\n" + "\n".join(logs)
        )

    def ensure_volume(self, dep: Deployment) -> None:
        try:
            self.client.volumes.get(dep.volume)
        except docker.errors.NotFound:
            self.client.volumes.create(dep.volume, labels={LABEL + "deployment": dep.name})

    def record(
        self,
        what: str,
        name: str,
        from_version: str | None,
        to_version: str | None,
        outcome: str,
        **extra: Any,
    ) -> None:
        self.audit.append(
            who=self.user,
            what=what,
            deployment=name,
            from_version=from_version,
            to_version=to_version,
            outcome=outcome,
            **extra,
        )

    # ------------------------------------------------------------------ status, logs, remove
    def status(self) -> list[dict[str, Any]]:
        rows = []
        for c in self.containers():
            state = c.attrs["State"]
            beat = read_heartbeat(c) if c.status == "running" else None
            rows.append(
                {
                    "deployment": c.labels.get(LABEL + "deployment"),
                    "app": c.labels.get(LABEL + "app"),
                    "version": c.labels.get(LABEL + "version"),
                    "image": c.labels.get(LABEL + "image"),
                    "state": c.status,
                    "health": (state.get("Health") or {}).get("Status", "none"),
                    "restarts": c.attrs.get("RestartCount", 0),
                    "started_at": state.get("StartedAt"),
                    "scan": _scan_summary(beat),
                }
            )
        return rows

    def logs(
        self, name: str, *, follow: bool, tail: int | Literal["all"] = "all"
    ) -> Iterator[bytes]:
        yield from self.container(name).logs(stream=True, follow=follow, tail=tail)

    def remove(self, name: str, *, purge: bool = False) -> None:
        """Stop (SIGTERM: outputs go safe) and remove; the state volume stays unless ``purge``."""
        c = self.container(name)
        version = c.labels.get(LABEL + "version")
        c.stop(timeout=10)
        c.remove()
        rec = self.store.get(name)
        if purge and rec is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(Deployment.model_validate(rec["spec"]).volume).remove()
        self.store.delete(name)
        self.record("remove", name, version, None, "ok", purged_state=purge)


def _scan_summary(beat: dict[str, Any] | None) -> dict[str, Any] | None:
    if beat is None:
        return None
    tasks = beat.get("statistics", {}).get("tasks", {})
    return {
        "state": beat.get("state"),
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
