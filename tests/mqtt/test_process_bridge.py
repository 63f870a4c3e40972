"""The out-of-process bridge (``process: true``) against a real Mosquitto, and its seqlock."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal import MemoryDriver
from runtime import ScanEngine
from runtime.front import ALARM_FIELDS, SharedFrame
from runtime.mqtt import MqttBridge, MqttConfig, ProcessBridge, attach_mqtt
from runtime.ops._access import AccessConfig
from runtime.ops._audit import verify_audit_log
from tests.conftest import MakeApp
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import APP_LOGIC, NODE, PREFIX, SITE, app_manifest, cmd, hmi_client

ROOT = Path(__file__).resolve().parents[2]


def _mem(engine: ScanEngine) -> MemoryDriver:
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    return driver


@pytest.fixture
def bridge(
    engine: ScanEngine, broker: Broker, access: AccessConfig, tmp_path: Path
) -> Iterator[ProcessBridge]:
    config = MqttConfig(
        port=broker.port,
        site=SITE,
        node=NODE,
        process=True,
        stats_s=0.5,
        keepalive_s=5,
        audit_file=tmp_path / "audit.jsonl",
        allow_insecure=True,  # tokens over the plain test broker
    )
    b = ProcessBridge(engine, config, access=access)
    b.start()
    assert b.connected.wait(20), b.statistics()
    yield b
    b.stop()


def test_config_key_selects_the_process_bridge(engine: ScanEngine, broker: Broker) -> None:
    config = MqttConfig(port=broker.port, site=SITE, node="sel", process=True)
    b = attach_mqtt(engine, config)
    try:
        assert isinstance(b, ProcessBridge) and b.child_pid not in (None, os.getpid())
    finally:
        b.stop()
    assert MqttConfig(site="a", node="b").process is True  # the default: its own process
    thread = attach_mqtt(engine, MqttConfig(port=broker.port, site=SITE, node="sel", process=False))
    try:
        assert isinstance(thread, MqttBridge)
    finally:
        thread.stop()


def test_birth_telemetry_commands_and_audit_round_trip(
    bridge: ProcessBridge, broker: Broker, engine: ScanEngine, tmp_path: Path
) -> None:
    mem = _mem(engine)

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            birth = await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            assert birth["alarms"] == ["main.high"] and birth["points"][0]["name"] == "X"
            mem.values["x"] = 61.0
            await hmi.wait_for(f"{PREFIX}/points/Y", lambda b: b["v"] == 122.0)
            alarm = await hmi.wait_for(f"{PREFIX}/alarms/main.high", lambda b: b["active"])
            assert alarm["kinds"] == ["H"] and alarm["text"] == "X high"  # text by the pipe
            ok = await hmi.command(cmd("set_parameter", name="gain", value=3.0, reason="r1"))
            assert ok["status"] == "accepted" and (ok["old"], ok["new"]) == (2.0, 3.0)
            await hmi.wait_for(f"{PREFIX}/points/Y", lambda b: b["v"] == 183.0)
            denied = await hmi.command(cmd("force", user="olga", point="X", value=5.0))
            assert denied["status"] == "refused" and "engineer" in denied["reason"]
            bad = await hmi.command(cmd("set_parameter", name="gain", value=99.0))
            assert bad["status"] == "refused"
            forced = await hmi.command(cmd("force", user="erik", point="X", value=5.5))
            assert forced["status"] == "accepted"
            body = await hmi.wait_for(f"{PREFIX}/points/X", lambda b: b["forced"])
            assert body["v"] == 5.5
            stats = await hmi.wait_for(
                f"{PREFIX}/stats", lambda s: s["bridge"]["commands"]["accepted"] == 2
            )
            assert stats["engine"]["tasks"]["fast"]["cycles"] > 0
            mark = len(hmi.messages)
            await asyncio.to_thread(bridge.stop)
            # after the mark: a retained offline birth of an earlier test must not count
            bye = await hmi.wait_for(
                f"{PREFIX}/birth", lambda b: b["status"] == "offline", timeout=15, after=mark
            )
            assert bye["reason"] == "shutdown"

    asyncio.run(scenario())
    result = verify_audit_log(tmp_path / "audit.jsonl")  # written by the child
    assert result.ok and result.records == 5  # the key's trail_start + 4 commands
    first = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[1])
    who = (first["user"], first["role"], first["new"], first["why"])
    assert who == ("olga", "operator", 3.0, "r1")


def test_killed_child_is_restarted_and_the_scan_never_stops(
    bridge: ProcessBridge, broker: Broker, engine: ScanEngine
) -> None:
    mem = _mem(engine)
    fast = engine.tasks[0]

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            first = bridge.child_pid
            assert first is not None
            cycles = fast.stats.cycles
            mark = len(hmi.messages)
            os.kill(first, signal.SIGKILL)
            will = await hmi.wait_for(
                f"{PREFIX}/birth", lambda b: b["status"] == "offline", timeout=15, after=mark
            )
            assert will["reason"] == "connection lost"
            n_births = len(hmi.on(f"{PREFIX}/birth"))
            await hmi.wait_for(
                f"{PREFIX}/birth",
                lambda b: b["status"] == "online" and len(hmi.on(f"{PREFIX}/birth")) > n_births,
                timeout=20,
            )
            assert bridge.child_pid not in (None, first) and bridge.restarts == 1
            mem.values["x"] = -7.25
            await hmi.wait_for(f"{PREFIX}/points/X", lambda b: b["v"] == -7.25)
            assert engine.running and fast.stats.cycles > cycles + 50

    asyncio.run(scenario())


def test_child_exits_when_the_parent_dies(make_app: MakeApp, broker: Broker) -> None:
    app_dir = make_app(app_manifest(), APP_LOGIC)
    args = [str(app_dir), str(broker.port), SITE, "orphan", "process"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/mqtt/bridge_proc.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None
        word, pid = proc.stdout.readline().split()
        assert word == b"ready"
        child = int(pid)
        assert _alive(child)
        proc.send_signal(signal.SIGKILL)  # no stop(), no atexit: only the pipe's EOF tells
        proc.wait(5)
        deadline = time.monotonic() + 15
        while _alive(child):
            assert time.monotonic() < deadline, "the bridge child outlived its parent"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(5)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\tZ" not in status.split("State:")[1].splitlines()[0]  # a zombie has exited


# ---------------------------------------------------------------------- the seqlock
N_POINTS, N_ALARMS = 4000, 50


def _write_frames(name: str, seconds: float) -> None:
    """Writer process: frame k holds k in every slot, so a torn frame shows mixed values."""
    frame = SharedFrame(N_POINTS, N_ALARMS, name=name)
    f64, quality, alarms = frame.f64, frame.quality, frame.alarms
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        k += 1
        frame.begin(k, k % 3)
        for i in range(N_POINTS):
            f64[i] = k
        for i in range(N_POINTS):
            quality[i] = k % 256
        for i in range(N_ALARMS * ALARM_FIELDS):
            alarms[i] = k
        frame.end()
        # A scan writes once per cycle, not back to back: leave the reader a window, or on a
        # loaded machine it may lose every race (the writing itself still overlaps reads).
        time.sleep(0.0005)
    frame.close()


def test_seqlock_reader_never_sees_a_torn_frame() -> None:
    frame = SharedFrame(N_POINTS, N_ALARMS)
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_write_frames, args=(frame.name, 3.0))
    writer.start()
    consistent = distinct = 0
    last = -1
    try:
        deadline = time.monotonic() + 8
        while writer.is_alive() and time.monotonic() < deadline:
            got = frame.read()
            if got is None:
                continue
            k = got.now_ns
            assert set(got.floats) == {float(k)}, f"torn frame {got.seq}"
            assert set(got.quality) == {k % 256} and set(got.alarms) == {k}
            assert got.state == k % 3 and got.seq == 2 * k
            consistent += 1
            distinct += k != last
            last = k
        writer.join(10)
    finally:
        frame.close()
    assert writer.exitcode == 0
    # The test means something only if the reader raced a busy writer many times.
    assert distinct > 20 and frame.retries > 0, (consistent, distinct, frame.retries)
