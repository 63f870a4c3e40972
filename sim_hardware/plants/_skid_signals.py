"""The instrument list of a bioreactor skid beyond the bare vessel: what a real P&ID carries."""

from __future__ import annotations

from hal import Direction, IecType
from sim_hardware.plants._base import Signal

__all__ = ["ONOFF_VALVES", "SKID_SIGNALS", "TRAP_LINES"]

_IN, _OUT, _BOOL = Direction.IN, Direction.OUT, IecType.BOOL
_S = Signal

# Lines that are steamed in place: each has a steam valve, a condensate (trap bypass) valve
# and an RTD on the condensate leg that proves the line reached sterilising temperature.
TRAP_LINES = (
    "fill",
    "feed",
    "base",
    "acid",
    "antifoam",
    "harvest",
    "sample",
    "drain",
    "air_filter",
    "o2_filter",
    "co2_filter",
    "overlay_filter",
    "exhaust_filter",
    "vessel",
)
# Automated on/off valves (command + open and closed limit switches). They are closed during
# a batch; SIP/CIP are not modelled, so apart from the SIP steam valves heating their trap
# RTDs they act on nothing but their own limit switches.
ONOFF_VALVES = (
    *(f"sip_{line}_steam" for line in TRAP_LINES),
    *(f"sip_{line}_trap" for line in TRAP_LINES),
    "cip_supply",
    "cip_return",
    "cip_spray_ball",
    "cip_drain",
    "cip_air_blow",
    "acid_dose",
    "antifoam_dose",
    "sample",
    "sample_flush",
    "bottom_drain",
    "vessel_vent",
    "vacuum_break",
    "overlay_gas",
    "jacket_drain",
    "jacket_vent",
    "jacket_steam",
    "condenser_water",
)

SKID_SIGNALS = (
    # redundant probes, each with its own noise (independent measurement)
    _S("temperature_b", _IN, "°C", 0, 150, "broth temperature, 2nd Pt100", 0.02),
    _S("temperature_c", _IN, "°C", 0, 150, "broth temperature, 3rd Pt100", 0.03),
    _S("ph_b", _IN, "pH", 2, 12, "broth pH, 2nd electrode", 0.006),
    _S("do_b", _IN, "%", 0, 300, "dissolved O2, 2nd optical probe", 0.4),
    # vessel, jacket and off-gas
    _S("jacket_inlet_temperature", _IN, "°C", 0, 150, "jacket water inlet", 0.05),
    _S("headspace_pressure", _IN, "bar", -1, 3, "vessel headspace (gauge)", 0.002),
    _S("jacket_pressure", _IN, "bar", -1, 6, "jacket water (gauge)", 0.005),
    _S("exhaust_filter_dp", _IN, "mbar", 0, 200, "exhaust filter differential pressure", 0.2),
    _S("exhaust_heater_temperature", _IN, "°C", 0, 150, "exhaust filter heater jacket", 0.1),
    _S("condenser_temperature", _IN, "°C", 0, 100, "exhaust condenser outlet", 0.1),
    _S("offgas_o2", _IN, "%", 0, 100, "off-gas O2 (mass spectrometer)", 0.01),
    _S("offgas_co2", _IN, "%", 0, 30, "off-gas CO2 (mass spectrometer)", 0.005),
    _S("offgas_flow", _IN, "L/min", 0, 50, "off-gas flow", 0.02),
    # utilities at the skid boundary
    _S("hw_supply_temperature", _IN, "°C", 0, 150, "hot water supply", 0.1),
    _S("hw_return_temperature", _IN, "°C", 0, 150, "hot water return", 0.1),
    _S("hw_supply_pressure", _IN, "bar", 0, 10, "hot water supply (gauge)", 0.01),
    _S("cw_supply_temperature", _IN, "°C", 0, 50, "cooling water supply", 0.1),
    _S("cw_return_temperature", _IN, "°C", 0, 50, "cooling water return", 0.1),
    _S("cw_supply_pressure", _IN, "bar", 0, 10, "cooling water supply (gauge)", 0.01),
    _S("steam_pressure", _IN, "bar", 0, 6, "clean steam supply (gauge)", 0.01),
    _S("instrument_air_pressure", _IN, "bar", 0, 10, "instrument air header (gauge)", 0.01),
    _S("process_air_pressure", _IN, "bar", 0, 10, "process air supply (gauge)", 0.01),
    _S("o2_supply_pressure", _IN, "bar", 0, 10, "O2 supply (gauge)", 0.01),
    _S("co2_supply_pressure", _IN, "bar", 0, 10, "CO2 supply (gauge)", 0.01),
    # drives
    _S("agitator_current", _IN, "A", 0, 20, "agitator motor current (VFD)", 0.02),
    _S("agitator_torque", _IN, "N·m", 0, 10, "agitator shaft torque (VFD)", 0.01),
    _S("agitator_motor_temperature", _IN, "°C", 0, 150, "agitator winding temperature", 0.1),
    _S("feed_pump_current", _IN, "A", 0, 5, "feed pump motor current", 0.005),
    _S("base_pump_current", _IN, "A", 0, 5, "base pump motor current", 0.005),
    _S("harvest_pump_current", _IN, "A", 0, 10, "harvest pump motor current", 0.01),
    _S("feed_pump_speed", _IN, "%", 0, 100, "feed pump speed feedback", 0.1),
    _S("base_pump_speed", _IN, "%", 0, 100, "base pump speed feedback", 0.1),
    _S("harvest_pump_speed", _IN, "%", 0, 100, "harvest pump speed feedback", 0.1),
    _S("agitator_power", _IN, "kW", 0, 2, "agitator VFD output power", 0.002),
    _S("agitator_frequency", _IN, "Hz", 0, 100, "agitator VFD output frequency", 0.05),
    _S("agitator_dc_bus", _IN, "V", 0, 800, "agitator VFD DC bus voltage", 1.0),
    _S("agitator_drive_temperature", _IN, "°C", 0, 100, "agitator VFD heatsink", 0.1),
    _S("feed_pump_power", _IN, "W", 0, 200, "feed pump drive power", 0.2),
    _S("base_pump_power", _IN, "W", 0, 200, "base pump drive power", 0.2),
    _S("harvest_pump_power", _IN, "W", 0, 1000, "harvest pump drive power", 0.5),
    _S("air_total", _IN, "L", 0, 1e7, "air MFC totaliser"),
    _S("o2_total", _IN, "L", 0, 1e7, "O2 MFC totaliser"),
    _S("co2_total", _IN, "L", 0, 1e7, "CO2 MFC totaliser"),
    # control-valve positioners and MFC setpoint read-backs
    _S("heating_valve_position", _IN, "%", 0, 100, "hot-water valve position", 0.1),
    _S("cooling_valve_position", _IN, "%", 0, 100, "cooling-water valve position", 0.1),
    _S("fill_valve_position", _IN, "%", 0, 100, "media fill valve position", 0.1),
    _S("air_mfc_position", _IN, "%", 0, 100, "air MFC valve drive", 0.1),
    _S("o2_mfc_position", _IN, "%", 0, 100, "O2 MFC valve drive", 0.1),
    _S("co2_mfc_position", _IN, "%", 0, 100, "CO2 MFC valve drive", 0.1),
    # supply and receiving vessels on load cells
    _S("feed_tank_weight", _IN, "kg", 0, 50, "feed bottle", 0.005),
    _S("base_tank_weight", _IN, "kg", 0, 20, "base bottle", 0.005),
    _S("media_tank_weight", _IN, "kg", 0, 200, "media hold tank", 0.05),
    _S("harvest_tank_weight", _IN, "kg", 0, 200, "harvest tank", 0.05),
    *(
        _S(f"trap_{line}_temperature", _IN, "°C", 0, 150, f"{line} condensate RTD", 0.1)
        for line in TRAP_LINES
    ),
    # status contacts
    _S("agitator_running", _IN, "", 0, 1, "agitator VFD running", type=_BOOL),
    _S("agitator_fault", _IN, "", 0, 1, "agitator VFD fault", type=_BOOL),
    _S("feed_pump_fault", _IN, "", 0, 1, "feed pump drive fault", type=_BOOL),
    _S("base_pump_fault", _IN, "", 0, 1, "base pump drive fault", type=_BOOL),
    _S("harvest_pump_fault", _IN, "", 0, 1, "harvest pump drive fault", type=_BOOL),
    _S("estop_ok", _IN, "", 0, 1, "emergency-stop circuit healthy", type=_BOOL),
    _S("rupture_disc_ok", _IN, "", 0, 1, "rupture disc intact (burst sensor)", type=_BOOL),
    _S("seal_ok", _IN, "", 0, 1, "agitator mechanical seal: no leak", type=_BOOL),
    _S("hw_pressure_ok", _IN, "", 0, 1, "hot water pressure switch", type=_BOOL),
    _S("cw_pressure_ok", _IN, "", 0, 1, "cooling water pressure switch", type=_BOOL),
    _S("instrument_air_ok", _IN, "", 0, 1, "instrument air pressure switch", type=_BOOL),
    *(
        _S(f"{drive}_{what}", _IN, "", 0, 1, f"{drive} drive {what}", type=_BOOL)
        for drive in ("agitator", "feed_pump", "base_pump", "harvest_pump")
        for what in ("ready", "remote")
    ),
    *(
        _S(f"{gas}_mfc_alarm", _IN, "", 0, 1, f"{gas} MFC alarm", type=_BOOL)
        for gas in ("air", "o2", "co2")
    ),
    _S("foam_probe", _IN, "", 0, 1, "foam probe (conductive) wetted", type=_BOOL),
    _S("high_level_probe", _IN, "", 0, 1, "high level probe (conductive) wetted", type=_BOOL),
    _S("skid_leak", _IN, "", 0, 1, "leak sensor in the skid drip tray", type=_BOOL),
    _S("exhaust_heater", _OUT, "", 0, 1, "exhaust filter heater on", type=_BOOL),
    _S("sight_glass_light", _OUT, "", 0, 1, "sight-glass lamp", type=_BOOL),
    _S("alarm_beacon", _OUT, "", 0, 1, "alarm beacon on the skid", type=_BOOL),
    _S("alarm_horn", _OUT, "", 0, 1, "alarm horn on the skid", type=_BOOL),
    *(_S(f"xv_{v}", _OUT, "", 0, 1, f"{v} valve open command", type=_BOOL) for v in ONOFF_VALVES),
    *(_S(f"xv_{v}_zso", _IN, "", 0, 1, f"{v} valve open limit", type=_BOOL) for v in ONOFF_VALVES),
    *(
        _S(f"xv_{v}_zsc", _IN, "", 0, 1, f"{v} valve closed limit", type=_BOOL)
        for v in ONOFF_VALVES
    ),
)
