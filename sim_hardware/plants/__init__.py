"""Simulated plants and the registry that finds them by name ('bioreactor', 'tank', ...)."""

from __future__ import annotations

from sim_hardware.plants._base import Actuator, Plant, PlantError, PlantParams, Signal
from sim_hardware.plants.bioreactor import Bioreactor, BioreactorParams
from sim_hardware.plants.skid import BioreactorSkid, SkidParams
from sim_hardware.plants.tank import Tank, TankParams

__all__ = [
    "Actuator",
    "Bioreactor",
    "BioreactorParams",
    "BioreactorSkid",
    "Plant",
    "PlantError",
    "PlantParams",
    "Signal",
    "SkidParams",
    "Tank",
    "TankParams",
    "get_plant_class",
    "plant_kinds",
    "register_plant",
]

_registry: dict[str, type[Plant]] = {
    "bioreactor": Bioreactor,
    "bioreactor_skid": BioreactorSkid,
    "tank": Tank,
}


def register_plant(cls: type[Plant]) -> type[Plant]:
    """Make a Plant subclass available under its ``kind`` (usable as a class decorator)."""
    _registry[cls.kind] = cls
    return cls


def plant_kinds() -> list[str]:
    return sorted(_registry)


def get_plant_class(kind: str) -> type[Plant]:
    """Look up a plant by name; the error lists the plants that exist."""
    try:
        return _registry[kind]
    except KeyError:
        raise PlantError(
            f"unknown plant {kind!r}; known plants: {', '.join(plant_kinds())}"
        ) from None
