"""Updates on the real engine: stop-and-restart keeps the state volume; rollbacks, automatic too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from containers._errors import DeployError, InvalidInputError
from containers._ops import container_name
from containers._rollout import rollback, update

Deployments = Callable[..., Path]


def test_update_keeps_the_volume_and_rollback_returns(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["v1"])
    name = path.stem
    manager.deploy(path)
    with pytest.raises(InvalidInputError, match="no previous version"):
        rollback(manager, name)
    c = client.containers.get(container_name(name))
    assert c.exec_run(["sh", "-c", "echo from-1.0.0 > /var/lib/vplc/marker"]).exit_code == 0

    result = update(manager, name, images["v2"])
    assert (result["from"], result["to"]) == ("1.0.0", "1.0.1")
    assert 0 < result["output_gap_s"] < 15
    assert result["output_gap_cycles"] == pytest.approx(result["output_gap_s"] / 0.2, abs=0.2)
    c = client.containers.get(container_name(name))
    assert c.labels["org.vplc.version"] == "1.0.1"
    assert c.exec_run(["cat", "/var/lib/vplc/marker"]).output.decode().strip() == "from-1.0.0"
    assert "default: 36.5" in c.exec_run(["cat", "/app/app.yaml"]).output.decode()
    # The retain file on the volume (VPLC_STATE_DIR) was loaded: a warm start of 1.0.1 with the
    # values 1.0.0 checkpointed (retain checkpoints while running and once more on SIGTERM).
    loaded = [
        json.loads(line) for line in c.logs().decode().splitlines() if '"retain_loaded"' in line
    ]
    assert loaded and loaded[0]["started"] == "warm", loaded
    assert loaded[0]["saved_version"] == "1.0.0"
    assert not client.containers.list(all=True, filters={"name": container_name(name) + "-prev"})

    back = rollback(manager, name)
    assert (back["from"], back["to"]) == ("1.0.1", "1.0.0")
    c = client.containers.get(container_name(name))
    assert c.labels["org.vplc.version"] == "1.0.0"
    assert c.exec_run(["cat", "/var/lib/vplc/marker"]).output.decode().strip() == "from-1.0.0"
    v1, v2 = (client.images.get(images[k]).id for k in ("v1", "v2"))
    assert c.attrs["Image"] == v1  # the exact image of the history, by ID
    trail = [
        (r["what"], r["outcome"], r["from_version"], r["to_version"], r["from_image_id"],
         r["to_image_id"])
        for r in manager.audit.records()
    ]  # fmt: skip
    assert trail == [
        ("deploy", "ok", None, "1.0.0", None, v1),
        ("rollback", "refused", None, None, None, None),  # refusals are recorded too
        ("update", "ok", "1.0.0", "1.0.1", v1, v2),
        ("rollback", "ok", "1.0.1", "1.0.0", v2, v1),
    ]
    assert manager.audit.verify()


def test_broken_update_rolls_back_by_itself(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["v1"])
    name = path.stem
    manager.deploy(path)
    with pytest.raises(DeployError) as err:
        update(manager, name, images["broken"], deadline_s=30)
    text = str(err.value)
    assert "did not become healthy" in text
    assert "deliberately broken in its first cycle" in text
    assert "Rolled back automatically to 1.0.0" in text
    c = client.containers.get(container_name(name))
    assert c.labels["org.vplc.version"] == "1.0.0"
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Health"]["Status"] == "healthy"
    last = manager.audit.records()[-1]
    assert (last["what"], last["outcome"], last["automatic"]) == ("update", "rolled-back", True)
    assert manager.store.get(name)["image"] == images["v1"]


def test_update_refuses_another_app(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any
) -> None:
    path = deployments(images["v1"])
    manager.deploy(path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        update(manager, path.stem, "vplc-nope:1.0.0")
    with pytest.raises(InvalidInputError, match="no deployment named"):
        update(manager, "ghost", images["v2"])
