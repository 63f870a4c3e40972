"""The bioreactor skid's true readings in one call per cycle, compiled when built (see .pxd).

``analog`` and ``binary`` compute what ``BioreactorSkid.readers()`` compute channel by
channel, every expression in the same operand order (bit-identical floats, compiled or not),
in the order of ``ANALOG`` and ``BINARY``: the sim driver reads all of a skid's inputs with
two calls instead of ~200 closures. ``step_parts``/``step_traps`` are the skid's own loops of
its step. ``tests/sim_hardware/test_values_reader.py`` holds them
to the per-channel readers.
"""

from __future__ import annotations

from typing import Any

from sim_hardware.components import Motor, Pump, Valve
from sim_hardware.plants._bioreactor_model import SENSORS, BioreactorModel
from sim_hardware.plants._skid_signals import ONOFF_VALVES, TRAP_LINES

__all__ = ["ANALOG", "BINARY", "analog", "binary", "constants", "pick", "step_parts", "step_traps"]

MAX_RPM = 300.0  # the bioreactor model's (asserted by skid.py)
_MMOL_PER_L_GAS = 1000.0 / 22.4  # ideal gas at 0 °C, 1 atm: what an MFC's standard litre is
_STEAM_C = 121.0

ANALOG = (
    *SENSORS,
    "temperature_b",
    "temperature_c",
    "ph_b",
    "do_b",
    "jacket_inlet_temperature",
    "headspace_pressure",
    "jacket_pressure",
    "exhaust_filter_dp",
    "exhaust_heater_temperature",
    "condenser_temperature",
    "offgas_o2",
    "offgas_co2",
    "offgas_flow",
    "hw_supply_temperature",
    "hw_return_temperature",
    "hw_supply_pressure",
    "cw_supply_temperature",
    "cw_return_temperature",
    "cw_supply_pressure",
    "steam_pressure",
    "instrument_air_pressure",
    "process_air_pressure",
    "o2_supply_pressure",
    "co2_supply_pressure",
    "agitator_current",
    "agitator_torque",
    "agitator_motor_temperature",
    "feed_pump_current",
    "base_pump_current",
    "harvest_pump_current",
    "feed_pump_speed",
    "base_pump_speed",
    "harvest_pump_speed",
    "agitator_power",
    "agitator_frequency",
    "agitator_dc_bus",
    "agitator_drive_temperature",
    "feed_pump_power",
    "base_pump_power",
    "harvest_pump_power",
    "air_total",
    "o2_total",
    "co2_total",
    "heating_valve_position",
    "cooling_valve_position",
    "fill_valve_position",
    "air_mfc_position",
    "o2_mfc_position",
    "co2_mfc_position",
    "feed_tank_weight",
    "base_tank_weight",
    "media_tank_weight",
    "harvest_tank_weight",
    *(f"trap_{line}_temperature" for line in TRAP_LINES),
)

BINARY = (
    "feed_pump_running",
    "base_pump_running",
    "harvest_pump_running",
    "agitator_running",
    "agitator_fault",
    "feed_pump_fault",
    "base_pump_fault",
    "harvest_pump_fault",
    "estop_ok",
    "rupture_disc_ok",
    "seal_ok",
    "hw_pressure_ok",
    "cw_pressure_ok",
    "instrument_air_ok",
    *(
        f"{drive}_{what}"
        for drive in ("agitator", "feed_pump", "base_pump", "harvest_pump")
        for what in ("ready", "remote")
    ),
    "air_mfc_alarm",
    "o2_mfc_alarm",
    "co2_mfc_alarm",
    "foam_probe",
    "high_level_probe",
    "skid_leak",
    *(f"xv_{v}_zso" for v in ONOFF_VALVES),
    *(f"xv_{v}_zsc" for v in ONOFF_VALVES),
)


def constants(p: Any) -> tuple[float, ...]:
    """The skid parameters ``analog`` reads, in its unpacking order (params are frozen)."""
    return (
        p.hot_water_c,
        p.cooling_water_c,
        p.hw_pressure_bar,
        p.cw_pressure_bar,
        p.steam_pressure_bar,
        p.instrument_air_bar,
        p.k_do_pct,
        p.yxo_g_mmol,
        p.mo_mmol_g_h,
        p.time_scale,
        p.rq,
    )


def analog(m: BioreactorModel, skid: Any, k: tuple[float, ...], condenser: Valve) -> list[float]:
    """The true values of the channels ``ANALOG``, in that order.

    ``skid`` is the BioreactorSkid (its own state: bottles, totals, heater, traps, utilities),
    ``m`` its vessel model, ``k`` :func:`constants` of its params, ``condenser`` its
    condenser-water on/off valve.
    """
    hw_c, cw_c, hw_bar, cw_bar, steam_bar, air_bar, k_do, yxo, mo, ts, rq = k
    ok = skid.utility_ok
    heating, cooling, air, o2, co2 = m.heating, m.cooling, m.air, m.o2, m.co2
    feed, base, harvest, agitator = m.feed, m.base, m.harvest, m.agitator
    T, Tj = m.T, m.Tj
    hot, cold = heating.flow(), cooling.flow()
    gas = air.flow() + o2.flow() + co2.flow()
    inlet = Tj if hot + cold <= 0.0 else (hot * hw_c + cold * cw_c) / (hot + cold)
    # off-gas O2 and CO2 (BioreactorSkid._offgas, _our_mmol_min)
    q = gas * _MMOL_PER_L_GAS
    if q < 1e-6:
        off_o2, off_co2 = 20.95, 0.04
    else:
        f_do = m.do / (k_do + m.do)
        used = (m.mu / yxo + mo * ts / 3600.0 * f_do) * m.X * m.V * 60.0
        made = rq * used
        o2_in = (0.2095 * air.flow() + o2.flow()) * _MMOL_PER_L_GAS
        co2_in = (0.0004 * air.flow() + co2.flow()) * _MMOL_PER_L_GAS
        out = q - used + made
        out = 1e-6 if out < 1e-6 else out  # max(out, 1e-6): NaN stays
        left = o2_in - used
        left = 0.0 if left < 0.0 else left  # max(left, 0.0)
        off_co2 = 100.0 * ((co2_in + made) / out)
        off_o2 = 100.0 * (left / out)
    n = agitator.speed / MAX_RPM
    cw_ret = 50.0 if Tj > 50.0 else Tj  # min(Tj, 50.0): NaN stays
    values = [m.value(code) for code in range(17)]  # the vessel's SENSORS
    values += [
        T,
        T,
        m.ph,
        m.do,
        inlet,
        0.2 + 0.004 * gas,
        0.5 + 0.08 * (hot + cold),
        1.5 * gas**2,
        skid.heater_t,
        cw_c + 4.0 if condenser.position > 50.0 else T,
        off_o2,
        off_co2,
        gas,
        hw_c,
        Tj if hot > 0.0 else T,
        hw_bar if ok["hot_water"] else 0.05,
        cw_c,
        cw_ret if cold > 0.0 else cw_c,
        cw_bar if ok["cooling_water"] else 0.05,
        steam_bar if ok["clean_steam"] else 0.05,
        air_bar if ok["instrument_air"] else 0.05,
        2.5,
        4.0,
        4.0,
        0.6 + 3.0 * n**2,
        2.0 * n**2,
        30.0 + 25.0 * n,
        0.02 + 0.01 * feed.speed,
        0.02 + 0.01 * base.speed,
        0.05 + 0.05 * harvest.speed,
        feed.speed,
        base.speed,
        harvest.speed,
        0.04 + 0.4 * n**3,
        50.0 * agitator.speed / MAX_RPM,
        560.0,
        32.0 + 10.0 * n,
        0.5 * feed.speed,
        0.5 * base.speed,
        3.0 * harvest.speed,
        skid.air_l,
        skid.o2_l,
        skid.co2_l,
        heating.position,
        cooling.position,
        m.fill.position,
        air.position,
        o2.position,
        co2.position,
        skid.feed_kg,
        skid.base_kg,
        skid.media_kg,
        skid.harvest_kg,
    ]
    values += skid.trap_t
    return values


def binary(m: BioreactorModel, skid: Any, valves: list[Valve]) -> list[bool]:
    """The true values of the channels ``BINARY``, in that order; ``valves`` are the skid's
    on/off valves in ``ONOFF_VALVES`` order (open limit at ≥ 95 %, closed at ≤ 5 %, as
    ``OnOff.opened``/``closed``)."""
    ok = skid.utility_ok
    feed: Pump = m.feed
    base: Pump = m.base
    harvest: Pump = m.harvest
    agitator: Motor = m.agitator
    values: list[bool] = [
        feed.running,
        base.running,
        harvest.running,
        agitator.speed > 1.0,
        agitator.failed,
        feed.failed,
        base.failed,
        harvest.failed,
        True,
        True,
        True,
        ok["hot_water"],
        ok["cooling_water"],
        ok["instrument_air"],
        True,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        m.V > 95.0,
        False,
    ]
    values += [v.position >= 95.0 for v in valves]
    values += [v.position <= 5.0 for v in valves]
    return values


def step_parts(parts: list[Valve], air_ok: bool, dt: float) -> None:
    """Step the skid's on/off parts that move; without instrument air they fail closed."""
    for part in parts:
        if not air_ok:
            part.command = 0.0  # spring-return actuators fail closed without air
        if part.command != part.position:  # at rest a step changes nothing: skip it
            part.step(dt)


def step_traps(
    traps: list[float], valves: list[Valve], steam: bool, ambient: float, k: float
) -> None:
    """Condensate RTDs follow steam (121 °C) when their SIP valve is open, else ambient."""
    for i, valve in enumerate(valves):
        target = _STEAM_C if steam and valve.position > 50.0 else ambient
        traps[i] += (target - traps[i]) * k


def pick(values: list[Any], idx: list[int]) -> list[Any]:
    """``values[i]`` for each ``i`` of ``idx``: the channels a driver bound, in its order."""
    return [values[i] for i in idx]
