"""HIL fixtures: a real broker, `vplc sim serve` in its own process, an MQTT watcher, the app."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt.broker import Broker
from tests.mqtt.conftest import broker, mosquitto, state_dir

__all__ = ["broker", "mosquitto", "state_dir"]  # reused fixtures (state_dir: autouse)

ROOT = Path(__file__).resolve().parents[2]
VPLC = str(Path(sys.executable).with_name("vplc"))


def wait_until(pred: Callable[[], bool], timeout: float, what: str = "condition") -> float:
    """Poll ``pred`` every 10 ms; returns the seconds it took."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - t0


class Watcher:
    """Records every message under a prefix with its arrival time (its own paho thread)."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[tuple[float, str, Any, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            body = msg.payload
        topic = msg.topic[len(self.prefix) + 1 :]
        with self._lock:
            self.messages.append((time.monotonic(), topic, body, bool(msg.retain)))

    def on(self, topic: str, since: float = 0.0) -> list[Any]:
        with self._lock:
            return [b for t, top, b, _ in self.messages if top == topic and t >= since]

    def last(self, topic: str) -> Any:
        got = self.on(topic)
        return got[-1] if got else None

    def publish(self, topic: str, body: Any, *, retain: bool = False) -> None:
        info = self.client.publish(f"{self.prefix}/{topic}", json.dumps(body), 1, retain)
        info.wait_for_publish(5.0)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class ServeProcess:
    """`vplc sim serve` as a child process (the way a HIL bench runs it)."""

    def __init__(self, broker: Broker, prefix: str, args: list[str], log: Path) -> None:
        cmd = [VPLC, "sim", "serve", "--port", str(broker.port), "--prefix", prefix, *args]
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: the plant vanishes mid-sentence, no 'offline' goodbye (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(5)
        return self.proc.returncode


ServeFactory = Callable[..., tuple[ServeProcess, Watcher]]


@pytest.fixture
def serve(broker: Broker, tmp_path: Path) -> Iterator[ServeFactory]:
    """Start a server on a prefix; returns it with a watcher once it is online."""
    started: list[tuple[ServeProcess, Watcher]] = []

    def start(prefix: str, *args: str) -> tuple[ServeProcess, Watcher]:
        watcher = Watcher(broker.port, prefix)
        proc = ServeProcess(broker, prefix, list(args), tmp_path / f"serve{len(started)}.log")
        started.append((proc, watcher))
        try:
            wait_until(lambda: (watcher.last("status") or {}).get("status") == "online", 15)
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.log.read_text(errors="replace")) from None
        return proc, watcher

    yield start
    for proc, watcher in started:
        proc.kill()
        watcher.close()


def mqtt_app(tmp_path: Path, *, port: int, prefix: str, params: dict[str, Any]) -> Path:
    """plc_apps/bioreactor copied with its driver turned into `type: mqtt` (same channels)."""
    channels = {p["channel"]: p["direction"] for p in bioreactor_points()}
    options = {
        "port": port,
        "prefix": prefix,
        "channels": channels,
        "staleness_s": 1.0,
        "qos": 0,
        "open_wait_s": 5.0,
        # `sim serve` applies writes only from a claimed owner (secure by default).
        "owner_epoch": 1,
    }
    return bound_app(tmp_path, "mqtt", options, params)


def bioreactor_points() -> list[dict[str, Any]]:
    """The `points` of plc_apps/bioreactor's manifest (what a HIL binding maps channels for)."""
    manifest = yaml.safe_load((ROOT / "plc_apps" / "bioreactor" / "app.yaml").read_text("utf-8"))
    points: list[dict[str, Any]] = manifest["points"]
    return points


def bound_app(tmp_path: Path, kind: str, options: dict[str, Any], params: dict[str, Any]) -> Path:
    """plc_apps/bioreactor copied with every point bound to one driver `plant` of ``kind``
    (the binding an integrator writes for a HIL bench) and ``params`` as parameter defaults."""
    app_dir = tmp_path / "bioreactor"
    shutil.copytree(ROOT / "plc_apps" / "bioreactor", app_dir)
    manifest = yaml.safe_load((app_dir / "app.yaml").read_text(encoding="utf-8"))
    manifest["drivers"] = {"plant": {"type": kind, "options": options}}
    for point in manifest["points"]:
        point["driver"] = "plant"
    for param in manifest["parameters"]:
        if param["name"] in params:
            param["default"] = params[param["name"]]
    (app_dir / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return app_dir
