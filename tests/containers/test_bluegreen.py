"""`vplc update` with `strategy: blue-green` against the real engine: two app containers, the plant
in its own container (`vplc sim serve` in the vplc-sim image) and a private Mosquitto on the
host's docker bridge address (fixtures: tests/containers/_bg.py).

"1.0.1" is the same app version rebuilt under another tag: the snapshot crosses unchanged.
1.0.0 → 1.1.0 (changed gain, added parameter, removed variable) needs the cross-version state
merge (issue 12 item 1): that test is an expected failure until it lands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from containers._bluegreen import MqttCommander
from containers._errors import DeployError
from hal.mqtt import BrokerOptions
from tests.containers._bg import (
    ADDED_PARAMETER,
    NAME,
    PLANT,
    TOKEN,
    bg_deployment,
    bg_images,
    net,
    plant,
)

__all__ = ["bg_deployment", "bg_images", "net", "plant"]  # fixtures used here

# Blue-green's goal is ≤ 1 cycle (tests/bench); a recreate takes 5–8. A claim that misses one
# release on a loaded machine must not fail the suite, a restart-sized gap must.
GAP_BOUND = 3.0


def _exists(client: Any, name: str) -> bool:
    import docker.errors

    try:
        client.containers.get(name)
        return True
    except docker.errors.NotFound:
        return False


def test_blue_green_update_and_rollback(
    client: Any,
    plant: dict[str, Any],
    bg_images: dict[str, str],
    bg_deployment: Path,
    manager: Any,
) -> None:
    from containers import _bluegreen_deploy
    from containers._rollout import update

    doc = yaml.safe_load(bg_deployment.read_text())
    bg_deployment.write_text(yaml.safe_dump(doc | {"image": bg_images["v1"]}))
    deployed = _bluegreen_deploy.deploy(manager, bg_deployment)
    assert deployed["color"] == "blue"
    v1, v101 = (client.images.get(bg_images[k]).id for k in ("v1", "v101"))
    assert deployed["image_id"] == v1
    cmdr = MqttCommander(
        BrokerOptions(host=plant["host"], port=plant["port"], allow_insecure=True),
        user="erik",
        token=TOKEN,
        plant=PLANT,
    )
    try:
        time.sleep(3.0)  # blue drives the plant: PIDs integrate, the batch phase moves on
        result = update(manager, NAME, bg_images["v101"])
        print("blue-green update:", json.dumps(result))
        hand = result["handover"]
        assert hand["outcome"] == "ok", result
        assert (hand["from_epoch"], hand["epoch"]) == (1, 2)
        assert result["output_gap_cycles"] is not None, result
        # Back to back: the plant's first write of epoch 2 one period after the last of epoch 1
        # (1.0 measured; < 1.5 tolerates the plant's step jitter, a missed scan would be ≥ 2).
        # The goal (≤ 1 cycle) is measured by the benchmark; here: a handover, not a restart
        # (a recreate gaps 5–8 cycles), with room for a loaded machine's late claim.
        assert result["output_gap_cycles"] < GAP_BOUND, result
        assert hand["skipped_releases"] == 0, result
        assert [e for e, _ in hand["epoch_runs"]] == [1, 2], "two writers interleaved"
        assert hand["old_mode"] == "superseded"
        # The old container and its volume are gone; the green one carries the name.
        assert not _exists(client, f"vplc-{NAME}-blue")
        active = client.containers.get(f"vplc-{NAME}")
        assert active.labels["org.vplc.color"] == "green"
        assert active.labels["org.vplc.image"] == bg_images["v101"]
        assert not [v for v in client.volumes.list() if v.name == f"vplc-{NAME}-state-blue"]
        # State crossed exactly: green's programs after the restore equal blue's snapshot.
        out = active.exec_run(["cat", "/var/lib/vplc/mqtt-audit.jsonl"], user="10001").output
        audit = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        claim = next(r for r in audit if r.get("cmd") == "handover_claim")
        assert claim["status"] == "accepted"
        assert claim["new"]["programs_sha256"] == claim["new"]["snapshot_programs_sha256"]
        green = "vplc/s1/line1-green/bioreactor"
        st = cmdr.command(green, "handover_status")["new"]
        assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == 2
        stats = cmdr.stats_after(time.monotonic())
        assert stats is not None and stats["writes"]["refused_stale_epoch"] == 0
        assert stats["owner_epoch"] == 2 and stats["actuators"]["agitator"] > 0
        rec = manager.audit.records()[-1]
        assert rec["outcome"] == "ok" and rec["strategy"] == "blue-green"
        assert rec["handover"]["epoch"] == 2 and rec["output_gap_cycles"] is not None
        assert (rec["from_image_id"], rec["to_image_id"]) == (v1, v101)
        assert active.attrs["Image"] == v101

        # A broken new build (raises in its third cycle after the claim): green takes over again.
        with pytest.raises(DeployError, match="Rolled back automatically"):
            update(manager, NAME, bg_images["broken"])
        assert not _exists(client, f"vplc-{NAME}-blue")
        rec = manager.audit.records()[-1]
        assert rec["outcome"] == "rolled-back" and rec["automatic"] is True, rec
        assert "probation" in rec["reason"]
        resumed = rec["handover"]["resume"]["epoch"]
        st = cmdr.command(green, "handover_status")["new"]
        assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == resumed
        time.sleep(0.5)
        stats = cmdr.stats_after(time.monotonic())
        assert stats is not None and stats["owner_epoch"] == resumed
        assert stats["actuators"]["agitator"] > 0  # the broken one's safe values never landed
        assert manager.store.get(NAME)["image"] == bg_images["v101"]
        assert [e["image_id"] for e in manager.store.get(NAME)["history"]] == [v101, v1]
        assert manager.audit.verify()
    finally:
        cmdr.close()
    _bluegreen_deploy.remove(manager, NAME, purge=True)
    assert not _exists(client, f"vplc-{NAME}")
    assert not [v for v in client.volumes.list() if v.name.startswith(f"vplc-{NAME}-state")]


def test_blue_green_needs_a_config_dir(tmp_path: Path) -> None:
    from containers._errors import InvalidInputError
    from containers._spec import load_deployment

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "image": "i", "strategy": "blue-green"}))
    with pytest.raises(InvalidInputError, match="config_dir"):
        load_deployment(path)
    path.write_text(yaml.safe_dump({"name": "x", "image": "i"}))
    assert load_deployment(path).strategy.value == "recreate"


def _prefix(color: str) -> str:
    return f"vplc/s1/line1-{color}/bioreactor"


def test_blue_green_across_versions_and_back(
    client: Any,
    plant: dict[str, Any],
    bg_images: dict[str, str],
    bg_deployment: Path,
    manager: Any,
) -> None:
    """1.0.0 → 1.1.0 (TIC101 gain 20 → 25, an added parameter, alarms.ph_rate removed) and back,
    each through the standby's state merge, with the plant in its own container."""
    from containers import _bluegreen_deploy
    from containers._rollout import rollback, update

    doc = yaml.safe_load(bg_deployment.read_text())
    bg_deployment.write_text(yaml.safe_dump(doc | {"image": bg_images["v1"]}))
    _bluegreen_deploy.deploy(manager, bg_deployment)
    v1, v110 = (client.images.get(bg_images[k]).id for k in ("v1", "v110"))
    cmdr = MqttCommander(
        BrokerOptions(host=plant["host"], port=plant["port"], allow_insecure=True),
        user="erik",
        token=TOKEN,
        plant=PLANT,
    )
    try:
        time.sleep(3.0)  # blue drives the plant: the running state moves away from the initials
        result = update(manager, NAME, bg_images["v110"])
        print("blue-green 1.0.0 → 1.1.0:", json.dumps(result))
        hand = result["handover"]
        assert hand["outcome"] == "ok" and (hand["from_epoch"], hand["epoch"]) == (1, 2)
        assert result["output_gap_cycles"] is not None and result["output_gap_cycles"] < GAP_BOUND
        assert [e for e, _ in hand["epoch_runs"]] == [1, 2], "two writers interleaved"
        active = client.containers.get(f"vplc-{NAME}")
        assert active.labels["org.vplc.version"] == "1.1.0" and active.attrs["Image"] == v110
        # The standby's merge plan is in the audit record: the changed gain, the dropped
        # variable and the added parameter, each by path.
        rec = manager.audit.records()[-1]
        assert rec["outcome"] == "ok" and rec["plan"] == result["plan"]
        assert (rec["from_version"], rec["to_version"]) == ("1.0.0", "1.1.0")
        assert (rec["from_image_id"], rec["to_image_id"]) == (v1, v110)
        planned = json.dumps(rec["plan"])
        for path in ("loops.tic101.KC", "alarms.ph_rate", ADDED_PARAMETER):
            assert path in planned, (path, rec["plan"])
        green = cmdr.command(_prefix("green"), "set_parameter", name=ADDED_PARAMETER, value=75.0)
        assert green["status"] == "accepted", green  # the new parameter exists in 1.1.0

        back = rollback(manager, NAME)
        print("blue-green rollback 1.1.0 → 1.0.0:", json.dumps(back))
        assert back["handover"]["outcome"] == "ok" and back["handover"]["epoch"] == 3
        assert back["output_gap_cycles"] is not None and back["output_gap_cycles"] < GAP_BOUND
        assert (back["from"], back["to"]) == ("1.1.0", "1.0.0")
        active = client.containers.get(f"vplc-{NAME}")
        assert active.labels["org.vplc.version"] == "1.0.0" and active.attrs["Image"] == v1
        blue = cmdr.command(_prefix("blue"), "set_parameter", name=ADDED_PARAMETER, value=75.0)
        assert blue["status"] == "refused" and "unknown parameter" in blue["reason"], blue
        assert "plan" in manager.audit.records()[-1]
        stats = cmdr.stats_after(time.monotonic())
        assert stats is not None and stats["owner_epoch"] == 3
        assert stats["writes"]["refused_stale_epoch"] == 0
        hist = manager.store.get(NAME)["history"]
        assert [(e["version"], e["image_id"]) for e in hist] == [("1.0.0", v1), ("1.1.0", v110)]
        assert manager.audit.verify()
    finally:
        cmdr.close()
    _bluegreen_deploy.remove(manager, NAME, purge=True)
