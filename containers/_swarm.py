"""Deployments as Docker Swarm services (``target: swarm``): deploy, status, update, rollback.

Same deployment file, same audit trail; Swarm adds scheduling over several nodes, rolling
updates with engine-side automatic rollback, and secrets. What it cannot promise for real time
(details in containers/README.md, "Swarm"): no cpuset pinning (refused at load time), so the
scan shares all cores of its node; SCHED_FIFO still needs ``rtprio`` (Ulimits, applied by this
20.10 engine, verified after create) or CAP_SYS_NICE; no ``no-new-privileges``, no memory+swap
limit; overlay networks add latency; the scheduler may move a task to another node (we always
pin ``node.hostname``); stop-first leaves an output gap of shutdown + start + health check.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import requests

from containers._errors import DeployError, InvalidInputError
from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._ops import last_logs
from containers._spec import Deployment, Target, load_deployment
from containers._swarm_spec import (
    check_and_build,
    check_service_claims,
    dropped_fields,
    service_name,
)
from containers._swarm_status import FAILED, status

__all__ = ["deploy", "deploy_file", "is_swarm", "logs", "remove", "rollback", "status", "update"]

_SETTLED = ("completed", "paused", "rollback_completed", "rollback_paused")


def _docker(mgr: DeploymentManager) -> Any:
    """The client, untyped: types-docker leaves the services API unannotated (strict mypy)."""
    return mgr.client


def _service(mgr: DeploymentManager, name: str) -> Any:
    try:
        return _docker(mgr).services.get(service_name(name))
    except docker.errors.NotFound:
        raise InvalidInputError(f"no Swarm service for deployment {name!r}") from None


def is_swarm(mgr: DeploymentManager, name: str) -> bool:
    """Whether ``name`` is a Swarm deployment (its record, else an existing service)."""
    rec = mgr.store.get(name)
    if rec is not None:
        return bool(rec["spec"].get("target") == Target.SWARM.value)
    if not (mgr.info.get("Swarm") or {}).get("ControlAvailable"):
        return False
    return bool(mgr.client.services.list(filters={"name": service_name(name)}))


def _task_problems(mgr: DeploymentManager, svc: Any, image_id: str) -> list[str]:
    """Errors of the failed tasks of ``image_id`` and, for tasks on this node, last log lines."""
    out: list[str] = []
    for t in svc.tasks():
        if t["Spec"]["ContainerSpec"]["Image"] != image_id or t["Status"]["State"] not in FAILED:
            continue
        out.append(f"task {t['ID'][:12]}: {t['Status'].get('Err') or t['Status']['State']}")
        cid = (t["Status"].get("ContainerStatus") or {}).get("ContainerID")
        if cid and not out[1:]:  # the log lines of one failed task are enough
            with contextlib.suppress(docker.errors.NotFound):
                out += last_logs(mgr.client.containers.get(cid))
    return out


def _running(svc: Any, image_id: str) -> bool:
    """One task of ``image_id`` is running (Swarm reports RUNNING only once it is healthy)."""
    return any(
        t["Spec"]["ContainerSpec"]["Image"] == image_id
        and t["DesiredState"] == "running"
        and t["Status"]["State"] == "running"
        for t in svc.tasks()
    )


def _started_at(svc: Any) -> str | None:
    return (svc.attrs.get("UpdateStatus") or {}).get("StartedAt")


def _wait_update(svc: Any, *, before: str | None, timeout_s: float) -> str:
    """Poll the update (or rollback) that started after ``before`` until it settles."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        svc.reload()
        state = str((svc.attrs.get("UpdateStatus") or {}).get("State", ""))
        # Until the orchestrator picks the new spec up, UpdateStatus is the previous run's.
        if _started_at(svc) != before and state in _SETTLED:
            return state
        time.sleep(0.5)
    return "timeout"


def _wait_created(mgr: DeploymentManager, svc: Any, image_id: str, timeout_s: float) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if _running(svc, image_id):
            return "created"
        if _task_problems(mgr, svc, image_id):
            return "failed"  # the restart policy would retry; a deploy reports the first failure
        time.sleep(0.5)
    return f"no healthy task within {timeout_s:g} s"


def deploy_file(mgr: DeploymentManager, path: Path) -> dict[str, Any]:
    """``vplc deploy``: a service for ``target: swarm``, else the manager's container."""
    dep = load_deployment(path)
    if dep.target is Target.SWARM:
        return deploy(mgr, path)
    # The manager sees this engine's containers only; the outputs of services count as well.
    check_service_claims(mgr, dep.name, mgr.image_labels(dep.image))
    return mgr.deploy(path)


def logs(mgr: DeploymentManager, name: str, *, follow: bool, tail: int | str) -> Iterator[bytes]:
    """The service's log lines (json-file driver, from whichever node runs the task)."""
    api = _docker(mgr).api
    yield from api.service_logs(
        service_name(name), stdout=True, stderr=True, follow=follow, tail=tail
    )


def deploy(mgr: DeploymentManager, path: Path) -> dict[str, Any]:
    """Create the service and wait until its task runs healthy; on failure remove it and raise."""
    with mgr.refusals("deploy", None, file=str(path), target="swarm") as context:
        dep = load_deployment(path)
        context["deployment"] = dep.name
        if dep.credentials.env_file is not None and not dep.credentials.env_file.is_absolute():
            creds = dep.credentials.model_copy(
                update={"env_file": path.resolve().parent / dep.credentials.env_file}
            )
            dep = dep.model_copy(update={"credentials": creds})
        if mgr.client.services.list(filters={"name": service_name(dep.name)}) or mgr.store.get(
            dep.name
        ):
            raise InvalidInputError(
                f"deployment {dep.name!r} exists already: use `vplc update {dep.name} IMAGE`"
            )
        spec, labels = check_and_build(mgr, dep)
    version = labels.get(LABEL + "version")
    image_id = spec["task_template"]["ContainerSpec"]["Image"]
    ids = {"from_image_id": None, "to_image_id": image_id}
    t0 = time.monotonic()
    svc = _docker(mgr).services.get(_docker(mgr).api.create_service(**spec)["ID"])
    dropped = dropped_fields(svc, spec)
    outcome = "dropped" if dropped else "created"
    if not dropped:
        mgr.progress(f"{dep.name}: service {svc.name} created, waiting for a healthy task")
        outcome = _wait_created(mgr, svc, image_id, dep.health_timeout_s)
    if outcome != "created":
        reason = (
            f"the engine ignored {', '.join(dropped)} (needs Docker ≥ 20.10)"
            if dropped
            else "\n".join(_task_problems(mgr, svc, image_id)) or outcome
        )
        svc.remove()
        mgr.record(
            "deploy", dep.name, None, version, "failed", target="swarm", reason=reason, **ids
        )
        raise DeployError(f"{dep.name}: service did not start; it was removed:\n{reason}")
    health = round(time.monotonic() - t0, 2)
    mgr.commit(dep.name, dep, what="deploy", image_id=image_id)
    mgr.record(
        "deploy", dep.name, None, version, "ok", target="swarm", healthy_after_s=health, **ids
    )
    return {
        "name": dep.name, "image": dep.image, "image_id": image_id, "service": svc.name,
        "healthy_after_s": health,
    }  # fmt: skip


def update(
    mgr: DeploymentManager,
    name: str,
    image: str,
    *,
    deadline_s: float | None = None,
    what: str = "update",
) -> dict[str, Any]:
    """Rolling update (stop-first, one task) to ``image``; Swarm rolls back by itself on failure.

    ``what="rollback"``: ``vplc rollback --to`` a release of the history, done as an update.
    """
    with mgr.refusals(what, name, to_image=image, target="swarm") as context:
        rec = mgr.store.get(name)
        if rec is None:
            raise InvalidInputError(f"no deployment named {name!r} in {mgr.store.dir}")
        old_dep = Deployment.model_validate(rec["spec"])
        dep = old_dep.model_copy(update={"image": image})
        svc = _service(mgr, name)
        old = svc.attrs["Spec"]["Labels"]
        old_id = context["from_image_id"] = svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"][
            "Image"
        ]
        spec, labels = check_and_build(mgr, dep)
        image_id = context["to_image_id"] = spec["task_template"]["ContainerSpec"]["Image"]
        if labels.get(LABEL + "app") != old.get(LABEL + "app"):
            raise InvalidInputError(
                f"image {image!r} holds app {labels.get(LABEL + 'app')!r}, but deployment "
                f"{name!r} runs app {old.get(LABEL + 'app')!r}"
            )
        if image_id == old_id:
            raise InvalidInputError(f"deployment {name!r} runs {image} already")
    ids = {"from_image_id": old_id, "to_image_id": image_id}
    from_v, to_v = old.get(LABEL + "version"), labels.get(LABEL + "version")
    timeout = deadline_s or dep.health_timeout_s + 3 * dep.swarm.monitor_s + 30
    mgr.progress(f"{name}: rolling {what} {from_v} → {to_v} ({dep.swarm.update_order.value})")
    t0, before = time.monotonic(), _started_at(svc)
    mgr.client.api.update_service(svc.id, svc.version, **spec)
    state = _wait_update(svc, before=before, timeout_s=timeout)
    seconds = round(time.monotonic() - t0, 2)
    if state == "completed" and _running(svc, image_id):
        mgr.commit(name, dep, what=what, image_id=image_id)
        mgr.record(what, name, from_v, to_v, "ok", target="swarm", converged_after_s=seconds, **ids)
        return {"name": name, "from": from_v, "to": to_v, "converged_after_s": seconds, **ids}
    problems = _task_problems(mgr, svc, image_id)
    message = (svc.attrs.get("UpdateStatus") or {}).get("Message", "")
    outcome = "rolled-back" if state == "rollback_completed" else f"update-{state}"
    reason = "\n".join([message, *problems]).strip()
    mgr.record(
        what, name, to_v, from_v, outcome, target="swarm", automatic=True, reason=reason,
        from_image_id=image_id, to_image_id=old_id,
    )  # fmt: skip
    raise DeployError(
        f"{name}: rolling update to {to_v} failed ({state}): {reason}\n"
        + (f"Rolled back automatically to {from_v}." if outcome == "rolled-back" else "")
    )


def rollback(mgr: DeploymentManager, name: str, *, deadline_s: float = 120) -> dict[str, Any]:
    """Swarm's own rollback to the service's previous spec (``docker service rollback``).

    ``vplc rollback --to`` another release of the history is an update (``update(what=...)``).
    """
    with mgr.refusals("rollback", name, target="swarm"):
        svc, rec = _service(mgr, name), mgr.store.get(name) or {}
        if not svc.attrs.get("PreviousSpec") or not rec.get("previous"):
            raise InvalidInputError(
                f"deployment {name!r} has no previous version to roll back to (Swarm keeps one "
                f"previous spec, and an automatic rollback uses it up): `vplc rollback {name} "
                f"--to VERSION` or `vplc update {name} IMAGE`"
            )
        now, prev = svc.attrs["Spec"]["Labels"], svc.attrs["PreviousSpec"]["Labels"]
        prev_id = svc.attrs["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        history = rec.get("history") or []
        expected = history[1]["image_id"] if len(history) > 1 else None
        if (prev_id != expected) if expected else (prev.get(LABEL + "image") != rec["previous"]):
            # After an automatic rollback Swarm's previous spec is the version that failed.
            raise InvalidInputError(
                f"Swarm's previous spec of {name!r} is {prev.get(LABEL + 'image')} (an update "
                f"that failed and was rolled back), not {rec['previous']}; use `vplc rollback "
                f"{name} --to VERSION`"
            )
    ids = {
        "from_image_id": svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        "to_image_id": svc.attrs["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"],
    }
    api = mgr.client.api
    url = f"{api.base_url}/v{api.api_version}/services/{svc.id}/update"
    params, before = {"version": svc.version, "rollback": "previous"}, _started_at(svc)
    response = api.post(url, params=params, json=svc.attrs["Spec"])
    try:
        response.raise_for_status()
    except requests.HTTPError:
        raise DeployError(f"{name}: Swarm refused the rollback: {response.text.strip()}") from None
    state = _wait_update(svc, before=before, timeout_s=deadline_s)
    from_v, to_v = now.get(LABEL + "version"), prev.get(LABEL + "version")
    if state != "rollback_completed":
        mgr.record("rollback", name, from_v, to_v, "failed", target="swarm", reason=state, **ids)
        raise DeployError(f"{name}: rollback to {to_v} did not complete: {state}")
    dep = Deployment.model_validate({**rec["spec"], "image": prev[LABEL + "image"]})
    mgr.commit(name, dep, what="rollback", image_id=str(ids["to_image_id"]))
    mgr.record("rollback", name, from_v, to_v, "ok", target="swarm", **ids)
    return {"name": name, "from": from_v, "to": to_v, **ids}


def remove(mgr: DeploymentManager, name: str, *, purge: bool = False) -> None:
    """Remove the service (its task gets SIGTERM: outputs go safe) and its secrets."""
    with mgr.refusals("remove", name, target="swarm"):
        svc = _service(mgr, name)
    version = svc.attrs["Spec"]["Labels"].get(LABEL + "version")
    image_id = svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    sid = svc.id
    svc.remove()
    # Secrets and the volume are freed only when the task containers are gone.
    deadline = time.monotonic() + 30
    label: dict[str, str | list[str] | bool] = {"label": f"com.docker.swarm.service.id={sid}"}
    # sparse: no inspect per container, so one that goes away while listed is no error
    containers = mgr.client.containers
    while containers.list(all=True, filters=label, sparse=True) and time.monotonic() < deadline:
        time.sleep(0.5)
    for secret in mgr.client.secrets.list(filters={"label": f"{LABEL}deployment={name}"}):
        secret.remove()
    rec = mgr.store.get(name)
    if purge:  # only this node's copy: a volume is local to the node the task ran on
        volume = Deployment.model_validate(rec["spec"]).volume if rec else f"vplc-{name}-state"
        with contextlib.suppress(docker.errors.NotFound):
            mgr.client.volumes.get(volume).remove()
    mgr.forget(name)
    mgr.record(
        "remove", name, version, None, "ok", target="swarm", purged_state=purge,
        from_image_id=image_id, to_image_id=None,
    )  # fmt: skip
