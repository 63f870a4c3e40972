"""``strategy: blue-green`` for container deployments: standby container + handover over MQTT.

Two instances ("colors") of one deployment may run at once, so each gets its own container,
state volume (``<volume>-<color>``: they must never share the retain file) and MQTT ``node``
(``<node>-<color>``: its own command prefix). The active instance is always named
``vplc-<name>``, so ``status``, ``logs`` and ``remove`` work unchanged.

Update: start the new image as ``vplc-<name>-<color>`` with ``--standby``, wait healthy and
answering on its command topic, run :func:`containers._bluegreen.blue_green_handover`
(release → claim → probation), then stop and remove the old container and its volume and
rename the new one. On failure the handover has already resumed the old instance
(``handover_resume``); the new container and its volume are removed.

The bridge config is read from ``config_dir`` (mounted read-only on /etc/vplc) and rewritten per
instance (node, relative paths: /etc/vplc for inputs, the state volume for the audit file) into
``STATE_DIR/instances/<container>/mqtt.yaml``, mounted read-only on /etc/vplc-instance. The
deployer runs on the engine's host (bind mounts). Secrets stay out of the images: the bridge's
password comes from ``credentials`` (``password_env``), the deployer's token from its env.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any, NoReturn

import docker.errors
import yaml
from docker.models.containers import Container

from containers._bluegreen import HandoverFailedError, MqttCommander, blue_green_handover
from containers._dockerfile import STATE_DIR
from containers._errors import DeployError, InvalidInputError
from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._ops import container_name, create_options, last_logs, wait_healthy
from containers._spec import Deployment, Strategy, load_deployment

__all__ = ["deploy", "instance_prefix", "remove", "update"]

CONFIG_MOUNT = "/etc/vplc"
INSTANCE_MOUNT = "/etc/vplc-instance"
COLORS = ("blue", "green")
STOP_TIMEOUT_S = 10


def _other(color: str) -> str:
    return COLORS[1] if color == COLORS[0] else COLORS[0]


def _volume(dep: Deployment, color: str) -> str:
    return f"{dep.volume}-{color}"


def _bridge_config(dep: Deployment) -> dict[str, Any]:
    assert dep.config_dir is not None
    path = dep.config_dir / dep.blue_green.mqtt_config
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"blue_green.mqtt_config: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        raise InvalidInputError(f"{path}: expected an MQTT bridge config with a node")
    return data


def instance_prefix(dep: Deployment, color: str, app: str) -> str:
    """The command prefix ``vplc/<site>/<node>-<color>/<app>`` of one instance."""
    cfg = _bridge_config(dep)
    return f"vplc/{cfg['site']}/{cfg['node']}-{color}/{app}"


def _write_instance_config(mgr: DeploymentManager, dep: Deployment, color: str) -> Path:
    """The bridge config of one instance: own node, paths that exist inside the container."""
    cfg = _bridge_config(dep)
    cfg["node"] = f"{cfg['node']}-{color}"
    if isinstance(cfg.get("client_id"), str):
        cfg["client_id"] = f"{cfg['client_id']}-{color}"
    for key in ("password_file", "access_file"):
        if isinstance(cfg.get(key), str) and not cfg[key].startswith("/"):
            cfg[key] = f"{CONFIG_MOUNT}/{cfg[key]}"
    tls = cfg.get("tls")
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            if isinstance(tls.get(key), str) and not tls[key].startswith("/"):
                tls[key] = f"{CONFIG_MOUNT}/{tls[key]}"
    audit = cfg.get("audit_file")
    if isinstance(audit, str) and not audit.startswith("/"):
        cfg["audit_file"] = f"{STATE_DIR}/{audit}"  # /etc/vplc is read-only
    folder = mgr.audit.path.parent / "instances" / f"{container_name(dep.name)}-{color}"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # read by uid 10001 in the container
    target = folder / "mqtt.yaml"
    target.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    target.chmod(0o644)
    return folder


def _commander(dep: Deployment) -> MqttCommander:
    bg = dep.blue_green
    token = os.environ.get(bg.token_env)
    if not token:
        raise InvalidInputError(
            f"blue_green.token_env: {bg.token_env} is not set; the deployer needs the token of "
            f"user {bg.user!r} (role engineer) to send handover commands"
        )
    cfg = _bridge_config(dep)
    host = bg.broker_host or str(cfg.get("host", "127.0.0.1"))
    port = bg.broker_port or int(cfg.get("port", 1883))
    try:
        return MqttCommander(
            host=host, port=port, user=bg.user, token=token, plant=bg.plant or "vplc/no-plant"
        )
    except OSError as exc:
        raise DeployError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from None


def _start_instance(
    mgr: DeploymentManager,
    dep: Deployment,
    labels: dict[str, str],
    *,
    color: str,
    name: str,
    standby: bool,
) -> Container:
    folder = _write_instance_config(mgr, dep, color)
    inst = dep.model_copy(update={"state_volume": _volume(dep, color)})
    mgr.ensure_volume(inst)
    env = dep.credentials.resolve(Path.cwd())
    options = create_options(inst, image_labels=labels, env=env)
    assert dep.config_dir is not None
    options["name"] = name
    options["labels"][LABEL + "color"] = color
    options["volumes"] |= {
        str(dep.config_dir): {"bind": CONFIG_MOUNT, "mode": "ro"},
        str(folder): {"bind": INSTANCE_MOUNT, "mode": "ro"},
    }
    options["command"] = ["--mqtt", f"{INSTANCE_MOUNT}/mqtt.yaml"] + (
        ["--standby"] if standby else []
    )
    container = mgr.client.containers.create(**options)
    container.start()
    return container


def _discard(mgr: DeploymentManager, dep: Deployment, container: Container, color: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        mgr.client.volumes.get(_volume(dep, color)).remove(force=True)
    folder = mgr.audit.path.parent / "instances" / f"{container_name(dep.name)}-{color}"
    shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(
    mgr: DeploymentManager,
    cmdr: MqttCommander,
    dep: Deployment,
    container: Container,
    *,
    prefix: str,
    mode: str,
) -> float:
    """Healthy (heartbeat) and answering handover_status in ``mode``; seconds it took."""
    t0 = time.monotonic()
    health = wait_healthy(container, timeout_s=dep.health_timeout_s)
    if not health.ok:
        raise DeployError(
            f"{dep.name}: {dep.image} did not become healthy: {health.reason}. Last log lines:\n"
            + "\n".join(last_logs(container))
        )
    deadline = time.monotonic() + dep.blue_green.ready_timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = cmdr.command(prefix, "handover_status", timeout=0.5)
        if last["status"] == "accepted" and last["new"]["mode"] == mode:
            return round(time.monotonic() - t0, 2)
        time.sleep(0.1)
    raise DeployError(
        f"{dep.name}: {container.name} is healthy but does not answer on {prefix}/cmd as "
        f"{mode} within {dep.blue_green.ready_timeout_s:g} s (last answer: {last}); check "
        f"the bridge config and the access file. Last log lines:\n"
        + "\n".join(last_logs(container))
    )


def _resolved(dep: Deployment, base: Path) -> Deployment:
    update: dict[str, Any] = {}
    if dep.config_dir is not None and not dep.config_dir.is_absolute():
        update["config_dir"] = base / dep.config_dir
    if dep.credentials.env_file is not None and not dep.credentials.env_file.is_absolute():
        update["credentials"] = dep.credentials.model_copy(
            update={"env_file": base / dep.credentials.env_file}
        )
    return dep.model_copy(update=update)


def deploy(mgr: DeploymentManager, path: Path) -> dict[str, Any]:
    """First deployment of a blue-green deployment: the blue instance, active (owner)."""
    dep = _resolved(load_deployment(path), path.resolve().parent)
    assert dep.strategy is Strategy.BLUE_GREEN
    labels = mgr.check(dep, source=str(path))
    with contextlib.suppress(docker.errors.NotFound):
        mgr.client.containers.get(container_name(dep.name))
        raise InvalidInputError(
            f"deployment {dep.name!r} exists already: use `vplc update {dep.name} IMAGE`"
        )
    version = labels.get(LABEL + "version")
    color = COLORS[0]
    prefix = instance_prefix(dep, color, labels[LABEL + "app"])
    cmdr = _commander(dep)
    try:
        container = _start_instance(
            mgr, dep, labels, color=color, name=container_name(dep.name), standby=False
        )
        mgr.progress(f"{dep.name}: started {dep.image} ({color}), waiting for healthy")
        try:
            ready = _wait_ready(mgr, cmdr, dep, container, prefix=prefix, mode="active")
        except DeployError as exc:
            _discard(mgr, dep, container, color)
            mgr.record("deploy", dep.name, None, version, "failed", reason=str(exc)[:2000])
            raise
    finally:
        cmdr.close()
    spec = dep.model_dump(mode="json")
    mgr.store.put(dep.name, {"spec": spec, "image": dep.image, "previous": None, "color": color})
    mgr.record(
        "deploy", dep.name, None, version, "ok", strategy="blue-green", color=color,
        healthy_after_s=ready,
    )  # fmt: skip
    return {"name": dep.name, "image": dep.image, "color": color, "healthy_after_s": ready}


def update(
    mgr: DeploymentManager,
    name: str,
    image: str,
    *,
    what: str = "update",
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Replace ``name``'s running image by ``image`` through a handover; roll back on failure."""
    from containers._rollout import plan_replacement  # _rollout dispatches here lazily

    plan = plan_replacement(mgr, name, image, deadline_s=deadline_s)
    rec, old_dep, new_dep, old = plan.rec, plan.old_dep, plan.new_dep, plan.old
    old_labels, new_labels, app = plan.old_labels, plan.new_labels, plan.app
    from_v, to_v = plan.from_version, plan.to_version
    old_color = str(rec.get("color") or old_labels.get(LABEL + "color") or COLORS[0])
    new_color = _other(old_color)
    old_prefix = instance_prefix(old_dep, old_color, app)
    new_prefix = instance_prefix(new_dep, new_color, app)
    cmdr = _commander(new_dep)
    try:
        # A leftover standby of an interrupted update would hold the name and the volume.
        with contextlib.suppress(docker.errors.NotFound):
            stale = mgr.client.containers.get(f"{container_name(name)}-{new_color}")
            _discard(mgr, new_dep, stale, new_color)
        mgr.progress(f"{name}: {what} {from_v} → {to_v}: starting {new_color} as standby")
        new = _start_instance(
            mgr, new_dep, new_labels, color=new_color,
            name=f"{container_name(name)}-{new_color}", standby=True,
        )  # fmt: skip
        try:
            ready = _wait_ready(mgr, cmdr, new_dep, new, prefix=new_prefix, mode="standby")
        except DeployError as exc:
            _discard(mgr, new_dep, new, new_color)
            mgr.record(what, name, from_v, to_v, "failed", strategy="blue-green",
                       reason=str(exc)[:2000])  # fmt: skip
            raise DeployError(f"{exc}\nThe standby was removed; {from_v} kept running.") from None
        mgr.progress(f"{name}: {new_color} standby ready after {ready:.1f} s; handing over")
        try:
            report = blue_green_handover(
                cmdr, old=old_prefix, new=new_prefix, probation_s=new_dep.blue_green.probation_s
            )
        except HandoverFailedError as exc:
            _handover_failed(mgr, new_dep, new, new_color, exc, what, (from_v, to_v))
    finally:
        cmdr.close()
    mgr.progress(f"{name}: {new_color} owns the outputs (epoch {report['epoch']}); removing "
                 f"{old_color}")  # fmt: skip
    old.stop(timeout=STOP_TIMEOUT_S)  # superseded: it publishes nothing any more
    old.remove()
    _discard(mgr, old_dep, old, old_color)  # its volume: a stale retain file
    new.rename(container_name(name))
    mgr.store.put(name, {"spec": new_dep.model_dump(mode="json"), "image": image,
                         "previous": old_dep.image, "color": new_color})  # fmt: skip
    gap = {
        "output_gap_cycles": report.get("plant_gap_cycles"),
        "output_gap_s": report.get("plant_gap_s"),
        "runtime_gap_cycles": report.get("runtime_gap_cycles"),
    }
    handover = _summary(report)
    mgr.record(what, name, from_v, to_v, "ok", strategy="blue-green", healthy_after_s=ready,
               handover=handover, **gap)  # fmt: skip
    return {
        "name": name, "from": from_v, "to": to_v, "strategy": "blue-green",
        "color": new_color, "healthy_after_s": ready, **gap, "handover": handover,
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
) -> NoReturn:
    from_v, to_v = versions
    logs = last_logs(new)
    _discard(mgr, dep, new, color)
    report = _summary(exc.report)
    outcome = str(report.get("outcome", "failed"))
    if outcome == "refused":
        # Nothing had changed yet (the old one was never released): a plain failure.
        mgr.record(what, dep.name, from_v, to_v, "failed", strategy="blue-green",
                   reason=str(exc)[:2000], handover=report)  # fmt: skip
        raise DeployError(f"{dep.name}: handover refused: {exc}; {from_v} kept running")
    mgr.record(what, dep.name, to_v, from_v, outcome, automatic=True, strategy="blue-green",
               reason=str(exc)[:2000], handover=report)  # fmt: skip
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
                mgr.client.volumes.get(_volume(dep, color)).remove()
