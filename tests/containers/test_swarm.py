"""Swarm target: the bioreactor as a service on a one-node swarm; rolling update and rollback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from containers._errors import DeployError, InvalidInputError
from containers._spec import load_deployment
from containers._swarm_spec import service_spec
from tests.containers.conftest import _run, app_copy, fault_after

ROOT = Path(__file__).resolve().parents[2]
TAG = f"vplc-swarmtest-{uuid.uuid4().hex[:6]}"


def vplc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.host.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
        env=env,
    )


@pytest.fixture(scope="module")
def swarm(docker_engine: None) -> Iterator[None]:
    """A one-node swarm; left again at the end only if this fixture created it."""
    state = _run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.strip()
    created = state != "active"
    if created:
        proc = _run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
        assert proc.returncode == 0, proc.stderr
    yield
    if created:
        _run(["docker", "swarm", "leave", "--force"])


@pytest.fixture(scope="module")
def swarm_images(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """v1, v2 (1.0.1) and broken (validates, raises in its first cycle) bioreactor images.

    Their outputs go to a memory driver under unique channel names, so the output-claim checks
    never collide with bioreactor deployments other tests run on the same engine meanwhile.
    """
    from containers._image import build_image, build_wheels

    def rebind(manifest: dict[str, Any]) -> None:
        outs = [p for p in manifest["points"] if p["direction"] == "out"]
        for p in outs:
            p["driver"], p["channel"] = "swarmio", f"{TAG}_{p['channel']}"
        channels = {p["channel"]: "out" for p in outs}
        manifest["drivers"]["swarmio"] = {"type": "memory", "options": {"channels": channels}}

    work = tmp_path_factory.mktemp("swarm-apps")
    broken = {"loops.py": fault_after(0.0, "deliberately broken in its first cycle")}
    apps = {
        "v1": app_copy(work / "v1", version="1.0.0", edit=rebind),
        "v2": app_copy(work / "v2", version="1.0.1", edit=rebind),
        "broken": app_copy(work / "broken", version="1.0.2", edit=rebind, append=broken),
    }
    wheels = build_wheels(progress=lambda line: None)
    tags: dict[str, str] = {}
    try:
        for key, folder in apps.items():
            version = yaml.safe_load((folder / "app.yaml").read_text())["version"]
            tag = f"{TAG}-bioreactor:{version}"
            tags[key] = build_image(
                client, folder, tag=tag, wheelhouse=wheels, progress=lambda line: None
            ).tag
        yield tags
    finally:
        for tag in tags.values():
            _run(["docker", "rmi", "-f", tag])
        _run(["docker", "image", "prune", "-f", "--filter", "label=org.vplc.stage=install"])


@pytest.fixture
def swarm_files(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Deployment files for target: swarm; their services, secrets and volumes go afterwards."""
    names: list[str] = []

    def write(image: str, **fields: Any) -> Path:
        name = f"swarmtest-{uuid.uuid4().hex[:6]}"
        names.append(name)
        doc = {"name": name, "image": image, "target": "swarm", "health_timeout_s": 90, **fields}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    yield write
    for name in names:
        _run(["docker", "service", "rm", f"vplc-{name}"])
        for _ in range(60):  # the volume is in use until the task container is gone
            ps = _run(
                [
                    "docker",
                    "ps",
                    "-aq",
                    "--filter",
                    f"label=com.docker.swarm.service.name=vplc-{name}",
                ]
            )
            if not ps.stdout.strip():
                break
            time.sleep(0.5)
        secrets = _run(
            ["docker", "secret", "ls", "-q", "--filter", f"label=org.vplc.deployment={name}"]
        )
        for sid in secrets.stdout.split():
            _run(["docker", "secret", "rm", sid])
        _run(["docker", "volume", "rm", "-f", f"vplc-{name}-state"])


def test_swarm_refuses_what_services_cannot_do(tmp_path: Path) -> None:
    def load(**fields: Any) -> Any:
        path = tmp_path / "d.yaml"
        path.write_text(yaml.safe_dump({"name": "x", "image": "i:1", "target": "swarm", **fields}))
        return load_deployment(path)

    with pytest.raises(InvalidInputError, match=r"cannot be pinned to CPUs.*use target: container"):
        load(resources={"cpuset": "1"})
    with pytest.raises(InvalidInputError, match="start-first runs the old and the new PLC"):
        load(swarm={"update_order": "start-first"})
    assert load(swarm={"update_order": "start-first", "outputs_fenced": True})
    with pytest.raises(InvalidInputError, match="privileged"):
        load(privileged=True, allow_privileged=True)
    with pytest.raises(InvalidInputError, match="network_mode: none"):
        load(network_mode="none")
    assert load(target="container", resources={"cpuset": "1"}).resources.cpuset == "1"


def test_service_spec_is_hardened_and_updates_stop_first(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    doc = {"name": "x", "image": "i:1", "target": "swarm", "rtprio": 10, "restart": "no"}
    path.write_text(yaml.safe_dump({**doc, "resources": {"memory": "128m", "cpus": 0.5}}))
    secret = {"SecretID": "s", "SecretName": "n", "File": {"Name": "TOKEN"}}
    spec = service_spec(
        load_deployment(path),
        image_id="sha256:abc",
        labels={"org.vplc.version": "1.0.0", "other": "x"},
        entrypoint=["/opt/vplc/bin/vplc", "run"],
        secrets=[secret],
        hostname="plc-node-1",
    )
    task, container = spec["task_template"], spec["task_template"]["ContainerSpec"]
    assert container["Image"] == "sha256:abc"  # by ID: no registry lookup on any node
    assert container["ReadOnly"] and container["CapabilityDrop"] == ["ALL"]
    assert container["User"] == "10001:10001"
    assert container["Ulimits"] == [{"Name": "rtprio", "Soft": 10, "Hard": 10}]
    assert container["Command"][:2] == ["/bin/sh", "-c"] and container["Command"][-2:] == [
        "/opt/vplc/bin/vplc",
        "run",
    ]
    assert task["Resources"]["Limits"] == {
        "NanoCPUs": 500_000_000,
        "MemoryBytes": 128 << 20,
        "Pids": 256,
    }
    assert task["Placement"]["Constraints"] == ["node.hostname == plc-node-1"]
    assert task["RestartPolicy"]["Condition"] == "none"
    assert spec["update_config"]["Order"] == "stop-first"
    assert spec["update_config"]["Parallelism"] == 1
    assert spec["update_config"]["FailureAction"] == "rollback"
    assert spec["rollback_config"]["Order"] == "stop-first"
    assert spec["mode"] == {"Replicated": {"Replicas": 1}}
    assert "other" not in spec["labels"] and spec["labels"]["org.vplc.deployment"] == "x"


def test_deploy_update_rollback_remove_on_swarm(
    swarm: None,
    swarm_images: dict[str, str],
    swarm_files: Callable[..., Path],
    state_dir: Path,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from containers._manager import DeploymentManager
    from containers._swarm import rollback, update

    env = {**dict(__import__("os").environ), "VPLC_SWARMTEST_TOKEN": "s3cret-value"}
    path = swarm_files(
        swarm_images["v1"],
        resources={"memory": "192m", "cpus": 0.5},
        credentials={"from_env": ["VPLC_SWARMTEST_TOKEN"]},
        swarm={"monitor_s": 4},
    )
    name = path.stem
    common = ("--state-dir", str(state_dir), "--user", "alice")
    proc = vplc("deploy", str(path), *common, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["service"] == f"vplc-{name}"

    svc = client.services.get(f"vplc-{name}")
    spec_text = json.dumps(svc.attrs["Spec"])
    assert "s3cret-value" not in spec_text  # a Swarm secret, not an environment entry
    (task,) = [t for t in svc.tasks() if t["DesiredState"] == "running"]
    c = client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    assert c.attrs["State"]["Health"]["Status"] == "healthy"
    assert b"VPLC_SWARMTEST_TOKEN=s3cret-value" in c.exec_run(["cat", "/proc/1/environ"]).output
    host = c.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and host["PidsLimit"] == 256
    assert host["Memory"] == 192 << 20 and host["NanoCpus"] == 500_000_000

    rows = {r["deployment"]: r for r in json.loads(vplc("status", "--json", *common).stdout)}
    row = rows[name]
    assert (row["target"], row["version"], row["replicas"], row["health"]) == (
        "swarm",
        "1.0.0",
        "1/1",
        "healthy",
    )
    assert row["scan"]["state"] == "RUN"

    # A stand-alone container for the same outputs is refused: the service drives them.
    clash = path.with_name("clash.yaml")
    clash.write_text(yaml.safe_dump({"name": f"{name}-c", "image": swarm_images["v2"]}))
    proc = vplc("deploy", str(clash), *common)
    assert proc.returncode == 2 and "already driven by Swarm service" in proc.stderr

    mgr = DeploymentManager(client, state_dir=state_dir, user="bob", progress=lambda x: None)
    monkeypatch.setenv("VPLC_SWARMTEST_TOKEN", "s3cret-value")
    v1_id, v2_id = (client.images.get(swarm_images[k]).id for k in ("v1", "v2"))

    result = update(mgr, name, swarm_images["v2"])
    assert (result["from"], result["to"]) == ("1.0.0", "1.0.1")
    svc.reload()
    assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == v2_id
    assert svc.attrs["UpdateStatus"]["State"] == "completed"

    back = rollback(mgr, name)
    assert (back["from"], back["to"]) == ("1.0.1", "1.0.0")
    svc.reload()
    assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == v1_id

    with pytest.raises(DeployError, match=r"Rolled back automatically to 1\.0\.0") as err:
        update(mgr, name, swarm_images["broken"])
    assert "deliberately broken in its first cycle" in str(err.value)
    svc.reload()
    assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == v1_id
    assert svc.attrs["UpdateStatus"]["State"] == "rollback_completed"
    with pytest.raises(InvalidInputError, match="an automatic rollback uses it up"):
        rollback(mgr, name)

    proc = vplc("remove", name, "--purge", *common)
    assert proc.returncode == 0, proc.stderr
    assert not client.services.list(filters={"name": f"vplc-{name}"})
    assert not client.secrets.list(filters={"label": f"org.vplc.deployment={name}"})
    whats = [(r["what"], r["who"], r["outcome"], r.get("target")) for r in mgr.audit.records()]
    assert whats == [
        ("deploy", "alice", "ok", "swarm"),
        ("update", "bob", "ok", "swarm"),
        ("rollback", "bob", "ok", "swarm"),
        ("update", "bob", "rolled-back", "swarm"),
        ("rollback", "bob", "refused", "swarm"),  # refusals are recorded too
        ("remove", "alice", "ok", "swarm"),
    ]
    ids = [(r["from_image_id"], r["to_image_id"]) for r in mgr.audit.records()]
    broken_id = client.images.get(swarm_images["broken"]).id
    assert ids[:4] == [(None, v1_id), (v1_id, v2_id), (v2_id, v1_id), (broken_id, v1_id)]
    assert mgr.audit.verify()
