"""A bioreactor skid: the 100 L bioreactor plus the instruments and valves a real skid carries.

The vessel's physics are the :class:`Bioreactor`'s, unchanged (same channels, same state,
same step); the skid adds what surrounds it on a P&ID (see ``_skid_signals``): redundant
probes with independent noise, off-gas analysis, utility headers, drive diagnostics, valve
positioners, supply and harvest vessels on load cells, SIP condensate RTDs and 45 automated
on/off valves with open/closed limit switches. Derived readings are computed from the vessel
state on demand; the few that have dynamics of their own (trap RTDs, heater, bottle weights)
are integrated after the vessel step. SIP and CIP themselves are not modelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import Field

from sim_hardware.components import OnOff, Valve
from sim_hardware.plants import _skid_readings
from sim_hardware.plants._skid_signals import ONOFF_VALVES, SKID_SIGNALS, TRAP_LINES
from sim_hardware.plants.bioreactor import MAX_RPM, Bioreactor, BioreactorParams

__all__ = ["BioreactorSkid", "OnOff", "SkidParams"]

_MMOL_PER_L_GAS = 1000.0 / 22.4  # ideal gas at 0 °C, 1 atm: what an MFC's standard litre is
_TRAP_TAU_S = 30.0


class SkidParams(BioreactorParams):
    """The vessel's parameters plus the skid's supplies and bottles."""

    feed_bottle_kg: float = Field(20.0, ge=0, description="feed bottle at start")
    base_bottle_kg: float = Field(5.0, ge=0, description="base bottle at start")
    media_tank_kg: float = Field(150.0, ge=0, description="media hold tank at start")
    onoff_stroke_s: float = Field(2.0, ge=0, description="on/off valve stroke")
    hw_pressure_bar: float = Field(3.0, gt=0)
    cw_pressure_bar: float = Field(3.5, gt=0)
    steam_pressure_bar: float = Field(2.2, gt=0)
    instrument_air_bar: float = Field(6.0, gt=0)


class BioreactorSkid(Bioreactor):
    """The bioreactor with its skid instrumentation; utilities can fail one by one."""

    kind = "bioreactor_skid"
    Params = SkidParams
    # mypy infers the parent's tables as fixed-length tuples; these extend them on purpose.
    signals = Bioreactor.signals + SKID_SIGNALS  # type: ignore[assignment]
    utilities = ("cooling_water", "hot_water", "clean_steam", "instrument_air")  # type: ignore[assignment]
    _STATE = (  # type: ignore[assignment]
        *Bioreactor._STATE,
        "feed_kg",
        "base_kg",
        "media_kg",
        "harvest_kg",
        "heater_t",
        "air_l",
        "o2_l",
        "co2_l",
    )

    params: SkidParams

    def _build(self) -> None:
        super()._build()
        p = self.params
        self.onoff = {v: OnOff(max_flow=0.0, stroke_time_s=p.onoff_stroke_s) for v in ONOFF_VALVES}
        self.outputs = {n: OnOff(max_flow=0.0, stroke_time_s=0.0) for n in _DISCRETE_OUTPUTS}
        self._actuators.update({f"xv_{v}": c for v, c in self.onoff.items()})
        self._actuators.update(self.outputs)
        self._skid_parts: list[Valve] = [*self.onoff.values(), *self.outputs.values()]
        self._traps: list[Valve] = [self.onoff[f"sip_{line}_steam"] for line in TRAP_LINES]
        self.feed_kg, self.base_kg = p.feed_bottle_kg, p.base_bottle_kg
        self.media_kg, self.harvest_kg = p.media_tank_kg, 0.0
        self.heater_t = p.ambient_c
        self.air_l = self.o2_l = self.co2_l = 0.0
        self.trap_t = [p.ambient_c] * len(TRAP_LINES)  # condensate RTDs, TRAP_LINES order
        # what the one-call readings (_skid_readings) read besides the vessel model
        self._reading_k = _skid_readings.constants(p)
        self._limit_valves: list[Valve] = [self.onoff[v] for v in ONOFF_VALVES]

    def step(self, dt: float) -> None:
        v_before = self.V
        super().step(dt)  # the vessel, exactly as the bare bioreactor
        p = self.params
        _skid_readings.step_parts(self._skid_parts, self.utility_ok["instrument_air"], dt)
        self.feed_kg = max(self.feed_kg - self.feed.flow() * (1.15 / 3600.0) * dt, 0.0)
        self.base_kg = max(self.base_kg - self.base.flow() * (1.04e-3 / 60.0) * dt, 0.0)
        self.media_kg = max(self.media_kg - self.fill.flow() * (1.0 / 60.0) * dt, 0.0)
        if v_before > 0.0:
            self.harvest_kg += self.harvest.flow() * (1.0 / 60.0) * dt
        self.air_l += self.air.flow() * (1.0 / 60.0) * dt
        self.o2_l += self.o2.flow() * (1.0 / 60.0) * dt
        self.co2_l += self.co2.flow() * (1.0 / 60.0) * dt
        k = dt / _TRAP_TAU_S if dt < _TRAP_TAU_S else 1.0
        steam = self.utility_ok["clean_steam"]
        _skid_readings.step_traps(self.trap_t, self._traps, steam, p.ambient_c, k)
        heater = 60.0 if self.outputs["exhaust_heater"].on else p.ambient_c
        self.heater_t += (heater - self.heater_t) * (dt / 120.0 if dt < 120.0 else 1.0)

    # -- derived readings ----------------------------------------------------------------
    def _gas_in(self) -> float:
        return self.air.flow() + self.o2.flow() + self.co2.flow()

    def _our_mmol_min(self) -> float:
        """Oxygen uptake of the whole broth, from the same kinetics the vessel integrates."""
        p = self.params
        f_do = self.do / (p.k_do_pct + self.do)
        our = (self.mu / p.yxo_g_mmol + p.mo_mmol_g_h * p.time_scale / 3600.0 * f_do) * self.X
        return our * self.V * 60.0

    def _offgas(self, co2: bool) -> float:
        q = self._gas_in() * _MMOL_PER_L_GAS
        if q < 1e-6:
            return 0.04 if co2 else 20.95
        used = self._our_mmol_min()
        made = self.params.rq * used
        o2_in = (0.2095 * self.air.flow() + self.o2.flow()) * _MMOL_PER_L_GAS
        co2_in = (0.0004 * self.air.flow() + self.co2.flow()) * _MMOL_PER_L_GAS
        out = max(q - used + made, 1e-6)
        frac = (co2_in + made) / out if co2 else max(o2_in - used, 0.0) / out
        return 100.0 * frac

    def _supply(self, utility: str, nominal: float) -> float:
        return nominal if self.utility_ok[utility] else 0.05

    def readers(self) -> dict[str, Callable[[], float | bool]]:
        s = self  # closures over self: restore() rebuilds the components
        r = super().readers()
        r.update(
            {
                "temperature_b": lambda: s.T,
                "temperature_c": lambda: s.T,
                "ph_b": lambda: s.ph,
                "do_b": lambda: s.do,
                "jacket_inlet_temperature": s._jacket_inlet,
                "headspace_pressure": lambda: 0.2 + 0.004 * s._gas_in(),
                "jacket_pressure": lambda: 0.5 + 0.08 * (s.heating.flow() + s.cooling.flow()),
                "exhaust_filter_dp": lambda: 1.5 * s._gas_in() ** 2,
                "exhaust_heater_temperature": lambda: s.heater_t,
                "condenser_temperature": lambda: (
                    s.params.cooling_water_c + 4.0
                    if s.onoff["condenser_water"].position > 50.0
                    else s.T
                ),
                "offgas_o2": lambda: s._offgas(False),
                "offgas_co2": lambda: s._offgas(True),
                "offgas_flow": s._gas_in,
                "hw_supply_temperature": lambda: s.params.hot_water_c,
                "hw_return_temperature": lambda: s.Tj if s.heating.flow() > 0.0 else s.T,
                "hw_supply_pressure": lambda: s._supply("hot_water", s.params.hw_pressure_bar),
                "cw_supply_temperature": lambda: s.params.cooling_water_c,
                "cw_return_temperature": lambda: (
                    min(s.Tj, 50.0) if s.cooling.flow() > 0.0 else s.params.cooling_water_c
                ),
                "cw_supply_pressure": lambda: s._supply("cooling_water", s.params.cw_pressure_bar),
                "steam_pressure": lambda: s._supply("clean_steam", s.params.steam_pressure_bar),
                "instrument_air_pressure": lambda: s._supply(
                    "instrument_air", s.params.instrument_air_bar
                ),
                "process_air_pressure": lambda: 2.5,
                "o2_supply_pressure": lambda: 4.0,
                "co2_supply_pressure": lambda: 4.0,
                "agitator_current": lambda: 0.6 + 3.0 * (s.agitator.speed / MAX_RPM) ** 2,
                "agitator_torque": lambda: 2.0 * (s.agitator.speed / MAX_RPM) ** 2,
                "agitator_motor_temperature": lambda: 30.0 + 25.0 * (s.agitator.speed / MAX_RPM),
                "agitator_power": lambda: 0.04 + 0.4 * (s.agitator.speed / MAX_RPM) ** 3,
                "agitator_frequency": lambda: 50.0 * s.agitator.speed / MAX_RPM,
                "agitator_dc_bus": lambda: 560.0,
                "agitator_drive_temperature": lambda: 32.0 + 10.0 * (s.agitator.speed / MAX_RPM),
                "feed_pump_current": lambda: 0.02 + 0.01 * s.feed.speed,
                "base_pump_current": lambda: 0.02 + 0.01 * s.base.speed,
                "harvest_pump_current": lambda: 0.05 + 0.05 * s.harvest.speed,
                "feed_pump_power": lambda: 0.5 * s.feed.speed,
                "base_pump_power": lambda: 0.5 * s.base.speed,
                "harvest_pump_power": lambda: 3.0 * s.harvest.speed,
                "air_total": lambda: s.air_l,
                "o2_total": lambda: s.o2_l,
                "co2_total": lambda: s.co2_l,
                "feed_pump_speed": lambda: s.feed.speed,
                "base_pump_speed": lambda: s.base.speed,
                "harvest_pump_speed": lambda: s.harvest.speed,
                "heating_valve_position": lambda: s.heating.position,
                "cooling_valve_position": lambda: s.cooling.position,
                "fill_valve_position": lambda: s.fill.position,
                "air_mfc_position": lambda: s.air.position,
                "o2_mfc_position": lambda: s.o2.position,
                "co2_mfc_position": lambda: s.co2.position,
                "feed_tank_weight": lambda: s.feed_kg,
                "base_tank_weight": lambda: s.base_kg,
                "media_tank_weight": lambda: s.media_kg,
                "harvest_tank_weight": lambda: s.harvest_kg,
                "agitator_running": lambda: s.agitator.speed > 1.0,
                "agitator_fault": lambda: s.agitator.failed,
                "feed_pump_fault": lambda: s.feed.failed,
                "base_pump_fault": lambda: s.base.failed,
                "harvest_pump_fault": lambda: s.harvest.failed,
                "estop_ok": lambda: True,
                "rupture_disc_ok": lambda: True,
                "seal_ok": lambda: True,
                "hw_pressure_ok": lambda: s.utility_ok["hot_water"],
                "cw_pressure_ok": lambda: s.utility_ok["cooling_water"],
                "instrument_air_ok": lambda: s.utility_ok["instrument_air"],
                "foam_probe": lambda: False,
                "high_level_probe": lambda: s.V > 95.0,
                "skid_leak": lambda: False,
            }
        )
        for drive in ("agitator", "feed_pump", "base_pump", "harvest_pump"):
            r[f"{drive}_ready"] = lambda: True
            r[f"{drive}_remote"] = lambda: True
        for gas in ("air", "o2", "co2"):
            r[f"{gas}_mfc_alarm"] = lambda: False
        for i, line in enumerate(TRAP_LINES):
            r[f"trap_{line}_temperature"] = _trap_reader(s, i)
        for valve in ONOFF_VALVES:
            r[f"xv_{valve}_zso"] = _limit_reader(s, valve, opened=True)
            r[f"xv_{valve}_zsc"] = _limit_reader(s, valve, opened=False)
        return r

    def values_reader(self, channels: Sequence[str]) -> Callable[[], list[float | bool]]:
        # every analogue reading in one (compiled) call, then the ones asked for
        where = _ANALOG_AT
        if not all(ch in where for ch in channels):
            return super().values_reader(channels)
        s, idx = self, [where[ch] for ch in channels]

        def read() -> list[Any]:  # over self, as the readers: restore() rebuilds the parts
            values = _skid_readings.analog(s._model, s, s._reading_k, s.onoff["condenser_water"])
            return _skid_readings.pick(values, idx)

        return read

    def bools_reader(self, channels: Sequence[str]) -> Callable[[], list[Any]]:
        where = _BINARY_AT
        if not all(ch in where for ch in channels):
            return super().bools_reader(channels)
        s, idx = self, [where[ch] for ch in channels]

        def read() -> list[Any]:
            return _skid_readings.pick(_skid_readings.binary(s._model, s, s._limit_valves), idx)

        return read

    def _jacket_inlet(self) -> float:
        hot, cold = self.heating.flow(), self.cooling.flow()
        if hot + cold <= 0.0:
            return self.Tj
        p = self.params
        return (hot * p.hot_water_c + cold * p.cooling_water_c) / (hot + cold)

    def _state(self) -> dict[str, float]:
        state = super()._state()
        state.update({f"trap_{line}": t for line, t in zip(TRAP_LINES, self.trap_t, strict=True)})
        return state

    def _load_state(self, state: Mapping[str, float]) -> None:
        super()._load_state(state)
        self.trap_t = [float(state[f"trap_{line}"]) for line in TRAP_LINES]


_DISCRETE_OUTPUTS = ("exhaust_heater", "sight_glass_light", "alarm_beacon", "alarm_horn")
_ANALOG_AT = {ch: i for i, ch in enumerate(_skid_readings.ANALOG)}
_BINARY_AT = {ch: i for i, ch in enumerate(_skid_readings.BINARY)}


def _trap_reader(plant: BioreactorSkid, i: int) -> Callable[[], float]:
    return lambda: plant.trap_t[i]


def _limit_reader(plant: BioreactorSkid, valve: str, *, opened: bool) -> Callable[[], bool]:
    # Looked up through the plant each time: restore() replaces the valve objects.
    if opened:
        return lambda: plant.onoff[valve].opened
    return lambda: plant.onoff[valve].closed
