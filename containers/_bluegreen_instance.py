"""One instance ("color") of a blue-green deployment: its bridge config, container and volume.

Two instances of one deployment may run at once, so each gets its own container, state volume
(``<volume>-<color>``: they must never share the retain file) and MQTT ``node``
(``<node>-<color>``: its own command prefix). The bridge config is read from ``config_dir``
(mounted read-only on /etc/vplc) and rewritten per instance (node, relative paths: /etc/vplc for
inputs, the state volume for the audit file) into ``STATE_DIR/instances/<container>/mqtt.yaml``,
mounted read-only on /etc/vplc-instance. The deployer runs on the engine's host (bind mounts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import docker.errors
import yaml
from docker.models.containers import Container

from containers._bluegreen import MqttCommander
from containers._dockerfile import CONFIG_MOUNT, STATE_DIR
from containers._errors import DeployError, InvalidInputError
from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._ops import container_name, create_options, last_logs
from containers._spec import Deployment
from containers._watch import stall_limit_s, wait_healthy
from hal.mqtt import BrokerOptions, resolve_paths

__all__ = [
    "COLORS",
    "bridge_config",
    "color_volume",
    "commander",
    "deployer_broker",
    "discard",
    "instance_prefix",
    "other_color",
    "start_instance",
    "wait_ready",
]

# The connection keys of a bridge config (hal.mqtt.BrokerOptions) the deployer reuses.
_BROKER_KEYS = set(BrokerOptions.model_fields) - {"client_id"}
INSTANCE_MOUNT = "/etc/vplc-instance"
COLORS = ("blue", "green")


def other_color(color: str) -> str:
    return COLORS[1] if color == COLORS[0] else COLORS[0]


def color_volume(dep: Deployment, color: str) -> str:
    return f"{dep.volume}-{color}"


def bridge_config(dep: Deployment) -> dict[str, Any]:
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
    cfg = bridge_config(dep)
    return f"vplc/{cfg['site']}/{cfg['node']}-{color}/{app}"


def write_instance_config(mgr: DeploymentManager, dep: Deployment, color: str) -> Path:
    """The bridge config of one instance: own node, paths that exist inside the container."""
    cfg = bridge_config(dep)
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


def commander(dep: Deployment) -> MqttCommander:
    bg = dep.blue_green
    token = os.environ.get(bg.token_env)
    if not token:
        raise InvalidInputError(
            f"blue_green.token_env: {bg.token_env} is not set; the deployer needs the token of "
            f"user {bg.user!r} (role engineer) to send handover commands"
        )
    broker = deployer_broker(dep)
    try:
        return MqttCommander(broker, user=bg.user, token=token, plant=bg.plant or "vplc/no-plant")
    except OSError as exc:
        raise DeployError(f"cannot reach the MQTT broker at {broker.endpoint}: {exc}") from None


def deployer_broker(dep: Deployment) -> BrokerOptions:
    """The deployer's connection: the bridge config's (TLS, login, cleartext policy), with
    ``broker_host``/``broker_port`` as the deployer sees the broker; never its client id."""
    bg = dep.blue_green
    assert dep.config_dir is not None
    cfg = bridge_config(dep)
    data = {k: v for k, v in cfg.items() if k in _BROKER_KEYS}
    resolve_paths(data, dep.config_dir)
    if bg.broker_host:
        data["host"] = bg.broker_host
    if bg.broker_port:
        data["port"] = bg.broker_port
    try:
        return BrokerOptions.model_validate(data)
    except ValueError as exc:
        where = dep.config_dir / bg.mqtt_config
        raise InvalidInputError(f"{where}: the deployer cannot use its connection: {exc}") from None


def start_instance(
    mgr: DeploymentManager,
    dep: Deployment,
    labels: dict[str, str],
    *,
    color: str,
    name: str,
    standby: bool,
    image_id: str,
) -> Container:
    folder = write_instance_config(mgr, dep, color)
    inst = dep.model_copy(update={"state_volume": color_volume(dep, color)})
    mgr.ensure_volume(inst)
    env = dep.credentials.resolve(Path.cwd())
    options = create_options(inst, image_labels=labels, env=env, image_id=image_id)
    assert dep.config_dir is not None
    options["name"] = name
    options["labels"][LABEL + "color"] = color
    options["volumes"] |= {
        str(dep.config_dir): {"bind": CONFIG_MOUNT, "mode": "ro"},
        str(folder): {"bind": INSTANCE_MOUNT, "mode": "ro"},
    }
    options["command"] = [*options.get("command", []), "--mqtt", f"{INSTANCE_MOUNT}/mqtt.yaml"] + (
        ["--standby"] if standby else []
    )
    container = mgr.client.containers.create(**options)
    container.start()
    return container


def discard(mgr: DeploymentManager, dep: Deployment, container: Container, color: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        mgr.client.volumes.get(color_volume(dep, color)).remove(force=True)
    folder = mgr.audit.path.parent / "instances" / f"{container_name(dep.name)}-{color}"
    shutil.rmtree(folder, ignore_errors=True)


def wait_ready(
    mgr: DeploymentManager,
    cmdr: MqttCommander,
    dep: Deployment,
    container: Container,
    *,
    prefix: str,
    mode: str,
    labels: dict[str, str],
) -> float:
    """Healthy (heartbeat) and answering handover_status in ``mode``; seconds it took."""
    t0 = time.monotonic()
    health = wait_healthy(container, timeout_s=dep.health_timeout_s, stall_s=stall_limit_s(labels))
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
