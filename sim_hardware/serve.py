"""A simulated plant served over MQTT in real time, for hardware-in-the-loop runs of an app.

The engine is an ordinary :class:`SimDriver` bound to one HAL point per plant channel: every
step (``rate_hz``) the accepted actuator values are written to the plant, the plant is
integrated to the current plant time (``speed`` × wall time) and every sensor is measured
with noise and faults, then published. Topics (``P`` = ``prefix``), all JSON::

    P/sensors/<channel>    out, not retained: {"v", "q": GOOD|UNCERTAIN|BAD, "ts", "t"}
                           every step (``t`` is plant time in s).
    P/actuators/<channel>  in: {"v", "epoch"?} (or a plain number) — see ownership below.
    P/owner                in, retained: {"epoch": int, "client"} ownership claims.
    P/faults               in: a fault ({"kind": "bias", "channel": "ph", "offset": 0.1}),
                           a list of them, or {"clear": channel|null}; validated by the
                           fault models. Answer on P/faults/response: {"status":
                           "accepted"|"refused", "reason", "active": [...]}.
    P/status               out, retained: {"status": "online", "plant", "seed", "sensors",
                           "actuators"}; last will {"status": "offline"}.
    P/stats                out, every ``stats_s``: plant time, steps, overruns, write counters
                           (applied, refused_stale_epoch, refused_unclaimed, invalid),
                           owner epoch, active faults, ``epochs`` ({epoch: first/last
                           applied write, CLOCK_MONOTONIC s, count}) and ``epoch_runs``
                           (the order epochs wrote in: [[epoch, writes], ...], last 50).

Ownership epochs (the same protocol as ``runtime.drivers.mqtt``): the server remembers the
highest epoch ever claimed on P/owner. With no claim, untagged actuator writes are applied.
Once a claim exists, a write is applied only if its ``epoch`` equals the highest claim;
a lower epoch or no epoch is refused as stale, a higher (unclaimed) one as unclaimed.
An optional actuator watchdog (``actuator_timeout_s``) de-energises every actuator (0)
when no write has been applied for that long, as remote I/O does on a lost controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import aiomqtt

from sim_hardware._plant_server import PlantServer, ServeOptions, dumps

__all__ = ["PlantServer", "ServeOptions", "run", "serve"]


async def serve(opts: ServeOptions, stop: asyncio.Event) -> PlantServer:
    """Step the plant in real time and serve it until ``stop``; reconnects to the broker."""
    server = PlantServer(opts)
    state: dict[str, Any] = {"client": None, "steps": 0, "overruns": 0}
    stepper = asyncio.create_task(_step_loop(server, state, stop))
    backoff = 0.2
    try:
        while not stop.is_set():
            will = aiomqtt.Will(server.topic_status, dumps({"status": "offline"}), 1, True)
            client = aiomqtt.Client(
                opts.host, opts.port, username=opts.username, password=opts.password,
                will=will, keepalive=10, timeout=5.0,
            )  # fmt: skip
            try:
                async with client:
                    backoff = 0.2
                    await _session(server, client, state, stop)
                    return server
            except (aiomqtt.MqttError, OSError) as exc:
                state["client"] = None
                print(f"sim serve: broker connection: {exc}; retrying", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 5.0)
        return server
    finally:
        stepper.cancel()
        await asyncio.gather(stepper, return_exceptions=True)


async def _session(
    server: PlantServer, client: aiomqtt.Client, state: dict[str, Any], stop: asyncio.Event
) -> None:
    topics = [server.actuator_prefix + "+", server.topic_owner, server.topic_faults]
    await client.subscribe([(t, 1) for t in topics])
    await client.publish(server.topic_status, dumps(server.status()), qos=1, retain=True)
    state["client"] = client
    stopper = asyncio.create_task(stop.wait())
    tasks = [
        asyncio.create_task(_receive(server, client)),
        asyncio.create_task(_stats(server, client, state)),
    ]
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        state["client"] = None
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
    for task in done:
        if task is not stopper and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    offline = {"status": "offline", "reason": "shutdown"}
    await client.publish(server.topic_status, dumps(offline), qos=1, retain=True)


async def _receive(server: PlantServer, client: aiomqtt.Client) -> None:
    async for msg in client.messages:
        topic = msg.topic.value
        raw = msg.payload
        payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
        if topic.startswith(server.actuator_prefix):
            server.on_actuator(topic[len(server.actuator_prefix) :], payload)
        elif topic == server.topic_owner:
            server.on_owner(payload)
        elif topic == server.topic_faults and not msg.retain:
            answer = server.on_faults(payload)
            await client.publish(server.topic_faults + "/response", dumps(answer), qos=1)


async def _stats(server: PlantServer, client: aiomqtt.Client, state: dict[str, Any]) -> None:
    while True:
        body = server.stats(state["steps"], state["overruns"])
        await client.publish(server.topic_stats, dumps(body), qos=0)
        await asyncio.sleep(server.opts.stats_s)


async def _step_loop(server: PlantServer, state: dict[str, Any], stop: asyncio.Event) -> None:
    """Fixed-rate steps on absolute deadlines; the plant runs on while the broker is away."""
    period = round(1e9 / server.opts.rate_hz)
    t0 = time.monotonic_ns()
    deadline = t0
    while not stop.is_set():
        now = time.monotonic_ns()
        if now < deadline:
            await asyncio.sleep((deadline - now) / 1e9)
            continue
        plant_ns = round((now - t0) * server.opts.speed)
        messages = server.step(plant_ns, time.time_ns())
        state["steps"] += 1
        client: aiomqtt.Client | None = state["client"]
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # the session loop reconnects
                for topic, payload in messages:
                    await client.publish(topic, payload, qos=0)
        deadline += period
        behind = (time.monotonic_ns() - deadline) // period
        if behind > 0:  # missed steps are skipped, never run back to back
            state["overruns"] += 1
            deadline += (behind + 1) * period


def run(opts: ServeOptions) -> int:
    """Serve until SIGINT/SIGTERM; the process's exit code."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(opts, stop)

    asyncio.run(main())
    return 0


if __name__ == "__main__":
    import sys

    from sim_hardware.cli import main as _main

    sys.exit(_main(prog="python -m sim_hardware.serve"))
