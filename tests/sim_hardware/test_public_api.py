"""What sim_hardware exports is deliberate: a change to __all__ must change this test too."""

from __future__ import annotations

import sim_hardware


def test_sim_hardware_exports() -> None:
    assert set(sim_hardware.__all__) == {
        "Bias", "Bioreactor", "BioreactorParams", "CoolingWaterFailure", "Drift", "Dropout",
        "Fault", "Motor", "NoiseBurst", "Plant", "PlantError", "PlantParams", "Pump",
        "PumpFailed", "Signal", "SimDriver", "SimOptions", "Stuck", "Tank", "TankParams",
        "UtilityFailure", "Valve", "ValveStuck", "get_plant_class", "parse_fault",
        "plant_kinds", "register_plant",
    }  # fmt: skip
    for name in sim_hardware.__all__:
        assert getattr(sim_hardware, name) is not None, name
