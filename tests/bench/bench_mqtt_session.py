"""hal.mqtt.MqttSession's own cost: CPU per message published (QoS 0, QoS 1) and received.

The session runs in this process against the test Mosquitto, nothing else does: the process's
CPU time over the messages is what the session (and its MQTT client) costs per message. QoS 0
messages are queued with ``publish_nowait`` in chunks of 500 with a yield in between, as the
bridge does, and a last QoS 1 message (acknowledged after everything queued before it) ends
the count. Inbound messages come from an aiomqtt publisher in its own process.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from hal.mqtt import BrokerOptions, Inbound, MqttSession, SessionHandler
from tests.bench._util import bench_broker

_CHUNK = 500

PUBLISHER = """
import asyncio, sys
import aiomqtt

async def main(port, n):
    async with aiomqtt.Client("127.0.0.1", port) as c:
        c.pending_calls_threshold = 1000
        for start in range(0, n, 200):
            await asyncio.gather(*(c.publish("bench/in", b"x" * 64) for _ in range(200)))
            await asyncio.sleep(0.002)  # let the broker keep up: QoS 0 to a slow reader drops
        await c.publish("bench/in", b"end", qos=1, timeout=30)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


class _Counter(SessionHandler):
    def __init__(self) -> None:
        self.received = 0
        self.cpu0: float | None = None
        self.done = asyncio.Event()

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        if self.cpu0 is None:
            self.cpu0 = time.process_time()
        if msg.payload == b"end":
            self.done.set()
        else:
            self.received += 1


async def _connected(session: MqttSession) -> None:
    while not session.connected.is_set():
        await asyncio.sleep(0.01)


async def _publish(port: int, n: int, qos: int) -> dict[str, Any]:
    session = MqttSession(BrokerOptions(port=port), SessionHandler(), client_id="bench-pub",
                          name="bench-pub")  # fmt: skip
    stop = asyncio.Event()
    runner = asyncio.create_task(session.run(stop))
    await _connected(session)
    payload = b'{"v": 12.5, "q": "GOOD", "ts": "2026-12-06T05:00:00.000000Z"}'
    cpu0, t0 = time.process_time(), time.perf_counter()
    if qos == 0:
        for start in range(0, n, _CHUNK):
            for i in range(start, min(start + _CHUNK, n)):
                session.publish_nowait(f"bench/out/{i % 1000}", payload, qos=0, retain=False)
            await asyncio.sleep(0)
    else:
        for i in range(n):
            await session.publish(f"bench/out/{i % 1000}", payload, qos=1)
    await session.publish("bench/out/end", b"", qos=1, timeout=60)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    stop.set()
    await asyncio.wait_for(runner, 10)
    return {
        "messages": n,
        "qos": qos,
        "cpu_us_per_message": round(cpu / n * 1e6, 1),
        "messages_per_s": round(n / wall),
    }


async def _receive(port: int, n: int) -> dict[str, Any]:
    counter = _Counter()
    session = MqttSession(BrokerOptions(port=port), counter, client_id="bench-sub",
                          name="bench-sub", subscriptions=[("bench/in", 1)])  # fmt: skip
    stop = asyncio.Event()
    runner = asyncio.create_task(session.run(stop))
    await _connected(session)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", PUBLISHER, str(port), str(n))
    await asyncio.wait_for(counter.done.wait(), 120)
    cpu = time.process_time() - (counter.cpu0 or 0.0)
    await proc.wait()
    stop.set()
    await asyncio.wait_for(runner, 10)
    return {
        "sent": n,
        "received": counter.received,
        "cpu_us_per_message": round(cpu / max(counter.received, 1) * 1e6, 1),
    }


def run() -> dict[str, Any]:
    with bench_broker() as broker:
        return {
            "publish_qos0": [asyncio.run(_publish(broker.port, 50_000, 0)) for _ in range(3)],
            "publish_qos1_awaited": asyncio.run(_publish(broker.port, 5_000, 1)),
            "receive_qos0": [asyncio.run(_receive(broker.port, 50_000)) for _ in range(2)],
        }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
