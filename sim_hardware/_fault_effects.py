"""How scheduled faults act: on the plant's actuators and utilities, and on sensor readings."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from hal import Direction, DriverError, IecType, Quality
from sim_hardware.components import Motor, Pump, Valve
from sim_hardware.faults import (
    SENSOR_FAULT_KINDS,
    CoolingWaterFailure,
    Fault,
    PumpFailed,
    UtilityFailure,
    ValveStuck,
)
from sim_hardware.plants import Plant, PlantError, Signal

__all__ = ["Effects", "Input", "apply_actuator_faults", "check_fault", "measure", "sensor_effects"]

# channel, true-value reader, is BOOL, signal, [(point, converter)]
Input = tuple[str, Callable[[], float | bool], bool, Signal, list[tuple[Any, Any]]]
# channel → (offset, extra noise variance, stuck state, dropout)
Effects = dict[str, tuple[float, float, dict[str, Any] | None, bool]]


def check_fault(plant: Plant, f: Fault, where: str) -> None:
    """Raise DriverError if ``f`` names no sensor, utility or actuator of the right kind."""
    if f.kind in SENSOR_FAULT_KINDS:
        sig = plant.signal_map.get(f.target)
        if sig is None or sig.direction is not Direction.IN:
            raise DriverError(f"{where}: {f.target!r} is not a sensor of {plant.kind}")
        if sig.type is IecType.BOOL and f.kind not in ("stuck", "dropout"):
            raise DriverError(f"{where}: {f.target!r} is a BOOL sensor")
        return
    if isinstance(f, UtilityFailure | CoolingWaterFailure):
        if f.target not in plant.utility_ok:
            known = ", ".join(plant.utilities) or "none"
            raise DriverError(
                f"{where}: {plant.kind} has no utility {f.target!r}; utilities: {known}"
            )
        return
    try:
        comp = plant.actuator(f.target)
    except PlantError as exc:
        raise DriverError(f"{where}: {exc}") from None
    if isinstance(f, ValveStuck) and not isinstance(comp, Valve):
        raise DriverError(f"{where}: {f.target!r} is not a valve")
    if isinstance(f, PumpFailed) and not isinstance(comp, Pump | Motor):
        raise DriverError(f"{where}: {f.target!r} is not a pump or motor")


def apply_actuator_faults(
    plant: Plant, faults: list[Fault], fstate: list[dict[str, Any]], t: float, force: bool
) -> None:
    """Switch actuator and utility faults on/off at plant time ``t`` (all again if ``force``)."""
    changed = force
    for f, st in zip(faults, fstate, strict=True):
        if f.kind in SENSOR_FAULT_KINDS:
            continue
        on = f.active(t)
        if on != st["on"]:
            st["on"] = on
            changed = True
            if on and isinstance(f, ValveStuck) and f.position is not None:
                comp = plant.actuator(f.channel)
                assert isinstance(comp, Valve)
                comp.position = f.position
    if not changed:
        return
    for comp in plant.actuators().values():
        if isinstance(comp, Valve):
            comp.stuck = False
        else:
            comp.failed = False
    for u in plant.utility_ok:
        plant.utility_ok[u] = True
    for f, st in zip(faults, fstate, strict=True):
        if not st["on"] or f.kind in SENSOR_FAULT_KINDS:
            continue
        if isinstance(f, UtilityFailure | CoolingWaterFailure):
            plant.utility_ok[f.target] = False
            continue
        comp = plant.actuator(f.target)
        if isinstance(comp, Valve):
            comp.stuck = True
        else:
            comp.failed = True


def sensor_effects(faults: list[Fault], fstate: list[dict[str, Any]], t: float) -> Effects:
    """What the sensor faults active at plant time ``t`` do to each channel."""
    out: Effects = {}
    for f, st in zip(faults, fstate, strict=True):
        if f.kind not in SENSOR_FAULT_KINDS:
            continue
        on = f.active(t)
        if not on:
            if st["on"]:
                st["on"] = False
                st["held"] = None
            continue
        st["on"] = True
        off, var, stuck, bad = out.get(f.target, (0.0, 0.0, None, False))
        match f.kind:
            case "drift":
                off += f.rate * (t - f.start_s)
            case "bias":
                off += f.offset
            case "noise_burst":
                var += f.std * f.std
            case "stuck":
                stuck = st
            case "dropout":
                bad = True
        out[f.target] = (off, var, stuck, bad)
    return out


def measure(
    inputs: list[Input], effects: Effects | None, rng: random.Random, noise: bool, now_ns: int
) -> str:
    """Latch every bound sensor with noise and the given fault effects (the general path).

    Returns the first channel whose true value is NaN or infinite (the model diverged), or ''.
    """
    gauss = rng.gauss
    good = Quality.GOOD
    diverged = ""
    for channel, reader, is_bool, sig, points in inputs:
        value: float | bool = reader()
        if not diverged and not is_bool and not math.isfinite(value):
            diverged = channel
        quality = good
        eff = effects.get(channel) if effects else None
        if not is_bool:
            x = value
            std = sig.noise if noise else 0.0
            if eff is not None:
                x += eff[0]
                if eff[1] > 0.0:
                    std = math.sqrt(std * std + eff[1])
            lo, hi = sig.lo, sig.hi
            if not lo <= x <= hi:
                quality = Quality.UNCERTAIN  # the instrument saturates: over/under range
            if std > 0.0:
                x += std * gauss(0.0, 1.0)
            value = x if lo <= x <= hi else lo if x < lo or x != x else hi
        if eff is not None:
            if eff[2] is not None:
                value = eff[2]["held"] if eff[2]["held"] is not None else value
                eff[2]["held"] = value
            if eff[3]:
                quality = Quality.BAD
        for point, conv in points:
            point.latch(value if conv is None else conv(value), quality, now_ns)
    return diverged
