"""Death certificates, the primary host's STATE, and `vplc run --mqtt` with sparkplug:."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from runtime import ScanEngine
from tests.mqtt.broker import Broker
from tests.sparkplug.conftest import (
    DBIRTH,
    DDATA,
    NBIRTH,
    NDEATH,
    STATE,
    Codec,
    Host,
    NodeFactory,
    metric_by_name,
)

ROOT = Path(__file__).resolve().parents[2]


def _bdseq(codec: Codec, payload: bytes) -> int:
    return int(metric_by_name(codec.decode(payload), "bdSeq")["value"])


def _state(online: bool, ts: int) -> str:
    return json.dumps({"online": online, "timestamp": ts})


def test_ndeath_is_the_will_with_the_births_bdseq_when_the_node_dies(
    make_node: NodeFactory, host: Host, codec: Codec
) -> None:
    node = make_node()
    first = _bdseq(codec, host.wait_for(NBIRTH)[0].payload)
    assert not host.on(NDEATH)
    pid = node.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # no goodbye: the broker publishes the will
    will = host.wait_for(NDEATH)[0]
    assert _bdseq(codec, will.payload) == first
    # The supervisor restarts the node: a new connection, a new bdSeq, new births.
    second = _bdseq(codec, host.wait_for(NBIRTH, since=1, timeout=20)[0].payload)
    assert second == (first + 1) % 256
    host.wait_for(DBIRTH, since=1)
    node.stop()
    clean = host.wait_for(NDEATH, since=1)[0]
    assert _bdseq(codec, clean.payload) == second


def test_bdseq_survives_a_restart_of_the_node(
    make_node: NodeFactory, host: Host, codec: Codec
) -> None:
    node = make_node()
    first = _bdseq(codec, host.wait_for(NBIRTH)[0].payload)
    node.stop()
    make_node()
    again = _bdseq(codec, host.wait_for(NBIRTH, since=1)[0].payload)
    assert again == (first + 1) % 256


def test_births_wait_for_the_primary_host_and_stop_while_it_is_offline(
    make_node: NodeFactory, host: Host, codec: Codec, engine: ScanEngine
) -> None:
    now = time.time_ns() // 1_000_000
    host.publish(STATE, _state(False, now), retain=True)
    try:
        node = make_node(primary_host_id="scada1")
        assert node.wait_connected(10)
        time.sleep(1.0)
        assert not host.on(NBIRTH) and not host.on(DDATA)  # the host is offline: no birth
        host.publish(STATE, _state(True, now + 1000), retain=True)
        first = _bdseq(codec, host.wait_for(NBIRTH)[0].payload)
        host.wait_for(DBIRTH)
        host.wait_for(DDATA, count=2)
        # A STATE older than the last one is out of sequence: refused, nothing changes.
        host.publish(STATE, _state(False, now + 500))
        deadline = time.monotonic() + 10
        while node.statistics().get("sparkplug", {}).get("state_refused", 0) < 1:
            assert time.monotonic() < deadline, node.statistics()
            time.sleep(0.05)
        assert not host.on(NDEATH)
        # The host goes offline: NDEATH (this connection's bdSeq), then silence.
        host.publish(STATE, _state(False, now + 2000), retain=True)
        assert _bdseq(codec, host.wait_for(NDEATH)[0].payload) == first
        time.sleep(0.5)
        n_data = len(host.on(DDATA))
        time.sleep(1.0)
        assert len(host.on(DDATA)) == n_data
        assert len(host.on(NBIRTH)) == 1
        # Back online: births again, on a new connection (a new bdSeq).
        host.publish(STATE, _state(True, now + 3000), retain=True)
        again = _bdseq(codec, host.wait_for(NBIRTH, since=1, timeout=20)[0].payload)
        assert again != first
    finally:
        host.publish(STATE, b"", retain=True)


def _run_bioreactor(mqtt_yaml: Path, duration: str) -> list[str]:
    """``vplc run plc_apps/bioreactor --mqtt FILE --duration S`` from this interpreter."""
    app = str(ROOT / "plc_apps" / "bioreactor")
    return [sys.executable, "-m", "runtime.host.cli", "run", app, "--mqtt", str(mqtt_yaml),
            "--duration", duration]  # fmt: skip


def test_vplc_run_with_a_sparkplug_section_runs_the_edge_node(
    broker: Broker, host: Host, codec: Codec, tmp_path: Path
) -> None:
    cfg = tmp_path / "mqtt.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "port": broker.port,
                "sparkplug": {"group_id": "plant1", "edge_node_id": "edge9"},
            }
        )
    )
    proc = subprocess.Popen(
        _run_bioreactor(cfg, "4"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        dbirth = codec.decode(
            host.wait_for("spBv1.0/plant1/DBIRTH/edge9/bioreactor", timeout=60)[0].payload
        )
        assert any(m["name"].startswith("Points/") for m in dbirth["metrics"])
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    host.wait_for("spBv1.0/plant1/NDEATH/edge9")


def test_a_broken_sparkplug_section_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "mqtt.yaml"
    cfg.write_text(yaml.safe_dump({"sparkplug": {"group_id": "a/b", "edge_node": "x"}}))
    res = subprocess.run(
        _run_bioreactor(cfg, "1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    assert "sparkplug.group_id" in res.stderr
    assert "sparkplug.edge_node" in res.stderr  # unknown key (edge_node_id is the name)


def test_the_shipped_example_config_is_valid() -> None:
    from runtime.mqtt import load_mqtt_config

    cfg = load_mqtt_config(ROOT / "runtime" / "sparkplug" / "examples" / "sparkplug.yaml")
    assert cfg.sparkplug is not None and cfg.sparkplug.primary_host_id == "scada1"
    assert cfg.access_file == ROOT / "runtime" / "sparkplug" / "examples" / "access.yaml"
