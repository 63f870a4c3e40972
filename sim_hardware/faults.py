"""Scheduled sensor and actuator faults, as validated data (a union discriminated by ``kind``).

Every fault is active on the plant-time interval [start_s, start_s + duration_s) (forever
when ``duration_s`` is omitted), so activation depends on plant time only and replays
identically. Sensor faults change what the driver reports; actuator faults change the plant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "ACTUATOR_FAULT_KINDS",
    "SENSOR_FAULT_KINDS",
    "Bias",
    "CoolingWaterFailure",
    "Drift",
    "Dropout",
    "Fault",
    "NoiseBurst",
    "PumpFailed",
    "Stuck",
    "UtilityFailure",
    "ValveStuck",
    "parse_fault",
]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    start_s: float = Field(0.0, ge=0, description="plant time (s) the fault begins")
    duration_s: float | None = Field(None, gt=0, description="how long it lasts; None: forever")

    def active(self, t: float) -> bool:
        if t < self.start_s:
            return False
        return self.duration_s is None or t < self.start_s + self.duration_s

    @property
    def target(self) -> str:
        """The channel (or utility) this fault acts on."""
        return str(getattr(self, "channel", ""))


class Stuck(_Fault):
    """The transmitter freezes at its last reading; quality stays GOOD."""

    kind: Literal["stuck"] = "stuck"
    channel: str


class Drift(_Fault):
    """The reading drifts away from the truth at ``rate`` units per second."""

    kind: Literal["drift"] = "drift"
    channel: str
    rate: float = Field(description="engineering units per second")


class Bias(_Fault):
    """A constant offset on the reading (bad calibration)."""

    kind: Literal["bias"] = "bias"
    channel: str
    offset: float


class NoiseBurst(_Fault):
    """Extra Gaussian noise of standard deviation ``std`` (e.g. bubbles on a probe)."""

    kind: Literal["noise_burst"] = "noise_burst"
    channel: str
    std: float = Field(gt=0)


class Dropout(_Fault):
    """No signal (broken cable, 4–20 mA below 3.6 mA): the point latches BAD quality."""

    kind: Literal["dropout"] = "dropout"
    channel: str


class ValveStuck(_Fault):
    """The valve stops moving: at ``position`` (%) if given, else where it is."""

    kind: Literal["valve_stuck"] = "valve_stuck"
    channel: str
    position: float | None = Field(None, ge=0, le=100)


class PumpFailed(_Fault):
    """No flow (or agitator stopped) although the running feedback says commanded."""

    kind: Literal["pump_failed"] = "pump_failed"
    channel: str


class UtilityFailure(_Fault):
    """A utility is lost (e.g. 'cooling_water', 'hot_water'): its valve has no effect."""

    kind: Literal["utility_failure"] = "utility_failure"
    utility: str

    @property
    def target(self) -> str:
        return self.utility


class CoolingWaterFailure(_Fault):
    """Cooling-water supply lost: the cooling valve opens onto nothing."""

    kind: Literal["cooling_water_failure"] = "cooling_water_failure"

    @property
    def target(self) -> str:
        return "cooling_water"


Fault = Annotated[
    Stuck
    | Drift
    | Bias
    | NoiseBurst
    | Dropout
    | ValveStuck
    | PumpFailed
    | UtilityFailure
    | CoolingWaterFailure,
    Field(discriminator="kind"),
]

SENSOR_FAULT_KINDS = frozenset({"stuck", "drift", "bias", "noise_burst", "dropout"})
ACTUATOR_FAULT_KINDS = frozenset(
    {"valve_stuck", "pump_failed", "utility_failure", "cooling_water_failure"}
)

_adapter: TypeAdapter[Fault] = TypeAdapter(Fault)


def parse_fault(data: Fault | Mapping[str, Any]) -> Fault:
    """Validate a fault given as a mapping (``{"kind": "bias", ...}``) or pass one through."""
    if isinstance(data, _Fault):
        return data
    return _adapter.validate_python(data)
