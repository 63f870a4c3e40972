"""An anonymous client flooding a command topic (run as a process): junk at a steady rate.

``python -m tests.mqtt.flood PORT TOPIC RATE SECONDS KIND`` publishes QoS 0 messages at
``RATE``/s for ``SECONDS`` and prints how many it sent. KIND: ``garbage`` (not JSON),
``unsigned`` (well-formed commands with a wrong token), ``mixed`` (alternating).
"""

from __future__ import annotations

import json
import sys
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def _payload(kind: str, i: int) -> bytes:
    if kind == "garbage" or (kind == "mixed" and i % 2):
        return b"\x00junk-" + str(i).encode()
    body = {
        "id": f"flood-{i}",
        "ts": time.time(),
        "cmd": "phase",
        "block": "main.phase",
        "command": "HOLD",
        "user": "olga",
        "token": "guessed",
    }
    return json.dumps(body).encode()


def flood(port: int, topic: str, rate: float, seconds: float, kind: str) -> int:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{time.monotonic_ns()}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent, t0 = 0, time.monotonic()
    step = 1.0 / rate
    try:
        while (now := time.monotonic()) - t0 < seconds:
            due = int((now - t0) / step) + 1
            while sent < due:
                client.publish(topic, _payload(kind, sent), qos=0)
                sent += 1
            time.sleep(0.001)
    finally:
        time.sleep(0.2)  # let paho's thread write what is queued
        client.loop_stop()
        client.disconnect()
    return sent


if __name__ == "__main__":
    port, topic, rate, seconds, kind = sys.argv[1:6]
    print("started", flush=True)
    print(flood(int(port), topic, float(rate), float(seconds), kind), flush=True)
