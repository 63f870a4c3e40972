"""Updates as stop-and-restart on the kept state volume, with automatic and on-demand rollback.

``strategy: blue-green`` deployments are handed to containers/_bluegreen_deploy.py instead.

The old container is stopped (SIGTERM: its outputs go to their safe values) and kept, renamed,
until the new one is healthy and has passed its probation (containers/_watch.py), so an
automatic rollback only restarts it. The output gap is the time between the old container's
last cycle and the new one's first cycle (both from their heartbeat files), divided by the
fastest task period. ``rollback`` goes back to a release of the history (containers/_history.py)
by image ID.
"""

from __future__ import annotations

from typing import Any

import docker.errors
from docker.models.containers import Container

from containers._errors import DeployError
from containers._history import find_release
from containers._manager import DeploymentManager
from containers._ops import container_name, last_logs, read_heartbeat
from containers._replacement import deployment_record, plan_replacement
from containers._spec import Deployment, Strategy
from containers._watch import wait_healthy

__all__ = ["rollback", "update"]

STOP_TIMEOUT_S = 10


def update(
    mgr: DeploymentManager, name: str, image: str, *, deadline_s: float | None = None
) -> dict[str, Any]:
    """Replace the running image of ``name`` by ``image``; roll back if it is not healthy."""
    return _replace(mgr, name, image, what="update", deadline_s=deadline_s)


def rollback(
    mgr: DeploymentManager, name: str, *, to: str | None = None, deadline_s: float | None = None
) -> dict[str, Any]:
    """Return ``name`` to the release before the current one, or to the one ``to`` names
    (a version or an image ID prefix from ``vplc history NAME``), by image ID."""
    with mgr.refusals("rollback", name, to=to):
        target = find_release(name, history(deployment_record(mgr, name)), to)
    return _replace(mgr, name, target["image_id"], what="rollback", deadline_s=deadline_s)


def history(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's release history; a record written before histories: current + previous."""
    if rec.get("history"):
        return list(rec["history"])
    legacy = [rec.get("image"), rec.get("previous")]
    return [{"image_id": ref, "image": ref, "version": None} for ref in legacy if ref]


def _replace(
    mgr: DeploymentManager, name: str, image: str, *, what: str, deadline_s: float | None
) -> dict[str, Any]:
    rec = mgr.store.get(name)
    if rec is not None and Deployment.model_validate(rec["spec"]).strategy is Strategy.BLUE_GREEN:
        from containers import _bluegreen_deploy

        return _bluegreen_deploy.update(mgr, name, image, what=what, deadline_s=deadline_s)
    plan = plan_replacement(mgr, name, image, what=what, deadline_s=deadline_s)
    old, new_dep, new_labels = plan.old, plan.new_dep, plan.new_labels
    from_v, to_v, ids = plan.from_version, plan.to_version, plan.image_ids
    mgr.progress(f"{name}: {what} {from_v} → {to_v}: stopping the old container")
    old.stop(timeout=STOP_TIMEOUT_S)
    old_beat = read_heartbeat(old)
    # Keep the old container (stopped, renamed) until the new one has passed its probation,
    # so an automatic rollback is a restart of exactly what ran, not a rebuild.
    old.rename(container_name(name) + "-previous")
    try:
        started = mgr.start(
            new_dep, new_labels, what=what, from_version=from_v, image_id=plan.new_image_id,
            audit={"from_image_id": plan.old_image_id},
        )  # fmt: skip
    except DeployError as exc:
        return _restore_old(mgr, name, old, what=what, versions=(from_v, to_v), ids=ids,
                            failure=exc)  # fmt: skip
    gap = _output_gap(old_beat, read_heartbeat(started.container))
    old.remove()
    mgr.commit(name, new_dep, what=what, image_id=plan.new_image_id)
    timing = {"healthy_after_s": started.healthy_after_s, "probation_s": started.probation_s}
    mgr.record(what, name, from_v, to_v, "ok", **ids, **timing, **gap)
    return {"name": name, "from": from_v, "to": to_v, **ids, **timing, **gap}


def _restore_old(
    mgr: DeploymentManager,
    name: str,
    old: Container,
    *,
    what: str,
    versions: tuple[str | None, str | None],
    ids: dict[str, str | None],
    failure: DeployError,
) -> dict[str, Any]:
    """The new version failed (and was removed): bring the old container back, then raise."""
    from_v, to_v = versions
    mgr.progress(f"{name}: {to_v} failed; rolling back to {from_v}")
    old.rename(container_name(name))
    old.start()
    health = wait_healthy(old, timeout_s=60)
    outcome = "rolled-back" if health.ok else "rollback-failed"
    mgr.record(
        what, name, to_v, from_v, outcome, automatic=True, reason=str(failure)[:2000],
        from_image_id=ids["to_image_id"], to_image_id=ids["from_image_id"],
        rollback_healthy_after_s=round(health.seconds, 2),
    )  # fmt: skip
    if not health.ok:
        logs = "\n".join(last_logs(old))
        raise DeployError(
            f"{failure}\nAutomatic rollback to {from_v} failed too: {health.reason}\n{logs}"
        )
    raise DeployError(
        f"{failure}\nRolled back automatically to {from_v} (healthy after {health.seconds:.1f} s)."
    )


def _output_gap(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Seconds and cycles of the fastest task without a scan between the two containers."""
    try:
        assert old is not None and new is not None
        gap_s = float(new["first_cycle_at"]) - float(old["last_cycle_at"])
        period_s = float(new["fastest_period_ms"]) / 1000.0
    except (AssertionError, KeyError, TypeError, ValueError):
        return {"output_gap_s": None, "output_gap_cycles": None}
    return {"output_gap_s": round(gap_s, 3), "output_gap_cycles": round(gap_s / period_s, 1)}


def stopped_heartbeat(container: Container) -> dict[str, Any] | None:
    """The final heartbeat of a stopped container (exposed for tests and the benchmark)."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return None
    return read_heartbeat(container)
