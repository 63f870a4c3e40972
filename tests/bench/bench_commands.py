"""Command path figures (issue 15): answer latency idle and under an anonymous 5,000 msg/s flood;
audit append and verify rates.

The flood runs in its own process (tests/mqtt/flood.py, QoS 0). Latency is send → answer as
an HMI sees it (a set_parameter every 250 ms), for the bridge in the scan's process and in its
own, and with the shipped broker ACL, where the broker drops the anonymous flood itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

from runtime import ScanEngine, load_app
from runtime.mqtt import MqttBridge, MqttConfig, ProcessBridge
from runtime.ops._access import AccessConfig, UserSpec, hash_token
from runtime.ops._audit import AuditLog, verify_audit_log
from tests.conftest import write_app
from tests.mqtt.broker import Broker, ensure_mosquitto, free_port, plain_broker
from tests.mqtt.conftest import APP_LOGIC, app_manifest

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "vplc/plant1/edge7/testapp"
TOKEN = "op-secret"


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    pick = lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))], 1)  # noqa: E731
    return {"n": len(ms), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(ms[-1], 1)}


async def _hmi(port: int, seconds: float, login: dict[str, str]) -> list[float]:
    """Send a command every 250 ms for ``seconds``; the send → answer times."""
    latencies: list[float] = []
    async with aiomqtt.Client("127.0.0.1", port, **login) as client:  # type: ignore[arg-type]
        await client.subscribe(f"{PREFIX}/cmd/response", qos=1)
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            i += 1
            body = {
                "id": f"bench-{time.monotonic_ns()}",
                "ts": time.time(),
                "cmd": "set_parameter",
                "name": "gain",
                "value": float(i % 5),
                "user": "olga",
                "token": TOKEN,
            }
            t0 = time.monotonic()
            await client.publish(f"{PREFIX}/cmd", json.dumps(body).encode(), qos=1)
            async with asyncio.timeout(10):
                async for msg in client.messages:
                    answer = json.loads(msg.payload)  # type: ignore[arg-type]
                    if answer.get("id") == body["id"]:
                        if answer["status"] != "accepted":
                            raise RuntimeError(f"bench command refused: {answer}")
                        latencies.append(time.monotonic() - t0)
                        break
            await asyncio.sleep(0.25)
    return latencies


def _flood(port: int, rate: float, seconds: float) -> subprocess.Popen[str]:
    args = [str(port), f"{PREFIX}/cmd", str(rate), str(seconds), "mixed"]
    cmd = [sys.executable, "-m", "tests.mqtt.flood", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    return proc


def _case(
    engine: ScanEngine, broker: Broker, *, process: bool, flood: bool, login: dict[str, str]
) -> dict[str, Any]:
    access = AccessConfig(
        users={"olga": UserSpec(role="operator", token_sha256=hash_token(TOKEN))},
        commands={"user_rate": 50, "user_burst": 50},
    )
    folder = Path(tempfile.mkdtemp(prefix="vplc-bench-cmd-"))
    bridge_login: dict[str, Any] = {}
    if login:
        (folder / "pw").write_text("broker-pw")
        bridge_login = {"username": "vplc", "password_file": folder / "pw"}
    # The test broker has no TLS listener: tokens in clear text are accepted knowingly.
    cfg = MqttConfig(port=broker.port, site="plant1", node="edge7", process=process,
                     allow_insecure=True, **bridge_login)  # fmt: skip
    audit_file = folder / "audit.jsonl"
    bridge: MqttBridge | ProcessBridge
    if process:
        bridge = ProcessBridge(engine, cfg, access=access, audit_file=audit_file)
    else:
        bridge = MqttBridge(engine, cfg, access=access, audit=AuditLog(audit_file))
    bridge.start()
    if not bridge.connected.wait(20):
        raise RuntimeError("bridge did not connect")
    proc = _flood(broker.port, 5000, 9.0) if flood else None
    try:
        time.sleep(1.0 if flood else 0.2)
        latencies = asyncio.run(_hmi(broker.port, 6.0, login))
        sent = None
        if proc is not None:
            assert proc.stdout is not None
            sent = int(proc.stdout.readline())
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        bridge.stop()
    records = sum(1 for _ in audit_file.open()) if audit_file.exists() else 0
    return {
        "bridge": "process" if process else "thread",
        "flood_msgs_per_s": round(sent / 9.0) if sent else 0,
        "answer_latency": _percentiles(latencies),
        "audit_records": records,
        "audit_bytes": audit_file.stat().st_size if audit_file.exists() else 0,
    }


def _acl_broker(exe: str, passwd: str, folder: Path) -> Broker:
    pwfile = folder / "passwords"
    for i, (user, pw) in enumerate({"vplc": "broker-pw", "hmi": "hmi-pw"}.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run([passwd, *flags, "-b", str(pwfile), user, pw], check=True)
    acl = ROOT / "runtime" / "mqtt" / "examples" / "vplc.acl"
    extra = f"allow_anonymous true\npassword_file {pwfile}\nacl_file {acl}\n"
    return Broker(exe, folder, free_port(), extra)


def audit_rates(n: int = 2000) -> dict[str, Any]:
    """Signed appends per second (fsync on and off) and records verified per second."""
    folder = Path(tempfile.mkdtemp(prefix="vplc-bench-audit-"))
    out: dict[str, Any] = {}
    for fsync in (False, True):
        log = AuditLog(folder / f"a-{fsync}.jsonl", fsync=fsync)
        count = n if not fsync else n // 10
        t0 = time.perf_counter()
        for i in range(count):
            log.append("command", user="olga", cmd="set_parameter", target="gain", old=i, new=i)
        out[f"appends_per_s_fsync_{str(fsync).lower()}"] = round(count / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    result = verify_audit_log(folder / "a-False.jsonl")
    assert result.ok
    out["verified_records_per_s"] = round(result.records / (time.perf_counter() - t0))
    return out


def run() -> dict[str, Any]:
    os.environ["VPLC_STATE_DIR"] = tempfile.mkdtemp(prefix="vplc-bench-state-")
    exe, passwd = ensure_mosquitto()
    broker = plain_broker(exe, Path(tempfile.mkdtemp(prefix="vplc-bench-mosq-")))
    acl = _acl_broker(exe, passwd, Path(tempfile.mkdtemp(prefix="vplc-bench-acl-")))
    app = write_app(Path(tempfile.mkdtemp(prefix="vplc-bench-app-")), app_manifest(), APP_LOGIC)
    engine = ScanEngine(load_app(app))
    engine.start()
    engine.start_thread()
    broker.start()
    acl.start()
    results: dict[str, Any] = {"audit": audit_rates()}
    hmi_login = {"username": "hmi", "password": "hmi-pw"}
    try:
        for process in (False, True):
            name = "process" if process else "thread"
            results[f"idle_{name}"] = _case(engine, broker, process=process, flood=False, login={})
            results[f"flood_{name}"] = _case(engine, broker, process=process, flood=True, login={})
            results[f"flood_acl_{name}"] = _case(
                engine, acl, process=process, flood=True, login=hmi_login
            )
    finally:
        broker.stop()
        acl.stop()
        engine.request_stop()
        engine.join(5)
        engine.close()
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
