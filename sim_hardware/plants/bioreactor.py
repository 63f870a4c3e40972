"""A 100 L pilot-scale stirred-tank cell-culture bioreactor: temperature, pH, DO, growth, level.

Model (explicit Euler, states in engineering units):

* Temperature: broth ↔ jacket (UA), jacket fed by a hot-water and a cooling-water valve
  (split range), heat loss to ambient, agitation power, cold liquid additions.
* pH: bicarbonate buffer, pH = pKa + log10([HCO3-]/[CO2]). CO2 sparge raises dissolved CO2
  (lowers pH); the base pump (1 M NaOH) converts CO2 to HCO3- (raises pH); lactate
  from glycolysis consumes HCO3-; aeration strips CO2; cells respire CO2 (RQ).
* DO (% air saturation): kLa from agitation speed and total sparge flow, O2-enriched gas
  raises the saturation value, uptake ∝ biomass.
* Growth: Monod on glucose with temperature, pH and DO factors; glucose uptake (yield +
  maintenance), lactate yield; feed pump (concentrated glucose), media fill, harvest.

``time_scale`` multiplies every biological rate (growth, uptake, lactate, respiration) so a
4-hour demo shows what a ~40-hour culture would (default 10; set 1.0 for real-time biology).
Physical dynamics (heat, gas transfer, valves) are never scaled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hal import Direction, IecType
from sim_hardware.plants._base import Actuator, Plant, Signal
from sim_hardware.plants._bioreactor_model import MAX_RPM as MAX_RPM
from sim_hardware.plants._bioreactor_model import SENSORS, VESSEL_L, BioreactorModel
from sim_hardware.plants._bioreactor_params import BioreactorParams

__all__ = ["Bioreactor", "BioreactorParams"]

_IN, _OUT, _BOOL = Direction.IN, Direction.OUT, IecType.BOOL


_S = Signal
_SIGNALS = (
    _S("temperature", _IN, "°C", 0, 150, "broth temperature (Pt100)", 0.02),
    _S("jacket_temperature", _IN, "°C", 0, 150, "jacket water temperature", 0.05),
    _S("ph", _IN, "pH", 2, 12, "broth pH (glass electrode)", 0.005),
    _S("do", _IN, "%", 0, 300, "dissolved O2, % air saturation", 0.3),
    _S("pco2", _IN, "mmHg", 0, 760, "dissolved CO2 partial pressure", 0.5),
    _S("level", _IN, "%", 0, 100, "liquid level, % of 100 L vessel", 0.1),
    _S("volume", _IN, "L", 0, VESSEL_L, "working volume (load cells)", 0.05),
    _S("biomass", _IN, "g/L", 0, 50, "biomass dry weight (capacitance probe)", 0.01),
    _S("glucose", _IN, "g/L", 0, 50, "glucose (online analyser)", 0.03),
    _S("lactate", _IN, "g/L", 0, 20, "lactate (online analyser)", 0.02),
    _S("agitator_speed", _IN, "rpm", 0, MAX_RPM, "agitator speed feedback", 0.5),
    _S("air_flow", _IN, "L/min", 0, 50, "air sparge flow (MFC)", 0.01),
    _S("o2_flow", _IN, "L/min", 0, 50, "O2 sparge flow (MFC)", 0.005),
    _S("co2_flow", _IN, "L/min", 0, 50, "CO2 sparge flow (MFC)", 0.005),
    _S("feed_flow", _IN, "L/h", 0, 100, "feed flow (balance)", 0.005),
    _S("base_flow", _IN, "mL/min", 0, 1000, "base flow (balance)", 0.05),
    _S("base_total", _IN, "mL", 0, 1e6, "base added since start (totaliser)"),
    _S("feed_pump_running", _IN, "", 0, 1, "feed pump running feedback", type=_BOOL),
    _S("base_pump_running", _IN, "", 0, 1, "base pump running feedback", type=_BOOL),
    _S("harvest_pump_running", _IN, "", 0, 1, "harvest pump running feedback", type=_BOOL),
    _S("heating_valve", _OUT, "%", 0, 100, "hot-water valve to jacket"),
    _S("cooling_valve", _OUT, "%", 0, 100, "cooling-water valve to jacket"),
    _S("co2_valve", _OUT, "%", 0, 100, "CO2 sparge MFC setpoint"),
    _S("air_valve", _OUT, "%", 0, 100, "air sparge MFC setpoint"),
    _S("o2_valve", _OUT, "%", 0, 100, "O2 enrichment MFC setpoint"),
    _S("base_pump", _OUT, "%", 0, 100, "base (1 M NaOH) pump speed"),
    _S("agitator", _OUT, "rpm", 0, MAX_RPM, "agitator speed setpoint"),
    _S("feed_pump", _OUT, "%", 0, 100, "glucose feed pump speed"),
    _S("fill_valve", _OUT, "%", 0, 100, "media fill valve"),
    _S("harvest_pump", _OUT, "%", 0, 100, "harvest pump speed"),
)

_INITIAL = {
    "volume": "L working volume (default 60)",
    "temperature": "°C broth (default 25)",
    "jacket_temperature": "°C jacket (default 25)",
    "do": "% air saturation (default 100)",
    "biomass": "g/L (default 0.3)",
    "glucose": "g/L (default 6)",
    "lactate": "g/L (default 0)",
    "bicarbonate": "mM HCO3- (default 24)",
    "ph": "pH (default 7.3); sets dissolved CO2 from the bicarbonate",
    "agitator_speed": "rpm (default 0)",
}

# What a broth can be at the start: liquid water, at most the vessel, the feed's glucose.
_INITIAL_RANGES = {
    "volume": (0.0, VESSEL_L),
    "temperature": (0.0, 100.0),
    "jacket_temperature": (0.0, 100.0),
    "do": (0.0, 300.0),
    "biomass": (0.0, 100.0),
    "glucose": (0.0, 400.0),
    "lactate": (0.0, 100.0),
    "bicarbonate": (0.0, 500.0),
    "ph": (2.0, 12.0),
    "agitator_speed": (0.0, MAX_RPM),
}


class _ModelState:
    """A state variable of the model, read and written as an attribute of the plant."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, plant: Bioreactor, owner: type | None = None) -> float:
        value: float = getattr(plant._model, self.name)
        return value

    def __set__(self, plant: Bioreactor, value: float) -> None:
        setattr(plant._model, self.name, value)


class Bioreactor(Plant):
    """The bioreactor plant: channels, initial values, snapshots; the model steps the physics."""

    kind = "bioreactor"
    Params = BioreactorParams
    signals = _SIGNALS
    utilities = ("cooling_water", "hot_water")

    params: BioreactorParams
    _STATE = ("V", "T", "Tj", "X", "S", "lac", "alk", "do", "co2_mm", "base_total", "ph", "mu")
    # plant.T etc. as before the model moved out (skid.py, tests, initial values)
    V = _ModelState()
    T = _ModelState()
    Tj = _ModelState()
    X = _ModelState()
    S = _ModelState()
    lac = _ModelState()
    alk = _ModelState()
    do = _ModelState()
    co2_mm = _ModelState()
    base_total = _ModelState()
    ph = _ModelState()
    mu = _ModelState()

    def _build(self) -> None:
        m = self._model = BioreactorModel(self.params)
        # the model's parts: skid.py, readers and faults reach them as plant attributes
        self.heating, self.cooling, self.air, self.o2 = m.heating, m.cooling, m.air, m.o2
        self.co2, self.fill, self.base, self.feed = m.co2, m.fill, m.base, m.feed
        self.harvest, self.agitator = m.harvest, m.agitator
        self._actuators: dict[str, Actuator] = {
            "heating_valve": m.heating,
            "cooling_valve": m.cooling,
            "co2_valve": m.co2,
            "air_valve": m.air,
            "o2_valve": m.o2,
            "base_pump": m.base,
            "agitator": m.agitator,
            "feed_pump": m.feed,
            "fill_valve": m.fill,
            "harvest_pump": m.harvest,
        }
        self._set_initial("ph", 7.3)

    def initial_keys(self) -> dict[str, str]:
        return dict(_INITIAL)

    def initial_ranges(self) -> dict[str, tuple[float, float]]:
        return dict(_INITIAL_RANGES)

    def _set_initial(self, key: str, value: float) -> None:
        if key == "ph":
            ph = min(max(value, 2.0), 12.0)
            self.co2_mm = max(self.alk, 1e-3) / 10.0 ** (ph - self.params.pka)
            self.ph = ph
            return
        if key == "agitator_speed":
            self.agitator.speed = self.agitator.command = min(max(value, 0.0), MAX_RPM)
            return
        attr = {
            "volume": "V",
            "temperature": "T",
            "jacket_temperature": "Tj",
            "do": "do",
            "biomass": "X",
            "glucose": "S",
            "lactate": "lac",
            "bicarbonate": "alk",
        }[key]
        if attr == "V":
            value = min(value, VESSEL_L)
        elif attr not in ("T", "Tj"):
            value = max(value, 0.0)
        setattr(self, attr, value)
        if attr == "alk":
            self._model.update_ph()

    def actuators(self) -> dict[str, Actuator]:
        return self._actuators

    def step(self, dt: float) -> None:
        self._model.step(dt, self.utility_ok)
        self.time += dt

    def readers(self) -> dict[str, Callable[[], float | bool]]:
        # closures over self (not over the model or components): restore() rebuilds them
        readers: dict[str, Callable[[], float | bool]] = {
            channel: self._sensor(code) for code, channel in enumerate(SENSORS)
        }
        readers["feed_pump_running"] = lambda: self.feed.running
        readers["base_pump_running"] = lambda: self.base.running
        readers["harvest_pump_running"] = lambda: self.harvest.running
        return readers

    def _sensor(self, code: int) -> Callable[[], float]:
        return lambda: self._model.value(code)

    def values_reader(self, channels: Sequence[str]) -> Callable[[], list[float | bool]]:
        # The model reads its own fields in one (compiled) call. A subclass that changes what
        # one of these channels reads must override this too.
        if not all(ch in SENSORS for ch in channels):
            return super().values_reader(channels)
        codes = [SENSORS.index(ch) for ch in channels]
        return lambda: self._model.values(codes)  # over self, as the readers

    def _state(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self._STATE}

    def _load_state(self, state: Mapping[str, float]) -> None:
        for k in self._STATE:
            setattr(self, k, float(state[k]))
