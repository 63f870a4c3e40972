"""A fake remote I/O device for driver tests: publishes sensor values, records actuator writes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hal import Driver, Point, Quality


class Device:
    """A synchronous paho client (its own network thread) on ``<prefix>/sensors|actuators``."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.writes: list[tuple[str, Any]] = []  # (channel, payload) in arrival order
        self.owner: list[Any] = []
        self._lock = threading.Lock()
        self._feeding: threading.Event | None = None
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"{prefix}/actuators/#", 1), (f"{prefix}/owner", 1)])
        self.client.loop_start()
        self.wait(lambda: self.client.is_connected(), 5.0)

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        body = json.loads(msg.payload) if msg.payload else None
        with self._lock:
            if msg.topic == f"{self.prefix}/owner":
                self.owner.append(body)
            else:
                self.writes.append((msg.topic.rsplit("/", 1)[1], body))

    def send(self, channel: str, payload: Any, *, retain: bool = False, raw: bool = False) -> None:
        data = payload if raw else json.dumps(payload)
        info = self.client.publish(f"{self.prefix}/sensors/{channel}", data, qos=1, retain=retain)
        info.wait_for_publish(5.0)

    def feed(self, values: dict[str, Any], hz: float = 50.0) -> None:
        """Publish ``values`` (channel → payload) ``hz`` times a second until ``stop_feed``."""
        self.stop_feed()
        stop = self._feeding = threading.Event()

        def body() -> None:
            while not stop.is_set():
                for ch, v in values.items():
                    self.client.publish(f"{self.prefix}/sensors/{ch}", json.dumps(v), qos=0)
                stop.wait(1 / hz)

        threading.Thread(target=body, daemon=True).start()

    def stop_feed(self) -> None:
        if self._feeding is not None:
            self._feeding.set()
            self._feeding = None

    def values(self, channel: str) -> list[Any]:
        with self._lock:
            return [b for ch, b in self.writes if ch == channel]

    @staticmethod
    def wait(pred: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.01)

    def close(self) -> None:
        self.stop_feed()
        self.client.loop_stop()
        self.client.disconnect()


def latches(driver: Driver, point: Point, quality: Quality) -> Callable[[], bool]:
    """A wait predicate: run ``read_inputs`` and check the point's quality."""

    def check() -> bool:
        driver.read_inputs(time.monotonic_ns())
        return point.quality is quality

    return check
