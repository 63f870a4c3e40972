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
highest epoch ever claimed on P/owner. A write is applied only if its ``epoch`` equals the
highest claim; a lower epoch or no epoch is refused as stale, a higher (unclaimed) one, or any
write before the first claim, as unclaimed. ``--allow-unclaimed`` (``require_claim: false``)
applies untagged writes while nobody has claimed, for a bench without ownership.

The broker connection is the shared session of ``hal.mqtt`` with the bridge's connection
model, BrokerOptions (``--broker FILE``: a YAML file with the connection keys of the bridge's
mqtt.yaml — host, port, username, password_file/env, tls, allow_insecure, ...): TLS, login,
backoff and loud connection failures work the same way; a login over plain TCP is refused
unless ``allow_insecure``.

An optional actuator watchdog (``actuator_timeout_s``) de-energises every actuator (0)
when no write has been applied for that long, as remote I/O does on a lost controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time

from hal.mqtt import Inbound, MqttError, MqttSession, SessionHandler, StdlibLog, Will
from sim_hardware._plant_server import PlantServer, ServeOptions, dumps

__all__ = ["PlantServer", "ServeOptions", "run", "serve"]


class _PlantLink(SessionHandler):
    """The plant's side of the shared MQTT session: status, actuators, owner, faults, stats."""

    def __init__(self, server: PlantServer) -> None:
        self.server = server
        self.live: MqttSession | None = None  # set while connected: the step loop publishes
        self.steps = 0
        self.overruns = 0

    async def on_connect(self, session: MqttSession) -> None:
        server = self.server
        await session.publish(server.topic_status, dumps(server.status()), qos=1, retain=True)
        self.live = session

    def on_down(self, error: MqttError, *, was_up: bool) -> None:
        self.live = None

    async def serve(self, session: MqttSession) -> None:
        server = self.server
        while True:
            body = server.stats(self.steps, self.overruns)
            await session.publish(server.topic_stats, dumps(body), qos=0)
            await asyncio.sleep(server.opts.stats_s)

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        server = self.server
        topic = msg.topic
        if topic.startswith(server.actuator_prefix):
            server.on_actuator(topic[len(server.actuator_prefix) :], msg.payload)
        elif topic == server.topic_owner:
            server.on_owner(msg.payload)
        elif topic == server.topic_faults and not msg.retain:
            answer = server.on_faults(msg.payload)
            await session.publish(server.topic_faults + "/response", dumps(answer), qos=1)

    async def on_stop(self, session: MqttSession) -> None:
        self.live = None
        offline = {"status": "offline", "reason": "shutdown"}
        await session.publish(self.server.topic_status, dumps(offline), qos=1, retain=True)


async def serve(opts: ServeOptions, stop: asyncio.Event) -> PlantServer:
    """Step the plant in real time and serve it until ``stop``; reconnects to the broker."""
    server = PlantServer(opts)
    link = _PlantLink(server)
    topics = [server.actuator_prefix + "+", server.topic_owner, server.topic_faults]
    session = MqttSession(
        opts.broker,
        link,
        client_id=f"vplc-sim-{random.getrandbits(32):08x}",
        name=f"sim serve {opts.prefix}",
        will=Will(server.topic_status, dumps({"status": "offline"}), qos=1, retain=True),
        subscriptions=[(t, 1) for t in topics],
        log=StdlibLog("vplc.sim"),
    )
    stepper = asyncio.create_task(_step_loop(server, link, stop))
    try:
        await session.run(stop)
        return server
    finally:
        stepper.cancel()
        await asyncio.gather(stepper, return_exceptions=True)


async def _step_loop(server: PlantServer, link: _PlantLink, stop: asyncio.Event) -> None:
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
        link.steps += 1
        session = link.live
        if session is not None:
            with contextlib.suppress(MqttError):  # the session reconnects by itself
                for topic, payload in messages:
                    session.publish_nowait(topic, payload, qos=0)
        deadline += period
        behind = (time.monotonic_ns() - deadline) // period
        if behind > 0:  # missed steps are skipped, never run back to back
            link.overruns += 1
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
