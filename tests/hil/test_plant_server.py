"""The served plant's rules without a network: ownership epochs, faults, watchdog, CLI input."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from sim_hardware._plant_server import PlantServer, ServeOptions
from tests.hil.conftest import VPLC


def server(**kw: object) -> PlantServer:
    return PlantServer(ServeOptions.model_validate({"seed": 1, "noise": False} | kw))


def write(s: PlantServer, body: object, channel: str = "heating_valve") -> str:
    return s.on_actuator(channel, json.dumps(body).encode())


def test_writes_need_a_claim_by_default() -> None:
    s = server()
    assert write(s, 5.0) == "refused_unclaimed"  # nobody claimed: an anonymous write
    assert s.actuators["heating_valve"].value == 0.0
    s.on_owner(b'{"epoch": 1}')
    assert write(s, {"v": 6.0, "epoch": 1}) == "applied"
    assert write(s, 7.0) == "refused_stale_epoch"  # untagged, once there is an owner


def test_ownership_rules() -> None:
    s = server(require_claim=False)
    assert write(s, 5.0) == "applied"  # allowed: untagged writes while nobody claims
    assert write(s, {"v": 6.0, "epoch": 1}) == "refused_unclaimed"
    s.on_owner(b'{"epoch": 1}')
    assert write(s, {"v": 7.0}) == "refused_stale_epoch"
    assert write(s, {"v": 8.0, "epoch": 1}) == "applied"
    s.on_owner(b'{"epoch": 3}')
    s.on_owner(b'{"epoch": 2}')  # a lower claim (an old instance) never lowers the owner
    s.on_owner(b"garbage")
    assert s.owner_epoch == 3
    assert write(s, {"v": 9.0, "epoch": 1}) == "refused_stale_epoch"
    assert write(s, {"v": 10.0, "epoch": 3}) == "applied"
    for bad in ({"v": "x", "epoch": 3}, {"v": 1.0, "epoch": True}, {"v": None, "epoch": 3}):
        assert write(s, bad) == "invalid"
    assert write(s, {"v": 1.0, "epoch": 3}, channel="temperature") == "invalid"  # a sensor
    assert s.on_actuator("heating_valve", b"NaN") == "invalid"
    assert s.actuators["heating_valve"].value == 10.0
    assert s.counters == {
        "applied": 3,
        "refused_stale_epoch": 2,
        "refused_unclaimed": 1,
        "invalid": 5,
        "watchdog_trips": 0,
    }


def test_step_publishes_every_sensor_and_applies_actuators() -> None:
    s = server(require_claim=False)
    write(s, 100.0, channel="agitator")
    s.step(0, time.time_ns())  # plant time starts at the first step
    msgs = dict(s.step(10_000_000_000, time.time_ns()))
    assert len(msgs) == len(s.sensors) and "vplc/sim/plant/sensors/temperature" in msgs
    body = json.loads(msgs["vplc/sim/plant/sensors/agitator_speed"])
    assert body["q"] == "GOOD" and body["t"] == 10.0 and body["v"] > 50.0  # ramping up


def test_faults_are_all_or_nothing() -> None:
    s = server()
    batch = [{"kind": "bias", "channel": "ph", "offset": 0.1}, {"kind": "stuck", "channel": "x"}]
    assert s.on_faults(json.dumps(batch).encode())["status"] == "refused"
    assert s.driver.faults == []
    assert s.on_faults(b"{not json")["status"] == "refused"
    ok = s.on_faults(json.dumps(batch[:1]).encode())
    assert ok == {"status": "accepted", "reason": "", "active": ["bias:ph"]}
    assert s.on_faults(b'{"clear": null}')["active"] == []


def test_actuator_watchdog_de_energises() -> None:
    s = server(actuator_timeout_s=0.05, require_claim=False)
    write(s, 80.0)
    s.step(1_000_000_000, 0)
    assert s.actuators["heating_valve"].value == 80.0
    time.sleep(0.06)
    s.step(2_000_000_000, 0)
    assert s.actuators["heating_valve"].value == 0.0 and s.counters["watchdog_trips"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plant", "nope"], "unknown plant 'nope'"),
        (["--initial", "temperature=hot"], "expected NAME=NUMBER"),
        (["--initial", "colour=3"], "unknown initial state 'colour'"),
        (["--params", "missing.json"], "--params missing.json"),
        (["--username", "plant"], "would travel in clear text"),
        (["--cert-file", "c.pem"], "need --ca-file"),
        (["--broker", "b.yaml", "--port", "1"], "give the connection there, not also --port"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [VPLC, "sim", "serve", *args], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert res.returncode == 2 and message in res.stderr, res.stderr
