"""Probation: a container that faults after its first healthy check is rolled back, by restart.

The "late" image (conftest) validates, starts and turns healthy, then its program raises once
app time reaches LATE_FAULT_S: the runtime goes to FAULT (outputs safe) and stays up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from containers._errors import DeployError
from containers._ops import container_name, create_options
from containers._rollout import update
from containers._spec import load_deployment
from containers._watch import MIN_PROBATION_S, _epoch_s, _this_run, probation_window_s

from .conftest import LATE_FAULT_S, ROOT

Deployments = Callable[..., Path]


def test_default_window_is_the_longer_of_10_s_and_20_slowest_cycles() -> None:
    periods = lambda **p: {"org.vplc.task-periods-ms": json.dumps(p)}  # noqa: E731
    assert probation_window_s(None, periods(control=200, sequence=1000)) == 20.0
    assert probation_window_s(None, periods(fast=10, slow=100)) == MIN_PROBATION_S
    assert probation_window_s(4.5, periods(control=200, sequence=1000)) == 4.5
    # An image built before the label: the fastest period is all there is.
    assert probation_window_s(None, {"org.vplc.fastest-period-ms": "200.0"}) == MIN_PROBATION_S


def test_only_this_runs_heartbeat_counts() -> None:
    """A stopped record left on the volume (by the previous version, or by this container
    before its restart) must not fail a start, nor pass for a running scan."""
    started = "2026-12-06T02:41:59.547492123Z"
    t = _epoch_s(started)
    assert t is not None and abs(t - 1796524919.547492) < 1e-3

    class Fake:
        attrs = {"Config": {"Hostname": "abc123"}, "State": {"StartedAt": started}}

    c: Any = Fake()
    assert _this_run(c, {"host": "abc123", "written_at": t + 1.0})
    assert not _this_run(c, {"host": "abc123", "written_at": t - 5.0, "stopped": True})
    assert not _this_run(c, {"host": "f00ba5", "written_at": t + 1.0})


def test_a_late_fault_is_rolled_back_within_probation(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    # probation_s: null → the default window: 20 cycles of the 1 s sequence task = 20 s.
    path = deployments(images["v1"], probation_s=None)
    name = path.stem
    deployed = manager.deploy(path)
    assert deployed["probation_s"] >= 20.0
    before = client.containers.get(container_name(name))
    v1, late = (client.images.get(images[k]).id for k in ("v1", "late"))

    t0 = time.monotonic()
    with pytest.raises(DeployError) as err:
        update(manager, name, images["late"])
    took = time.monotonic() - t0
    text = str(err.value)
    assert "failed its probation: the runtime is in FAULT: program 'loops' raised" in text
    assert "deliberately late fault" in text
    assert "Rolled back automatically to 1.0.0" in text
    into = float(re.search(r"\((\d+\.\d) s into probation\)", text).group(1))  # type: ignore[union-attr]
    assert into < 20.0 and took < 60, (into, took)

    # The rollback restarted the very container that ran before (kept stopped, not removed).
    after = client.containers.get(container_name(name))
    assert after.id == before.id and after.attrs["Image"] == v1
    assert after.status == "running" and after.attrs["State"]["Health"]["Status"] == "healthy"
    assert not client.containers.list(all=True, filters={"name": f"{container_name(name)}-prev"})
    failed, rolled = manager.audit.records()[-2:]
    assert (failed["outcome"], failed["to_image_id"]) == ("failed", late)
    assert "probation" in failed["reason"]
    assert (rolled["outcome"], rolled["automatic"]) == ("rolled-back", True)
    assert (rolled["from_image_id"], rolled["to_image_id"]) == (late, v1)
    assert rolled["rollback_healthy_after_s"] > 0
    assert manager.store.get(name)["image_id"] == v1


def test_a_faulted_runtime_is_unhealthy_and_status_shows_the_fault(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any, state_dir: Path
) -> None:
    """Started without the manager's watch: Docker's health check and `vplc status` see FAULT."""
    dep = load_deployment(deployments(images["late"]))
    labels = manager.image_labels(dep.image)
    opts = create_options(dep, image_labels=labels, env={}, image_id=manager.image_id(dep.image))
    c = client.containers.create(**opts)
    env = c.attrs["Config"]["Env"]  # what a batch record's header names as the image
    assert f"VPLC_IMAGE_DIGEST={dep.image}@{manager.image_id(dep.image)}" in env, env
    c.start()
    seen: list[str] = []
    deadline = time.monotonic() + LATE_FAULT_S + 40
    while time.monotonic() < deadline:
        c.reload()
        status = (c.attrs["State"].get("Health") or {}).get("Status", "")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "unhealthy":
            break
        time.sleep(0.5)
    assert "healthy" in seen and seen[-1] == "unhealthy", seen  # healthy first, then not
    probe = c.attrs["State"]["Health"]["Log"][-1]["Output"]
    assert "engine state FAULT: program 'loops' raised RuntimeError: deliberately late fault" in (
        probe
    )
    assert c.status == "running"  # the runtime stays up in FAULT, outputs safe

    proc = subprocess.run(
        [sys.executable, "-m", "runtime.host.cli", "status", "--json",
         "--state-dir", str(state_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    row = next(r for r in json.loads(proc.stdout) if r["deployment"] == dep.name)
    assert (row["engine"], row["health"]) == ("FAULT", "unhealthy")
    assert "deliberately late fault" in row["fault_reason"]
    table = subprocess.run(
        [sys.executable, "-m", "runtime.host.cli", "status", "--state-dir", str(state_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    ).stdout  # fmt: skip
    line = next(x for x in table.splitlines() if x.startswith(dep.name))
    assert "FAULT" in line and "— FAULT: program 'loops' raised RuntimeError" in line
