"""The served plant's state and rules (actuator ownership, faults, stepping), network-free."""

from __future__ import annotations

import contextlib
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hal import Direction, DriverError, IecType, Point, PointSpec, coerce
from hal.mqtt import BrokerOptions
from sim_hardware.driver import SimDriver
from sim_hardware.faults import parse_fault

__all__ = ["PlantServer", "ServeOptions", "dumps"]


class ServeOptions(BaseModel):
    """Everything ``vplc sim serve`` takes on its command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plant: str = "bioreactor"
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)
    initial: dict[str, float] = Field(default_factory=dict)
    noise: bool = True
    broker: BrokerOptions = Field(default_factory=BrokerOptions)
    prefix: str = Field("vplc/sim/plant", pattern=r"^[^#+\s]+(/[^#+\s]+)*$")
    rate_hz: float = Field(10.0, gt=0, le=1000)
    speed: float = Field(1.0, gt=0, le=1000, description="plant seconds per wall second")
    stats_s: float = Field(1.0, gt=0)
    actuator_timeout_s: float | None = Field(None, gt=0)
    require_claim: bool = Field(
        True, description="refuse actuator writes until an owner claimed an epoch on P/owner"
    )


def _iso(wall_ns: int) -> str:
    return datetime.fromtimestamp(wall_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


class PlantServer:
    """The plant, its points and the ownership rules; the network is :func:`serve`'s."""

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        sim_opts = {
            "plant": opts.plant,
            "seed": opts.seed,
            "params": opts.params,
            "initial": opts.initial,
            "noise": opts.noise,
        }
        self.driver = SimDriver(name="serve", options=sim_opts)
        self.sensors: list[tuple[str, Point]] = []
        self.actuators: dict[str, Point] = {}
        for sig in self.driver.plant.signals:
            out = sig.direction is Direction.OUT
            safe = (False if sig.type is IecType.BOOL else 0.0) if out else None
            spec = PointSpec(
                name=sig.name, type=sig.type, direction=sig.direction, driver="sim",
                channel=sig.name, safe=safe,
            )  # fmt: skip
            point = Point(spec)
            if out:
                self.actuators[sig.name] = point
            else:
                self.sensors.append((sig.name, point))
        self.driver.bind(
            [(p, ch) for ch, p in self.sensors] + [(p, p.name) for p in self.actuators.values()]
        )
        self.driver.open()
        self.owner_epoch: int | None = None
        self.counters = dict.fromkeys(
            ("applied", "refused_stale_epoch", "refused_unclaimed", "invalid", "watchdog_trips"), 0
        )
        self._last_write = time.monotonic()
        self._tripped = False
        # Applied writes per epoch (first/last CLOCK_MONOTONIC, count) and the order in which
        # epochs wrote: a handover's output gap and "one writer at a time" are read from these.
        self.epochs: dict[str, dict[str, Any]] = {}
        self.epoch_runs: list[list[Any]] = []
        p = opts.prefix
        self.topic_sensor = {ch: f"{p}/sensors/{ch}" for ch, _ in self.sensors}
        self.actuator_prefix = f"{p}/actuators/"
        self.topic_owner, self.topic_faults = f"{p}/owner", f"{p}/faults"
        self.topic_status, self.topic_stats = f"{p}/status", f"{p}/stats"

    # -- messages in -----------------------------------------------------------------
    def on_owner(self, payload: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            epoch = json.loads(payload).get("epoch")
            if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
                # Never lowered: an old instance overwriting the retained claim changes nothing.
                self.owner_epoch = max(epoch, self.owner_epoch or 0)

    def on_actuator(self, channel: str, payload: bytes) -> str:
        """Apply or refuse one actuator write; returns the counter it went to."""
        point = self.actuators.get(channel)
        try:
            data = json.loads(payload)
            body = data if isinstance(data, dict) else {"v": data}
            epoch = body.get("epoch")
            if point is None or (epoch is not None and type(epoch) is not int):
                raise ValueError("unknown channel or bad epoch")
            value = coerce(point.type, body.get("v"))
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("non-finite")
        except (ValueError, TypeError):
            verdict = "invalid"
        else:
            owner = self.owner_epoch
            if owner is None and epoch is None:
                # Anyone on the broker could drive the plant: only when explicitly allowed.
                verdict = "refused_unclaimed" if self.opts.require_claim else "applied"
            elif owner is None or (epoch is not None and epoch > owner):
                verdict = "refused_unclaimed"
            elif epoch is None or epoch < owner:
                verdict = "refused_stale_epoch"
            else:
                verdict = "applied"
            if verdict == "applied":
                point.value = value
                self._last_write = now = time.monotonic()
                self._tripped = False
                self._log_write(epoch, now)
        self.counters[verdict] += 1
        return verdict

    def _log_write(self, epoch: int | None, now: float) -> None:
        key = str(epoch)
        rec = self.epochs.setdefault(key, {"first": now, "last": now, "applied": 0})
        rec["last"] = now
        rec["applied"] += 1
        if self.epoch_runs and self.epoch_runs[-1][0] == epoch:
            self.epoch_runs[-1][1] += 1
        else:
            self.epoch_runs = [*self.epoch_runs[-49:], [epoch, 1]]

    def on_faults(self, payload: bytes) -> dict[str, Any]:
        """Inject (or clear) faults; all of a list or none of it."""
        try:
            data = json.loads(payload)
            if isinstance(data, dict) and set(data) == {"clear"}:
                self.driver.clear_faults(data["clear"])
            else:
                faults = [parse_fault(f) for f in (data if isinstance(data, list) else [data])]
                for f in faults:
                    self.driver.check_fault(f)
                for f in faults:
                    self.driver.inject(f)
        except (ValueError, TypeError, AttributeError, DriverError, ValidationError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return {"status": "refused", "reason": reason}
        return {"status": "accepted", "reason": "", "active": self._active()}

    # -- the plant -------------------------------------------------------------------
    def step(self, plant_ns: int, wall_ns: int) -> list[tuple[str, bytes]]:
        """Actuators → plant, integrate to ``plant_ns``, measure; the sensor messages."""
        timeout = self.opts.actuator_timeout_s
        if timeout and not self._tripped and time.monotonic() - self._last_write > timeout:
            self._tripped = True
            self.counters["watchdog_trips"] += 1
            for point in self.actuators.values():
                point.value = point.safe_value
        self.driver.write_outputs(plant_ns)
        self.driver.read_inputs(plant_ns)
        ts, t = _iso(wall_ns), round(self.driver.plant.time, 3)
        return [
            (self.topic_sensor[ch], dumps({"v": p.value, "q": p.quality.name, "ts": ts, "t": t}))
            for ch, p in self.sensors
        ]

    def _active(self) -> list[str]:
        return [f"{f.kind}:{f.target}" for f in self.driver.active_faults()]

    def status(self) -> dict[str, Any]:
        o = self.opts
        return {
            "status": "online",
            "plant": o.plant,
            "seed": o.seed,
            "speed": o.speed,
            "rate_hz": o.rate_hz,
            "require_claim": o.require_claim,
            "sensors": [ch for ch, _ in self.sensors],
            "actuators": list(self.actuators),
        }

    def stats(self, steps: int, overruns: int) -> dict[str, Any]:
        return {
            "t": self.driver.plant.time,
            "steps": steps,
            "overruns": overruns,
            "writes": dict(self.counters),
            "owner_epoch": self.owner_epoch,
            "epochs": self.epochs,
            "epoch_runs": self.epoch_runs,
            "actuators": {ch: p.value for ch, p in self.actuators.items()},
            "active_faults": self._active(),
        }
