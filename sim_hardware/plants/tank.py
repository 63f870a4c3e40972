"""A small atmospheric level tank with an inlet valve and an outlet pump, for quick tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import Field

from hal import Direction, IecType
from sim_hardware.components import Pump, Valve
from sim_hardware.plants._base import Actuator, Plant, PlantParams, Signal

__all__ = ["Tank", "TankParams"]

_IN, _OUT = Direction.IN, Direction.OUT


class TankParams(PlantParams):
    """Geometry and equipment sizes of the tank."""

    capacity_l: float = Field(1000.0, gt=0, description="volume at 100 % level")
    inlet_max_lpm: float = Field(60.0, ge=0, description="inlet flow at 100 % valve opening")
    inlet_stroke_s: float = Field(5.0, ge=0, description="inlet valve full-stroke time")
    outlet_max_lpm: float = Field(50.0, ge=0, description="outlet pump flow at 100 % speed")
    outlet_ramp_s: float = Field(2.0, ge=0, description="outlet pump 0→100 % ramp time")
    high_switch_pct: float = Field(90.0, ge=0, le=100, description="high level switch point")
    low_switch_pct: float = Field(10.0, ge=0, le=100, description="low level switch point")


class Tank(Plant):
    """Volume balance dV/dt = inflow − outflow; the pump delivers nothing from an empty tank."""

    kind = "tank"
    Params = TankParams
    signals = (
        Signal("level", _IN, "%", 0, 100, "tank level (radar)", noise=0.1),
        Signal("volume", _IN, "L", 0, 1e6, "tank contents", noise=0.5),
        Signal("inlet_flow", _IN, "L/min", 0, 1e4, "inlet flow meter", noise=0.1),
        Signal("outlet_flow", _IN, "L/min", 0, 1e4, "outlet flow meter", noise=0.1),
        Signal("pump_running", _IN, "", 0, 1, "outlet pump running feedback", type=IecType.BOOL),
        Signal("high_level", _IN, "", 0, 1, "high level switch", type=IecType.BOOL),
        Signal("low_level", _IN, "", 0, 1, "low level switch (true = below)", type=IecType.BOOL),
        Signal("inlet_valve", _OUT, "%", 0, 100, "inlet valve opening command"),
        Signal("outlet_pump", _OUT, "%", 0, 100, "outlet pump speed command"),
    )

    params: TankParams

    def _build(self) -> None:
        p = self.params
        self.inlet = Valve(max_flow=p.inlet_max_lpm, stroke_time_s=p.inlet_stroke_s)
        self.pump = Pump(max_flow=p.outlet_max_lpm, ramp_s=p.outlet_ramp_s)
        self._actuators: dict[str, Actuator] = {"inlet_valve": self.inlet, "outlet_pump": self.pump}
        self.volume = 0.2 * p.capacity_l
        self.outflow = 0.0

    def initial_keys(self) -> dict[str, str]:
        return {"volume": "L of liquid", "level": "% of capacity"}

    def initial_ranges(self) -> dict[str, tuple[float, float]]:
        return {"volume": (0.0, self.params.capacity_l), "level": (0.0, 100.0)}

    def _set_initial(self, key: str, value: float) -> None:
        cap = self.params.capacity_l
        v = value if key == "volume" else value * 0.01 * cap
        self.volume = min(max(v, 0.0), cap)

    def actuators(self) -> dict[str, Actuator]:
        return self._actuators

    def step(self, dt: float) -> None:
        self.inlet.step(dt)
        self.pump.step(dt)
        cap = self.params.capacity_l
        inflow = self.inlet.flow()
        out = self.pump.flow()
        v = self.volume + (inflow - out) * dt / 60.0
        if v < 0.0:
            out += v * 60.0 / dt  # the pump ran dry part of the step
            v = 0.0
        self.outflow = out
        self.volume = cap if v > cap else v
        self.time += dt

    def _level(self) -> float:
        return 100.0 * self.volume / self.params.capacity_l

    def readers(self) -> dict[str, Callable[[], float | bool]]:
        return {
            "level": self._level,
            "volume": lambda: self.volume,
            "inlet_flow": lambda: self.inlet.flow(),
            "outlet_flow": lambda: self.outflow,
            "pump_running": lambda: self.pump.running,
            "high_level": lambda: self._level() >= self.params.high_switch_pct,
            "low_level": lambda: self._level() <= self.params.low_switch_pct,
        }

    def _state(self) -> dict[str, float]:
        return {"volume": self.volume, "outflow": self.outflow}

    def _load_state(self, state: Mapping[str, float]) -> None:
        self.volume = float(state["volume"])
        self.outflow = float(state["outflow"])
