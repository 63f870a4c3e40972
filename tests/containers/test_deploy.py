"""Deployments on the real Docker engine: deploy, status, logs, hardening, restart, remove."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from containers._errors import DeployError, InvalidInputError
from containers._ops import container_name
from containers._record import AuditTrail
from containers._watch import wait_healthy
from tests.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
Deployments = Callable[..., Path]


def vplc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.host.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        env=env,
    )


def test_cli_deploy_status_logs_remove(
    images: dict[str, str], deployments: Deployments, state_dir: Path, client: Any
) -> None:
    path = deployments(images["v1"], resources={"memory": "192m", "cpus": 0.5, "cpuset": "0"})
    name = path.stem
    proc = vplc("deploy", str(path), "--state-dir", str(state_dir), "--user", "alice")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["healthy_after_s"] > 0
    assert "healthy after" in proc.stderr

    status = vplc("status", "--json", "--state-dir", str(state_dir))
    rows = {r["deployment"]: r for r in json.loads(status.stdout)}
    row = rows[name]
    assert (row["version"], row["state"], row["health"]) == ("1.0.0", "running", "healthy")
    assert row["scan"]["tasks"]["control"]["cycles"] > 0
    assert row["scan"]["state"] == "RUN"
    assert name in vplc("status", "--state-dir", str(state_dir)).stdout

    logs = vplc("logs", name, "--tail", "20", "--state-dir", str(state_dir))
    events = [json.loads(line) for line in logs.stdout.splitlines()]
    assert any(e.get("event") == "lifecycle" and e.get("new") == "RUN" for e in events)

    proc = vplc("remove", name, "--purge", "--state-dir", str(state_dir), "--user", "alice")
    assert proc.returncode == 0, proc.stderr
    assert not client.containers.list(all=True, filters={"name": container_name(name)})
    trail = AuditTrail(state_dir)
    assert [(r["what"], r["who"], r["outcome"]) for r in trail.records()] == [
        ("deploy", "alice", "ok"),
        ("remove", "alice", "ok"),
    ]
    assert trail.verify()


def test_container_is_hardened(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["v1"], resources={"memory": "128m", "cpus": 1.0, "cpuset": "1"})
    manager.deploy(path)
    c = client.containers.get(container_name(path.stem))
    host = c.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["SYS_NICE"]
    assert host["ReadonlyRootfs"] is True
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Privileged"] is False
    assert host["Memory"] == host["MemorySwap"] == 128 * 1024**2
    assert host["NanoCpus"] == 1_000_000_000 and host["CpusetCpus"] == "1"
    assert host["NetworkMode"] == "bridge"
    assert c.attrs["Config"]["User"] == "10001:10001"
    whoami = c.exec_run(["id", "-u"])
    assert whoami.output.decode().strip() == "10001"
    assert c.exec_run(["touch", "/opt/vplc/x"]).exit_code != 0  # read-only root
    assert c.exec_run(["touch", "/var/lib/vplc/x"]).exit_code == 0  # the state volume


def test_kill_9_is_undone_by_the_restart_policy(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["v1"])
    manager.deploy(path)
    c = client.containers.get(container_name(path.stem))
    # A crash, as the OOM killer or a segfault would do it. (`docker kill` counts as an operator
    # stop on Docker 20.10, which the restart policy deliberately leaves alone.)
    os.kill(c.attrs["State"]["Pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        c.reload()
        if c.attrs["RestartCount"] >= 1 and c.status == "running":
            break
        time.sleep(0.2)
    assert c.attrs["RestartCount"] >= 1
    # wait_healthy fails on restarts during a deploy; here we just want healthy again.
    deadline = time.monotonic() + 30
    while c.attrs["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, c.attrs["State"]
        time.sleep(0.5)
        c.reload()
    assert manager.status()[0]["scan"]["state"] == "RUN"
    # The manager saw the restart (RestartCount grew) and recorded it, once.
    restarts = [r for r in manager.audit.records() if r["what"] == "restart"]
    assert len(restarts) == 1, restarts
    seen = restarts[0]
    assert (seen["outcome"], seen["deployment"], seen["image_id"]) == (
        "observed", path.stem, c.attrs["Image"],
    )  # fmt: skip
    assert seen["restarts"] == seen["restart_count"] == c.attrs["RestartCount"]
    manager.status()
    assert len([r for r in manager.audit.records() if r["what"] == "restart"]) == 1
    assert manager.audit.verify()


def _append_ops(state_dir: str, who: str, n: int) -> None:
    trail = AuditTrail(Path(state_dir))
    for i in range(n):
        trail.append(who=who, what="deploy", deployment=f"d{i}", outcome="ok")


def test_the_trail_is_signed_continues_old_files_and_takes_concurrent_writers(
    tmp_path: Path,
) -> None:
    """No engine needed: what two `vplc deploy` at once do to the trail, and an old file."""
    state = tmp_path / "state"
    state.mkdir()
    old = {"when": "2024-05-01T10:00:00Z", "who": "bob", "what": "deploy", "outcome": "ok"}
    line = json.dumps(old | {"prev_sha256": ""}, sort_keys=True)
    (state / "audit.jsonl").write_text(line + "\n")  # the manager's earlier, unkeyed format
    trail = AuditTrail(state)
    assert "legacy, unkeyed: 1 record(s)" in trail.verification().error
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_ops, args=(str(state), w, 25)) for w in ("ann", "ed")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    result = trail.verification()
    assert result.ok and result.legacy == 1 and result.records == 1 + 1 + 50, result
    assert [r["who"] for r in trail.records()].count("ann") == 25
    assert trail.records()[0]["who"] == "bob"  # the old record is still one of them
    assert (state / "keys" / "audit-ed25519.pem").stat().st_mode & 0o777 == 0o600
    lines = (state / "audit.jsonl").read_text().splitlines()
    (state / "audit.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # the last one deleted
    assert not trail.verify()


def test_bad_deployments_are_refused(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    ncpu = int(client.info()["NCPU"])
    with pytest.raises(InvalidInputError, match=r"resources.cpuset: CPU\(s\) \[.*\] do not exist"):
        manager.deploy(deployments(images["v1"], resources={"cpuset": f"0-{ncpu + 2}"}))
    with pytest.raises(InvalidInputError, match="does not exist in this Docker engine"):
        manager.deploy(deployments("vplc-nope:9.9.9"))
    with pytest.raises(InvalidInputError, match="deployment is for node 'elsewhere'"):
        manager.deploy(deployments(images["v1"], node="elsewhere"))
    first = deployments(images["v1"])
    manager.deploy(first)
    with pytest.raises(InvalidInputError, match="claims outputs already driven by deployment"):
        manager.deploy(deployments(images["v2"]))
    with pytest.raises(InvalidInputError, match="exists already"):
        manager.deploy(first)
    # Every refusal is in the audit trail: who, what, which file, why.
    refused = [r for r in manager.audit.records() if r["outcome"] == "refused"]
    assert [r["what"] for r in refused] == ["deploy"] * 5
    assert "resources.cpuset" in refused[0]["reason"] and refused[0]["file"].endswith(".yaml")
    assert "claims outputs already driven" in refused[3]["reason"]
    assert refused[4]["deployment"] == first.stem and refused[4]["to_image_id"].startswith(
        "sha256:"
    )
    assert manager.audit.verify()


def test_a_crashing_image_is_removed_and_reported(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["broken"])
    with pytest.raises(DeployError) as err:
        manager.deploy(path)
    assert "did not become healthy" in str(err.value)
    assert "deliberately broken in its first cycle" in str(err.value)  # the last log lines
    assert not client.containers.list(all=True, filters={"name": container_name(path.stem)})
    assert manager.audit.records()[-1]["outcome"] == "failed"


def test_engine_not_running_is_a_clear_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    proc = vplc("status", "--state-dir", str(tmp_path), env=env)
    assert proc.returncode == 2
    assert "cannot reach the Docker engine" in proc.stderr
    assert "systemctl start docker" in proc.stderr and "dockerd" in proc.stderr


def test_wait_healthy_reports_a_timeout(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["v1"])
    manager.deploy(path)
    health = wait_healthy(client.containers.get(container_name(path.stem)), timeout_s=0.01)
    assert health.ok  # already healthy: no wait at all


def test_a_deployment_serves_the_web_hmi_on_a_published_port(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any, tmp_path: Path
) -> None:
    """serve: + ports: the runtime in the container starts the front-end from config_dir."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "web.yaml").write_text("host: 0.0.0.0\nport: 8080\n")  # no access file: no logins
    host_port = free_port()
    path = deployments(
        images["v1"], config_dir=str(etc), serve={"web": "web.yaml"}, ports={8080: host_port}
    )
    manager.deploy(path)
    c = client.containers.get(container_name(path.stem))
    assert c.attrs["Config"]["Cmd"] == ["--web-config", "/etc/vplc/web.yaml"]
    deadline = time.monotonic() + 60
    while True:  # the HMI process comes up beside the healthy scan
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=2) as r:
                assert r.status == 200 and b"<form" in r.read()  # the login
                break
        except OSError:
            assert time.monotonic() < deadline, c.logs(tail=30).decode()
            time.sleep(0.5)
    with pytest.raises(urllib.error.HTTPError) as refused:  # served, and locked
        urllib.request.urlopen(f"http://127.0.0.1:{host_port}/api/session", timeout=2)
    assert refused.value.code == 401
