"""The skid instrument list of one reactor: tags, channels, ranges and alarm limits.

One table feeds both the manifest generator (points) and the instrument-alarm program
(limits), so a tag's range and its alarm cannot drift apart. Tags are per reactor; the
generator prefixes them with the unit (``R3_TT101B``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ANALOG", "DISCRETE_IN", "DISCRETE_OUT", "ONOFF_VALVES", "TRAP_LINES", "Analog"]


class Analog(NamedTuple):
    """An analogue input; ``alarm_lo``/``alarm_hi`` of None leave that limit off."""

    tag: str
    channel: str
    unit: str
    lo: float
    hi: float
    alarm_lo: float | None
    alarm_hi: float | None
    description: str


# tag | channel | unit | range lo | range hi | alarm lo | alarm hi | description
# The first rows are the bare bioreactor's own inputs (points come from its app.yaml; only the
# limits are used here): limits are instrument and equipment limits that hold from a cold
# start to harvest. Process alarms with setpoint-relative limits are the bioreactor's own.
_TABLE = """
TT101   temperature                 degC   0  150   5    42   broth temperature
TT102   jacket_temperature          degC   0  150   2    65   jacket temperature
AT201   ph                          pH     2  12    6.0  8.0  broth pH
AT301   do                          %      0  300   -    250  dissolved oxygen
LT401   level                       %      0  100   -    92   vessel level
WT401   volume                      L      0  100   -    92   working volume
AT501   biomass                     g/L    0  50    -    45   biomass
AT502   glucose                     g/L    0  50    -    30   glucose
ST601   agitator_speed              rpm    0  300   -    290  agitator speed
FT701   feed_flow                   L/h    0  100   -    5    feed flow
FT702   base_flow                   mL/min 0  1000  -    50   base flow
AT202   pco2                        mmHg   0  760   -    200  dissolved CO2
AT503   lactate                     g/L    0  20    -    15   lactate
FT301A  air_flow                    L/min  0  50    -    10   air sparge flow
FT301O  o2_flow                     L/min  0  50    -    5    O2 sparge flow
FT201C  co2_flow                    L/min  0  50    -    5    CO2 sparge flow
FQ702   base_total                  mL     0  1e6   -    -    base added
TT101B  temperature_b               degC   0  150   5    42   broth temperature, 2nd Pt100
TT101C  temperature_c               degC   0  150   5    42   broth temperature, 3rd Pt100
AT201B  ph_b                        pH     2  12    6.0  8.0  broth pH, 2nd electrode
AT301B  do_b                        %      0  300   -    250  dissolved O2, 2nd probe
TT103   jacket_inlet_temperature    degC   0  150   2    65   jacket water inlet
PT104   headspace_pressure          bar    -1 3     -0.1 0.8  headspace pressure
PT105   jacket_pressure             bar    -1 6     -    4    jacket pressure
PDT106  exhaust_filter_dp           mbar   0  200   -    100  exhaust filter dP
TT107   exhaust_heater_temperature  degC   0  150   -    80   exhaust filter heater
TT108   condenser_temperature       degC   0  100   -    60   exhaust condenser outlet
AT110   offgas_o2                   %      0  100   10   -    off-gas O2
AT111   offgas_co2                  %      0  30    -    25   off-gas CO2
FT112   offgas_flow                 L/min  0  50    -    12   off-gas flow
TT901   hw_supply_temperature       degC   0  150   50   75   hot water supply
TT902   hw_return_temperature       degC   0  150   -    75   hot water return
PT903   hw_supply_pressure          bar    0  10    1.5  6    hot water supply pressure
TT904   cw_supply_temperature       degC   0  50    -    15   cooling water supply
TT905   cw_return_temperature       degC   0  50    -    45   cooling water return
PT906   cw_supply_pressure          bar    0  10    1.5  6    cooling water supply pressure
PT907   steam_pressure              bar    0  6     1.0  3.5  clean steam supply
PT908   instrument_air_pressure     bar    0  10    4.5  8    instrument air header
PT909   process_air_pressure        bar    0  10    1.5  4    process air supply
PT910   o2_supply_pressure          bar    0  10    2    6    O2 supply
PT911   co2_supply_pressure         bar    0  10    2    6    CO2 supply
IT601   agitator_current            A      0  20    -    8    agitator motor current
WT601   agitator_torque             N·m    0  10    -    6    agitator shaft torque
TT601   agitator_motor_temperature  degC   0  150   -    90   agitator winding temperature
JT601   agitator_power              kW     0  2     -    1    agitator drive power
SY601   agitator_frequency          Hz     0  100   -    60   agitator drive frequency
ET601   agitator_dc_bus             V      0  800   450  700  agitator drive DC bus
TT602   agitator_drive_temperature  degC   0  100   -    70   agitator drive heatsink
IT701   feed_pump_current           A      0  5     -    2    feed pump current
IT702   base_pump_current           A      0  5     -    2    base pump current
IT401   harvest_pump_current        A      0  10    -    8    harvest pump current
JT701   feed_pump_power             W      0  200   -    100  feed pump power
JT702   base_pump_power             W      0  200   -    100  base pump power
JT401   harvest_pump_power          W      0  1000  -    600  harvest pump power
FQ301A  air_total                   L      0  1e7   -    -    air totaliser
FQ301O  o2_total                    L      0  1e7   -    -    O2 totaliser
FQ201C  co2_total                   L      0  1e7   -    -    CO2 totaliser
SI701   feed_pump_speed             %      0  100   -    -    feed pump speed feedback
SI702   base_pump_speed             %      0  100   -    -    base pump speed feedback
SI401   harvest_pump_speed          %      0  100   -    -    harvest pump speed feedback
ZT101H  heating_valve_position      %      0  100   -    -    hot-water valve position
ZT101C  cooling_valve_position      %      0  100   -    -    cooling-water valve position
ZT401F  fill_valve_position         %      0  100   -    -    fill valve position
ZT301A  air_mfc_position            %      0  100   -    -    air MFC valve drive
ZT301O  o2_mfc_position             %      0  100   -    -    O2 MFC valve drive
ZT201C  co2_mfc_position            %      0  100   -    -    CO2 MFC valve drive
WT701   feed_tank_weight            kg     0  50    1    -    feed bottle
WT702   base_tank_weight            kg     0  20    0.5  -    base bottle
WT402   media_tank_weight           kg     0  200   -    -    media hold tank
WT403   harvest_tank_weight         kg     0  200   -    190  harvest tank
"""

# SIP condensate RTDs, one per steamed line (same order as the plant's TRAP_LINES).
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
# Automated on/off valves: XV8nn command, ZSO8nn open limit, ZSC8nn closed limit.
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


def _num(text: str) -> float | None:
    return None if text == "-" else float(text)


def _parse(table: str) -> tuple[Analog, ...]:
    rows = []
    for line in table.strip().splitlines():
        tag, channel, unit, lo, hi, alo, ahi, *words = line.split()
        rows.append(
            Analog(tag, channel, unit, float(lo), float(hi), _num(alo), _num(ahi), " ".join(words))
        )
    return tuple(rows)


ANALOG = _parse(_TABLE) + tuple(
    Analog(f"TT9{20 + i}", f"trap_{line}_temperature", "degC", 0, 150, None, 135,
           f"SIP condensate RTD, {line.replace('_', ' ')} line")
    for i, line in enumerate(TRAP_LINES)
)  # fmt: skip

# (tag, channel, description)
DISCRETE_IN = (
    ("YS701", "feed_pump_running", "feed pump running"),
    ("YS702", "base_pump_running", "base pump running"),
    ("YS401", "harvest_pump_running", "harvest pump running"),
    ("YS601", "agitator_running", "agitator running"),
    ("YA601", "agitator_fault", "agitator drive fault"),
    ("YA701", "feed_pump_fault", "feed pump drive fault"),
    ("YA702", "base_pump_fault", "base pump drive fault"),
    ("YA401", "harvest_pump_fault", "harvest pump drive fault"),
    ("HS001", "estop_ok", "emergency-stop circuit healthy"),
    ("PSE001", "rupture_disc_ok", "rupture disc intact"),
    ("LS602", "seal_ok", "agitator mechanical seal: no leak"),
    ("PS903", "hw_pressure_ok", "hot water pressure switch"),
    ("PS906", "cw_pressure_ok", "cooling water pressure switch"),
    ("PS908", "instrument_air_ok", "instrument air pressure switch"),
    ("LS402", "foam_probe", "foam probe wetted"),
    ("LSH403", "high_level_probe", "high level probe wetted"),
    ("LS001", "skid_leak", "drip-tray leak sensor"),
    ("YR601", "agitator_ready", "agitator drive ready"),
    ("YL601", "agitator_remote", "agitator drive in remote"),
    ("YR701", "feed_pump_ready", "feed pump drive ready"),
    ("YL701", "feed_pump_remote", "feed pump drive in remote"),
    ("YR702", "base_pump_ready", "base pump drive ready"),
    ("YL702", "base_pump_remote", "base pump drive in remote"),
    ("YR401", "harvest_pump_ready", "harvest pump drive ready"),
    ("YL401", "harvest_pump_remote", "harvest pump drive in remote"),
    ("FA301A", "air_mfc_alarm", "air MFC alarm"),
    ("FA301O", "o2_mfc_alarm", "O2 MFC alarm"),
    ("FA201C", "co2_mfc_alarm", "CO2 MFC alarm"),
)
DISCRETE_OUT = (
    ("XY107", "exhaust_heater", "exhaust filter heater on"),
    ("XY002", "sight_glass_light", "sight-glass lamp"),
    ("XY003", "alarm_beacon", "alarm beacon"),
    ("XY004", "alarm_horn", "alarm horn"),
)
