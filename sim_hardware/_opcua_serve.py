"""A simulated plant served as an OPC UA server in real time (``vplc sim serve --protocol
opcua``), for hardware-in-the-loop runs of an app bound with the ``opcua`` driver.

Every plant signal is a variable ``Objects/<plant>/<channel>`` with the string NodeId
``nsu=urn:vplc:sim:<plant>;s=<channel>`` (``plant_nodes`` gives them; ``sim serve`` prints
them at start): sensors read-only (Double or Boolean), updated every step, source-stamped,
and Bad (BadSensorFailure, no value) while a fault leaves them without a reading; actuators
writable (Double or Boolean; another type is BadTypeMismatch), applied to the plant at the
next step (a NaN or ±inf is not applied, the last value stays). The endpoint is secured like
the runtime's server (SignAndEncrypt, Basic256Sha256 by default; ``None`` only when asked),
with an application certificate made at first start in ``$VPLC_STATE_DIR/opcua-sim/<plant>``.
As a stand-in for a device on a bench it accepts any client certificate and anonymous
sessions, and listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hal import Direction, IecType, Quality
from hal.opcua import PolicyName, VariableServer, VarSpec
from sim_hardware._served import served_plant
from sim_hardware.plants import get_plant_class

__all__ = ["OpcuaPlant", "plant_nodes", "run_opcua"]


def namespace(plant: str) -> str:
    return f"urn:vplc:sim:{plant}"


def plant_nodes(plant: str) -> dict[str, str]:
    """Channel → NodeId (``nsu=`` form, the ``opcua`` driver's) of a plant kind."""
    return {s.name: f"nsu={namespace(plant)};s={s.name}" for s in get_plant_class(plant).signals}


def default_pki_dir(plant: str) -> Path:
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / "opcua-sim" / plant


class OpcuaPlant:
    """The plant's points, stepped in real time, mirrored into a :class:`VariableServer`."""

    def __init__(
        self, *, plant: str, host: str, port: int, seed: int = 0,
        params: dict[str, Any] | None = None, initial: dict[str, float] | None = None,
        noise: bool = True, policies: Sequence[PolicyName] = ("Basic256Sha256",),
        pki_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.driver, self.points = served_plant(
            plant, seed=seed, params=params, initial=initial, noise=noise
        )
        specs = [
            VarSpec(sig.name, "bool" if sig.type is IecType.BOOL else "float",
                    writable=sig.direction is Direction.OUT)
            for sig in self.driver.plant.signals
        ]  # fmt: skip
        self.nodes = plant_nodes(plant)
        self.server = VariableServer(
            endpoint=f"opc.tcp://{host}:{port}/vplc-sim", namespace_uri=namespace(plant),
            folder=plant, variables=specs, pki_dir=pki_dir or default_pki_dir(plant),
            policies=policies,
        )  # fmt: skip
        self.steps = 0

    async def step(self, plant_ns: int) -> None:
        """Client writes → plant, integrate to ``plant_ns``, measure, publish the sensors."""
        server = self.server
        for name, point in self.points.items():
            if point.direction is Direction.OUT:
                value = server.written(name)
                if value is not None:
                    point.value = value
        self.driver.write_outputs(plant_ns)
        self.driver.read_inputs(plant_ns)
        for name, point in self.points.items():
            if point.direction is Direction.IN:
                good = point.quality is not Quality.BAD
                await server.set(name, point.value, good=good)
        self.steps += 1


async def serve_opcua(plant: OpcuaPlant, *, rate_hz: float, speed: float,
                      stop: asyncio.Event) -> None:  # fmt: skip
    """Step the plant on absolute deadlines while the server answers on the same loop."""
    await plant.server.start()
    period = round(1e9 / rate_hz)
    t0 = deadline = time.monotonic_ns()
    try:
        while not stop.is_set():
            now = time.monotonic_ns()
            if now < deadline:
                await asyncio.sleep((deadline - now) / 1e9)
                continue
            await plant.step(round((now - t0) * speed))
            deadline += period
            behind = (time.monotonic_ns() - deadline) // period
            if behind > 0:  # missed steps are skipped, never run back to back
                deadline += (behind + 1) * period
    finally:
        await plant.server.stop()


def run_opcua(plant: OpcuaPlant, *, rate_hz: float, speed: float) -> int:
    """Serve until SIGINT/SIGTERM; the process's exit code (1 if the port cannot be bound)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_opcua(plant, rate_hz=rate_hz, speed=speed, stop=stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"vplc sim serve: error: OPC UA on {plant.server.endpoint}: {exc}", flush=True)
        return 1
    return 0
