"""Simulated plant hardware: plant models, valves and pumps, fault injection, the sim driver."""

# ruff: noqa: E402
from sim_hardware import _accel

_accel.install()  # before any hot module is imported: a stale build must not load

from sim_hardware.components import Motor, Pump, Valve
from sim_hardware.driver import SimDriver, SimOptions
from sim_hardware.faults import (
    Bias,
    CoolingWaterFailure,
    Drift,
    Dropout,
    Fault,
    NoiseBurst,
    PumpFailed,
    Stuck,
    UtilityFailure,
    ValveStuck,
    parse_fault,
)
from sim_hardware.plants import (
    Bioreactor,
    BioreactorParams,
    Plant,
    PlantError,
    PlantParams,
    Signal,
    Tank,
    TankParams,
    get_plant_class,
    plant_kinds,
    register_plant,
)

_accel.log_implementation()

__all__ = [
    "Bias",
    "Bioreactor",
    "BioreactorParams",
    "CoolingWaterFailure",
    "Drift",
    "Dropout",
    "Fault",
    "Motor",
    "NoiseBurst",
    "Plant",
    "PlantError",
    "PlantParams",
    "Pump",
    "PumpFailed",
    "Signal",
    "SimDriver",
    "SimOptions",
    "Stuck",
    "Tank",
    "TankParams",
    "UtilityFailure",
    "Valve",
    "ValveStuck",
    "get_plant_class",
    "parse_fault",
    "plant_kinds",
    "register_plant",
]
