"""The deployment manager: deploy, status, logs and remove, each recorded in the audit trail."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
from docker.models.containers import Container

from containers._base import Progress
from containers._errors import DeployError, InvalidInputError
from containers._history import (
    drop_release_tags,
    keep_release_tag,
    merge_history,
    release_entry,
)
from containers._image import LABEL
from containers._ops import container_name, create_options, last_logs
from containers._record import AuditTrail, DeploymentStore, note_restarts
from containers._spec import Deployment, load_deployment, parse_cpuset
from containers._status import container_row
from containers._watch import probation_window_s, stall_limit_s, wait_healthy, watch_probation

__all__ = ["DeploymentManager", "Started"]


@dataclass(frozen=True)
class Started:
    """A container that became healthy and passed its probation, with the times it took."""

    container: Container
    healthy_after_s: float
    probation_s: float


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

    def image_id(self, image: str) -> str:
        """The ID of ``image`` (tag or ID) now: what is started, recorded and audited."""
        try:
            return str(self.client.images.get(image).id)
        except docker.errors.ImageNotFound:
            raise InvalidInputError(
                f"image {image!r} does not exist in this Docker engine"
            ) from None

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
            found = self.client.containers.get(container_name(name))
        except docker.errors.NotFound:
            raise InvalidInputError(f"no deployment named {name!r} on this node") from None
        self.note_restarts([found])  # before update/rollback/remove/logs act on it
        return found

    def note_restarts(self, containers: list[Container]) -> None:
        """Audit restarts Docker made since the manager last looked (see ``note_restarts``)."""
        try:
            note_restarts(self.audit, self.store, containers, who=self.user)
        except OSError as exc:  # e.g. `status` by a user who may not write the state dir
            self.progress(f"warning: restarts not recorded in {self.audit.path}: {exc}")

    # ------------------------------------------------------------------ deploy
    def deploy(self, path: Path) -> dict[str, Any]:
        with self.refusals("deploy", None, file=str(path)) as context:
            dep = load_deployment(path)
            context["deployment"] = dep.name
            dep = dep.relative_to(path.resolve().parent, source=path)
            labels = self.check(dep, source=str(path))
            image_id = self.image_id(dep.image)
            context["to_image_id"] = image_id
            try:
                self.client.containers.get(container_name(dep.name))
                raise InvalidInputError(
                    f"deployment {dep.name!r} exists already: use `vplc update {dep.name} IMAGE`"
                )
            except docker.errors.NotFound:
                pass
        version = labels.get(LABEL + "version")
        ids = {"from_image_id": None, "to_image_id": image_id}
        started = self.start(dep, labels, what="deploy", from_version=None, image_id=image_id)
        self.commit(dep.name, dep, what="deploy", image_id=image_id)
        timing = {"healthy_after_s": started.healthy_after_s, "probation_s": started.probation_s}
        self.record("deploy", dep.name, None, version, "ok", **ids, **timing)
        return {"name": dep.name, "image": dep.image, "image_id": image_id, **timing}

    def start(
        self,
        dep: Deployment,
        labels: dict[str, str],
        *,
        what: str,
        from_version: str | None,
        image_id: str,
        audit: dict[str, Any] | None = None,
    ) -> Started:
        """Create and start the container, wait for healthy, then watch it through probation.

        On failure the container is removed (its last log lines go into the error) and the
        failure is recorded; the caller rolls back what it changed.
        """
        env = dep.credentials.resolve(Path.cwd())
        self.ensure_volume(dep)
        container = self.client.containers.create(
            **create_options(dep, image_labels=labels, env=env, image_id=image_id)
        )
        container.start()
        self.progress(f"{dep.name}: started {dep.image}, waiting for healthy")
        try:
            started, reason = self._watch(dep, labels, container)
        except (docker.errors.APIError, KeyboardInterrupt) as exc:
            # Nobody watches the new version any more: treat it as failed, so the caller
            # puts back what ran before rather than leaving both half done.
            started, reason = None, f"watch interrupted ({type(exc).__name__}: {exc})"
        if started is not None:
            return started
        logs = last_logs(container)
        container.remove(force=True)
        to_version = labels.get(LABEL + "version")
        self.record(
            what, dep.name, from_version, to_version, "failed", reason=reason,
            to_image_id=image_id, **(audit or {}),
        )  # fmt: skip
        raise DeployError(
            f"{dep.name}: {dep.image} {reason}; the container was removed. Last log lines:\n"
            + "\n".join(logs)
        )

    def _watch(
        self, dep: Deployment, labels: dict[str, str], container: Container
    ) -> tuple[Started | None, str]:
        stall_s = stall_limit_s(labels)
        health = wait_healthy(container, timeout_s=dep.health_timeout_s, stall_s=stall_s)
        if not health.ok:
            return None, f"did not become healthy: {health.reason}"
        window = probation_window_s(dep.probation_s, labels)
        self.progress(
            f"{dep.name}: healthy after {health.seconds:.1f} s; probation {window:g} s "
            f"(a FAULT, stall, exit or restart now rolls back)"
        )
        watched = watch_probation(container, window_s=window, stall_s=stall_s)
        if not watched.ok:
            return None, f"failed its probation: {watched.reason}"
        self.progress(f"{dep.name}: probation passed")
        return Started(container, round(health.seconds, 2), round(watched.seconds, 2)), ""

    def commit(self, name: str, dep: Deployment, *, what: str, image_id: str, **extra: Any) -> None:
        """Store the deployment as applied and put its image first in the release history."""
        rec = self.store.get(name) or {}
        entry = release_entry(self.client, image_id, what=what, who=self.user)
        history, dropped = merge_history(
            rec.get("history") or [], entry | {"image": dep.image}, keep=dep.keep_releases
        )
        keep_release_tag(self.client, name, image_id)
        drop_release_tags(self.client, name, dropped)
        self.store.put(
            name,
            {
                "spec": dep.model_dump(mode="json"),
                "image": dep.image,
                "image_id": image_id,
                "previous": history[1]["image"] if len(history) > 1 else None,
                "history": history,
                **extra,
            },
        )

    @contextlib.contextmanager
    def refusals(self, what: str, name: str | None, **context: Any) -> Iterator[dict[str, Any]]:
        """Invalid input stops an operation before anything changed: audited as ``refused``.

        The body may add to the yielded dict (the deployment's name once known, image IDs).
        """
        context = {
            "deployment": name, "from_version": None, "to_version": None,
            "from_image_id": None, "to_image_id": None, **context,
        }  # fmt: skip
        try:
            yield context
        except InvalidInputError as exc:
            self.audit.append(
                who=self.user, what=what, outcome="refused", reason=str(exc)[:2000], **context
            )
            raise

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
        found = self.containers()
        self.note_restarts(found)
        return [container_row(c) for c in found]

    def logs(
        self, name: str, *, follow: bool, tail: int | Literal["all"] = "all"
    ) -> Iterator[bytes]:
        yield from self.container(name).logs(stream=True, follow=follow, tail=tail)

    def remove(self, name: str, *, purge: bool = False) -> None:
        """Stop (SIGTERM: outputs go safe) and remove; the state volume stays unless ``purge``."""
        with self.refusals("remove", name):
            c = self.container(name)
        version = c.labels.get(LABEL + "version")
        image_id = c.attrs.get("Image")
        c.stop(timeout=10)
        c.remove()
        rec = self.store.get(name)
        if purge and rec is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(Deployment.model_validate(rec["spec"]).volume).remove()
        self.forget(name)
        self.record(
            "remove", name, version, None, "ok", purged_state=purge, from_image_id=image_id,
            to_image_id=None,
        )  # fmt: skip

    def forget(self, name: str) -> None:
        """Drop the deployment's record and the tags that kept its releases."""
        rec = self.store.get(name) or {}
        drop_release_tags(self.client, name, rec.get("history") or [])
        self.store.delete(name)
