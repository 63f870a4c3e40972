"""``strategy: blue-green`` for container deployments: standby container + handover over MQTT.

The active instance is always named ``vplc-<name>``, so ``status``, ``logs`` and ``remove``
work unchanged; instances, their volumes and bridge configs: containers/_bluegreen_instance.py.

Update: start the new image (by ID) as ``vplc-<name>-<color>`` with ``--standby``, wait
healthy and answering on its command topic, run :func:`containers._bluegreen.blue_green_handover`
(release → claim → probation, the deployment's probation window, watching the container too),
then stop and remove the old container and its volume and rename the new one. On failure the
handover has already resumed the old instance (``handover_resume``); the new container and its
volume are removed. The standby restores the old version's snapshot (through the state merge
when the versions differ) and reports its ``plan`` with the claim answer: it goes into the
audit record. Secrets stay out of the images: the bridge's password comes from
``credentials`` (``password_env``), the deployer's token from its env.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, NoReturn

import docker.errors
from docker.models.containers import Container

from containers._bluegreen import HandoverFailedError, blue_green_handover
from containers._bluegreen_instance import (
    COLORS,
    color_volume,
    commander,
    discard,
    instance_prefix,
    other_color,
    start_instance,
    wait_ready,
)
from containers._errors import DeployError, InvalidInputError
from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._ops import container_name, last_logs
from containers._replacement import plan_replacement
from containers._spec import Deployment, Strategy, load_deployment
from containers._watch import probation_window_s, probe, stall_limit_s, watch_probation

__all__ = ["deploy", "instance_prefix", "remove", "update"]

STOP_TIMEOUT_S = 10


def deploy(mgr: DeploymentManager, path: Path) -> dict[str, Any]:
    """First deployment of a blue-green deployment: the blue instance, active (owner)."""
    with mgr.refusals("deploy", None, file=str(path)) as context:
        dep = load_deployment(path).relative_to(path.resolve().parent, source=path)
        context["deployment"] = dep.name
        assert dep.strategy is Strategy.BLUE_GREEN
        labels = mgr.check(dep, source=str(path))
        image_id = context["to_image_id"] = mgr.image_id(dep.image)
        with contextlib.suppress(docker.errors.NotFound):
            mgr.client.containers.get(container_name(dep.name))
            raise InvalidInputError(
                f"deployment {dep.name!r} exists already: use `vplc update {dep.name} IMAGE`"
            )
        color = COLORS[0]
        prefix = instance_prefix(dep, color, labels[LABEL + "app"])
        cmdr = commander(dep)
    version = labels.get(LABEL + "version")
    ids = {"from_image_id": None, "to_image_id": image_id}
    try:
        container = start_instance(
            mgr, dep, labels, color=color, name=container_name(dep.name), standby=False,
            image_id=image_id,
        )  # fmt: skip
        mgr.progress(f"{dep.name}: started {dep.image} ({color}), waiting for healthy")
        try:
            ready = wait_ready(
                mgr, cmdr, dep, container, prefix=prefix, mode="active", labels=labels
            )
            _probation(mgr, dep, container, labels)
        except DeployError as exc:
            discard(mgr, dep, container, color)
            mgr.record("deploy", dep.name, None, version, "failed", reason=str(exc)[:2000], **ids)
            raise
    finally:
        cmdr.close()
    mgr.commit(dep.name, dep, what="deploy", image_id=image_id, color=color)
    mgr.record(
        "deploy", dep.name, None, version, "ok", strategy="blue-green", color=color,
        healthy_after_s=ready, **ids,
    )  # fmt: skip
    return {
        "name": dep.name, "image": dep.image, "image_id": image_id, "color": color,
        "healthy_after_s": ready,
    }  # fmt: skip


def _probation(
    mgr: DeploymentManager, dep: Deployment, container: Container, labels: dict[str, str]
) -> None:
    """A first deployment has no predecessor to hand back to: watch it, fail the deploy."""
    window = probation_window_s(dep.probation_s, labels)
    mgr.progress(f"{dep.name}: probation {window:g} s")
    watched = watch_probation(container, window_s=window, stall_s=stall_limit_s(labels))
    if not watched.ok:
        raise DeployError(
            f"{dep.name}: {dep.image} failed its probation: {watched.reason}. Last log lines:\n"
            + "\n".join(last_logs(container))
        )


def update(
    mgr: DeploymentManager,
    name: str,
    image: str,
    *,
    what: str = "update",
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Replace ``name``'s running image by ``image`` through a handover; roll back on failure."""
    plan = plan_replacement(mgr, name, image, what=what, deadline_s=deadline_s)
    rec, old_dep, new_dep, old = plan.rec, plan.old_dep, plan.new_dep, plan.old
    old_labels, new_labels, app = plan.old_labels, plan.new_labels, plan.app
    from_v, to_v, ids = plan.from_version, plan.to_version, plan.image_ids
    old_color = str(rec.get("color") or old_labels.get(LABEL + "color") or COLORS[0])
    new_color = other_color(old_color)
    window = new_dep.blue_green.probation_s or probation_window_s(new_dep.probation_s, new_labels)
    base = {"strategy": "blue-green", **ids}
    with mgr.refusals(what, name, **base):
        old_prefix = instance_prefix(old_dep, old_color, app)
        new_prefix = instance_prefix(new_dep, new_color, app)
        cmdr = commander(new_dep)
    try:
        # A leftover standby of an interrupted update would hold the name and the volume.
        with contextlib.suppress(docker.errors.NotFound):
            stale = mgr.client.containers.get(f"{container_name(name)}-{new_color}")
            discard(mgr, new_dep, stale, new_color)
        mgr.progress(f"{name}: {what} {from_v} → {to_v}: starting {new_color} as standby")
        new = start_instance(
            mgr, new_dep, new_labels, color=new_color,
            name=f"{container_name(name)}-{new_color}", standby=True, image_id=plan.new_image_id,
        )  # fmt: skip
        try:
            ready = wait_ready(
                mgr, cmdr, new_dep, new, prefix=new_prefix, mode="standby", labels=new_labels
            )
        except DeployError as exc:
            discard(mgr, new_dep, new, new_color)
            mgr.record(what, name, from_v, to_v, "failed", reason=str(exc)[:2000], **base)
            raise DeployError(f"{exc}\nThe standby was removed; {from_v} kept running.") from None
        mgr.progress(f"{name}: {new_color} standby ready after {ready:.1f} s; handing over "
                     f"(probation {window:g} s)")  # fmt: skip
        watch = probe(new, stall_s=stall_limit_s(new_labels))
        try:
            report = blue_green_handover(
                cmdr, old=old_prefix, new=new_prefix, probation_s=window, watch=watch
            )
        except HandoverFailedError as exc:
            _handover_failed(mgr, new_dep, new, new_color, exc, what, (from_v, to_v), ids)
    finally:
        cmdr.close()
    mgr.progress(f"{name}: {new_color} owns the outputs (epoch {report['epoch']}); removing "
                 f"{old_color}")  # fmt: skip
    old.stop(timeout=STOP_TIMEOUT_S)  # superseded: it publishes nothing any more
    old.remove()
    discard(mgr, old_dep, old, old_color)  # its volume: a stale retain file
    new.rename(container_name(name))
    mgr.commit(name, new_dep, what=what, image_id=plan.new_image_id, color=new_color)
    gap = {
        "output_gap_cycles": report.get("plant_gap_cycles"),
        "output_gap_s": report.get("plant_gap_s"),
        "runtime_gap_cycles": report.get("runtime_gap_cycles"),
    }
    handover = _summary(report)
    planned = {"plan": report["plan"]} if "plan" in report else {}
    mgr.record(what, name, from_v, to_v, "ok", healthy_after_s=ready, probation_s=window,
               handover=handover, **base, **gap, **planned)  # fmt: skip
    return {
        "name": name, "from": from_v, "to": to_v, **base, "color": new_color,
        "healthy_after_s": ready, "probation_s": window, **gap, "handover": handover, **planned,
    }  # fmt: skip


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "outcome", "reason", "from_epoch", "epoch", "release_cycle", "skipped_releases",
        "release_to_claim_ms", "handover_ms", "plant_gap_s", "plant_gap_cycles",
        "runtime_gap_s", "runtime_gap_cycles", "epoch_runs", "old_mode", "resume",
    )  # fmt: skip
    return {k: report[k] for k in keys if k in report}


def _handover_failed(
    mgr: DeploymentManager,
    dep: Deployment,
    new: Container,
    color: str,
    exc: HandoverFailedError,
    what: str,
    versions: tuple[str | None, str | None],
    ids: dict[str, str | None],
) -> NoReturn:
    from_v, to_v = versions
    logs = last_logs(new)
    discard(mgr, dep, new, color)
    report = _summary(exc.report)
    planned = {"plan": exc.report["plan"]} if "plan" in exc.report else {}
    outcome = str(report.get("outcome", "failed"))
    if outcome == "refused":
        # Nothing had changed yet (the old one was never released): a plain failure.
        mgr.record(what, dep.name, from_v, to_v, "failed", strategy="blue-green",
                   reason=str(exc)[:2000], handover=report, **ids, **planned)  # fmt: skip
        raise DeployError(f"{dep.name}: handover refused: {exc}; {from_v} kept running")
    mgr.record(what, dep.name, to_v, from_v, outcome, automatic=True, strategy="blue-green",
               reason=str(exc)[:2000], handover=report, from_image_id=ids["to_image_id"],
               to_image_id=ids["from_image_id"], **planned)  # fmt: skip
    if outcome != "rolled-back":
        raise DeployError(
            f"{dep.name}: handover to {to_v} failed ({exc}) and the old instance did not "
            f"resume: {report.get('resume')}. Last log lines of the new one:\n" + "\n".join(logs)
        )
    raise DeployError(
        f"{dep.name}: handover to {to_v} failed: {exc}\nRolled back automatically: {from_v} "
        f"owns the outputs again (epoch {(report.get('resume') or {}).get('epoch')}); the new "
        f"container was removed. Last log lines:\n" + "\n".join(logs)
    )


def remove(mgr: DeploymentManager, name: str, *, purge: bool = False) -> None:
    """``DeploymentManager.remove`` plus the per-color volumes and instance configs."""
    rec = mgr.store.get(name)
    mgr.remove(name, purge=purge)
    if rec is None:
        return
    dep = Deployment.model_validate(rec["spec"])
    for color in COLORS:
        with contextlib.suppress(docker.errors.NotFound):
            mgr.client.containers.get(f"{container_name(name)}-{color}").remove(force=True)
        shutil.rmtree(
            mgr.audit.path.parent / "instances" / f"{container_name(name)}-{color}",
            ignore_errors=True,
        )
        if purge:
            with contextlib.suppress(docker.errors.NotFound):
                mgr.client.volumes.get(color_volume(dep, color)).remove()
