"""Blue-green handover between two `vplc run` processes over MQTT, with the plant in `sim serve`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from containers._bluegreen import HandoverFailedError, MqttCommander, blue_green_handover
from hal.mqtt import BrokerOptions
from runtime.ops._access import hash_token
from runtime.ops._audit import verify_audit_log
from tests.hil.conftest import VPLC, ServeFactory, mqtt_app, wait_until
from tests.mqtt.broker import Broker

TOKEN = "eng-secret"
FAULTY = """
_execute = Loops.execute
_calls = [0]


def _faulty(self, ctx):  # the new build breaks in its third cycle
    _calls[0] += 1
    if _calls[0] >= 3:
        raise RuntimeError("injected fault in the new build")
    _execute(self, ctx)


Loops.execute = _faulty
"""


def build_app(
    tmp: Path, port: int, plant: str, name: str, *, epoch: int = 1, faulty: bool = False
) -> Path:
    """The bioreactor on the mqtt driver, claiming ``epoch`` at start (also used by a bench)."""
    src = mqtt_app(tmp / name, port=port, prefix=plant, params={})
    manifest = yaml.safe_load((src / "app.yaml").read_text())
    manifest["drivers"]["plant"]["options"] |= {"owner_epoch": epoch, "publish_ms": 5}
    (src / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    if faulty:
        with (src / "loops.py").open("a") as f:
            f.write(FAULTY)
    return src


def _mqtt_config(tmp_path: Path, port: int, node: str) -> Path:
    access = {"users": {"erik": {"role": "engineer", "token_sha256": hash_token(TOKEN)}}}
    (tmp_path / f"access-{node}.yaml").write_text(yaml.safe_dump(access))
    cfg = {
        "port": port, "site": "s1", "node": node, "access_file": f"access-{node}.yaml",
        "audit_file": f"audit-{node}.jsonl", "stats_s": 1.0, "max_command_bytes": 512 * 1024,
        "allow_insecure": True,  # tokens over the plain test broker
    }  # fmt: skip
    path = tmp_path / f"mqtt-{node}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Instance:
    def __init__(self, tmp_path: Path, port: int, node: str, app: Path, *extra: str) -> None:
        self.prefix = f"vplc/s1/{node}/bioreactor"
        self.log = tmp_path / f"{node}.log"
        cmd = [
            VPLC, "--log-format", "json", "run", str(app), "--no-view", "--cold",
            "--mqtt", str(_mqtt_config(tmp_path, port, node)),
            "--retain-file", str(tmp_path / f"{node}.retain"), *extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        return self.proc.returncode


@pytest.fixture
def bench(
    broker: Broker, serve: ServeFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    # The broker outlives a test, and so does its retained owner claim: one plant per test.
    plant = f"vplc/sim/{request.node.name[5:40]}"
    serve(plant, "--stats-s", "0.2")
    cmdr = MqttCommander(
        BrokerOptions(port=broker.port, allow_insecure=True), user="erik", token=TOKEN, plant=plant
    )
    made: list[Instance] = []

    def start(node: str, app: Path, *extra: str) -> Instance:
        inst = Instance(tmp_path, broker.port, node, app, *extra)
        made.append(inst)

        def up() -> bool:
            assert inst.proc.poll() is None, inst.log.read_text(errors="replace")
            return cmdr.command(inst.prefix, "handover_status", timeout=0.5)["status"] == (
                "accepted"
            )

        wait_until(up, 30, f"{node} answering")
        return inst

    yield {"cmdr": cmdr, "start": start, "tmp": tmp_path, "port": broker.port, "plant": plant}
    for inst in made:
        inst.stop()
    cmdr.close()


def _app(bench: dict[str, Any], name: str, *, faulty: bool = False) -> Path:
    return build_app(bench["tmp"], bench["port"], bench["plant"], name, faulty=faulty)


def test_blue_green_handover_keeps_state_and_one_writer(bench: dict[str, Any]) -> None:
    tmp, cmdr = bench["tmp"], bench["cmdr"]
    app = _app(bench, "v1")
    blue = bench["start"]("blue", app)
    green = bench["start"]("green", app, "--standby")
    time.sleep(3.0)  # blue drives the plant: PIDs integrate, the batch phase moves on
    report = blue_green_handover(cmdr, old=blue.prefix, new=green.prefix)
    print("handover report:", json.dumps(report))
    assert report["outcome"] == "ok", report
    assert (report["from_epoch"], report["epoch"]) == (1, 2)
    assert report["skipped_releases"] <= 1, report
    # Cycles between blue's last write and green's first: 1.0 = back to back, none missed.
    assert report["plant_gap_cycles"] is not None and report["plant_gap_cycles"] <= 2.0, report
    assert report["runtime_gap_cycles"] <= 2.0, report
    runs = [e for e, _ in report["epoch_runs"]]
    assert runs == [1, 2], f"writers interleaved: {report['epoch_runs']}"
    assert report["writes"]["refused_stale_epoch"] == 0  # blue went silent, never pushed back
    assert report["old_mode"] == "superseded"

    # State crossed exactly: green's programs right after the restore equal blue's snapshot.
    audit = [json.loads(line) for line in (tmp / "audit-green.jsonl").read_text().splitlines()]
    claim = next(r for r in audit if r.get("cmd") == "handover_claim")
    assert claim["status"] == "accepted"
    assert claim["new"]["programs_sha256"] == claim["new"]["snapshot_programs_sha256"]
    st = cmdr.command(green.prefix, "handover_status")["new"]
    assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == 2
    assert blue.stop() == 0  # superseded → STOP, exits cleanly, no safe values on the plant
    time.sleep(0.5)
    stats = cmdr.stats_after(time.monotonic())
    assert stats is not None and stats["writes"]["refused_stale_epoch"] == 0
    assert stats["actuators"]["agitator"] > 0  # still driven by green, not de-energised
    for node in ("blue", "green"):
        assert verify_audit_log(tmp / f"audit-{node}.jsonl").ok


def test_new_instance_faulting_in_probation_rolls_back(bench: dict[str, Any]) -> None:
    cmdr = bench["cmdr"]
    blue = bench["start"]("blue", _app(bench, "v1"))
    green = bench["start"]("green", _app(bench, "v1bad", faulty=True), "--standby")
    time.sleep(2.0)
    with pytest.raises(HandoverFailedError) as info:
        blue_green_handover(cmdr, old=blue.prefix, new=green.prefix)
    report = info.value.report
    assert report.get("outcome") == "rolled-back", (str(info.value), report)
    assert "probation" in report["reason"] and report["resume"]["epoch"] == 3
    st = cmdr.command(blue.prefix, "handover_status")["new"]
    assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == 3
    time.sleep(0.5)
    stats = cmdr.stats_after(time.monotonic())
    assert stats is not None and stats["owner_epoch"] == 3
    runs = [e for e, _ in stats["epoch_runs"]]
    assert runs[0] == 1 and runs[-1] == 3 and set(runs) <= {1, 2, 3}
    assert stats["actuators"]["agitator"] > 0  # green's safe values never reached the plant
    assert cmdr.command(green.prefix, "handover_status")["new"]["mode"] == "failed"
    assert green.stop() == 1  # it ended in FAULT


def make_version(
    app: Path, version: str, *, kc: float, extra_param: bool, legacy_var: bool
) -> Path:
    """A version of the bioreactor copy: TIC101 gain, an extra parameter, an extra VAR."""
    manifest = yaml.safe_load((app / "app.yaml").read_text())
    manifest["version"] = version
    if extra_param:
        manifest["parameters"].append({"name": "spare_gain", "type": "REAL", "default": 1.5})
    (app / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    loops = (app / "loops.py").read_text().replace("KC=20.0, TI=3000.0", f"KC={kc}, TI=3000.0")
    (app / "loops.py").write_text(loops)
    if legacy_var:
        batch = (app / "batch.py").read_text()
        batch = batch.replace('"batches": 0}', '"batches": 0, "legacy_counter": 7}')
        (app / "batch.py").write_text(batch)
    return app


def test_blue_green_across_versions_merges_the_state(bench: dict[str, Any]) -> None:
    """1.0.0 → 1.1.0 with a changed gain, an added parameter and a removed variable."""
    tmp, cmdr = bench["tmp"], bench["cmdr"]
    old = make_version(_app(bench, "v100"), "1.0.0", kc=20.0, extra_param=False, legacy_var=True)
    new = make_version(_app(bench, "v110"), "1.1.0", kc=25.0, extra_param=True, legacy_var=False)
    blue = bench["start"]("blue", old)
    green = bench["start"]("green", new, "--standby")
    time.sleep(3.0)
    report = blue_green_handover(cmdr, old=blue.prefix, new=green.prefix)
    assert report["outcome"] == "ok", report
    assert report["plant_gap_cycles"] is not None and report["plant_gap_cycles"] <= 2.0, report
    audit = [json.loads(line) for line in (tmp / "audit-green.jsonl").read_text().splitlines()]
    claim = next(r for r in audit if r.get("cmd") == "handover_claim")
    assert claim["status"] == "accepted"
    answer = claim["new"]
    assert (answer["from_version"], answer["version"]) == ("1.0.0", "1.1.0")
    outcomes = {c["path"]: c["outcome"] for c in answer["plan"]["changes"]}
    assert outcomes["loops.tic101.KC"] == "new_value"
    assert outcomes["parameter:spare_gain"] == "added"
    assert outcomes["batch.legacy_counter"] == "dropped"
    assert answer["plan"]["counts"]["refused"] == 0 and answer["plan"]["counts"]["kept"] > 300
    st = cmdr.command(green.prefix, "handover_status")["new"]
    assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == 2
