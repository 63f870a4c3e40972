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

import math
from collections.abc import Callable, Mapping

from pydantic import Field

from hal import Direction, IecType
from sim_hardware.components import Motor, Pump, Valve
from sim_hardware.plants._base import Actuator, Plant, PlantParams, Signal

__all__ = ["Bioreactor", "BioreactorParams"]

_IN, _OUT, _BOOL = Direction.IN, Direction.OUT, IecType.BOOL
_CP = 4180.0  # J/(kg K), broth and jacket water taken as water
_MW_LACTATE = 90.08
_AIR_O2 = 0.2095
_AIR_CO2 = 0.0004
VESSEL_L = 100.0
MAX_RPM = 300.0
_LOG10 = math.log10
_EXP = math.exp
_PER_MAX_RPM = 1.0 / MAX_RPM


class BioreactorParams(PlantParams):
    """Equipment, utilities and culture kinetics (defaults: a CHO-like fed-batch, 100 L)."""

    time_scale: float = Field(10.0, gt=0, le=1000, description="biology speed-up factor")
    # utilities and heat transfer
    ambient_c: float = Field(22.0, description="room temperature")
    hot_water_c: float = Field(60.0, description="hot-water supply temperature")
    cooling_water_c: float = Field(8.0, description="cooling-water supply temperature")
    media_c: float = Field(20.0, description="temperature of fill media, feed and base")
    ua_jacket_w_k: float = Field(150.0, gt=0, description="jacket↔broth UA at ≥30 L")
    ua_ambient_w_k: float = Field(4.0, ge=0, description="broth↔room UA")
    jacket_volume_l: float = Field(15.0, gt=0)
    hot_max_lpm: float = Field(20.0, ge=0, description="hot water flow, heating valve 100 %")
    cold_max_lpm: float = Field(20.0, ge=0, description="cooling water flow, valve 100 %")
    water_valve_stroke_s: float = Field(10.0, ge=0, description="heating/cooling valve stroke")
    agitator_power_w: float = Field(40.0, ge=0, description="shaft power at 300 rpm")
    agitator_ramp_rpm_s: float = Field(10.0, gt=0)
    # liquid handling
    fill_max_lpm: float = Field(5.0, ge=0, description="media fill, valve 100 %")
    harvest_max_lpm: float = Field(5.0, ge=0, description="harvest pump, 100 %")
    feed_max_lph: float = Field(2.0, ge=0, description="feed pump, 100 %")
    feed_glucose_g_l: float = Field(400.0, ge=0, description="glucose in the feed")
    base_max_ml_min: float = Field(20.0, ge=0, description="base pump, 100 %")
    base_conc_m: float = Field(1.0, gt=0, description="NaOH concentration")
    media_glucose_g_l: float = Field(6.0, ge=0)
    media_bicarbonate_mm: float = Field(24.0, ge=0)
    pump_ramp_s: float = Field(1.0, ge=0)
    # gassing (mass flow controllers) and transfer
    air_max_lpm: float = Field(5.0, ge=0)
    o2_max_lpm: float = Field(2.0, ge=0)
    co2_max_lpm: float = Field(2.0, ge=0)
    mfc_response_s: float = Field(2.0, ge=0, description="gas MFC 0→100 % time")
    kla_ref_per_h: float = Field(20.0, ge=0, description="O2 kLa at 150 rpm, 2 L/min gas")
    kla_surface_per_h: float = Field(0.5, ge=0, description="headspace kLa at 150 rpm")
    o2_sat_mm: float = Field(0.214, gt=0, description="DO at 100 % air sat., 37 °C")
    co2_henry_mm: float = Field(23.4, gt=0, description="dissolved CO2 under 1 atm CO2")
    pka: float = Field(6.1, description="apparent pK of CO2/HCO3- at 37 °C")
    # kinetics (per hour of culture time, before time_scale)
    mu_max_per_h: float = Field(0.035, ge=0)
    ks_glucose_g_l: float = Field(0.2, gt=0)
    kd_per_h: float = Field(0.002, ge=0, description="death rate")
    yxs_g_g: float = Field(0.4, gt=0, description="biomass per glucose")
    ms_g_g_h: float = Field(0.02, ge=0, description="glucose maintenance")
    ylac_g_g: float = Field(0.4, ge=0, description="lactate per glucose consumed")
    yxo_g_mmol: float = Field(0.1, gt=0, description="biomass per O2")
    mo_mmol_g_h: float = Field(0.8, ge=0, description="O2 maintenance")
    rq: float = Field(1.0, ge=0, description="respiratory quotient CO2/O2")
    t_opt_c: float = Field(37.0)
    t_width_c: float = Field(6.0, gt=0)
    ph_opt: float = Field(7.0)
    ph_width: float = Field(0.5, gt=0)
    k_do_pct: float = Field(5.0, gt=0)


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


class Bioreactor(Plant):
    """The bioreactor model; see the module docstring for the physics."""

    kind = "bioreactor"
    Params = BioreactorParams
    signals = _SIGNALS
    utilities = ("cooling_water", "hot_water")

    params: BioreactorParams

    def _build(self) -> None:
        p = self.params
        ws, gs, pr = p.water_valve_stroke_s, p.mfc_response_s, p.pump_ramp_s
        self.heating = Valve(max_flow=p.hot_max_lpm, stroke_time_s=ws)
        self.cooling = Valve(max_flow=p.cold_max_lpm, stroke_time_s=ws)
        self.air = Valve(max_flow=p.air_max_lpm, stroke_time_s=gs)
        self.o2 = Valve(max_flow=p.o2_max_lpm, stroke_time_s=gs)
        self.co2 = Valve(max_flow=p.co2_max_lpm, stroke_time_s=gs)
        self.fill = Valve(max_flow=p.fill_max_lpm, stroke_time_s=ws)
        self.base = Pump(max_flow=p.base_max_ml_min, ramp_s=pr)
        self.feed = Pump(max_flow=p.feed_max_lph, ramp_s=pr)
        self.harvest = Pump(max_flow=p.harvest_max_lpm, ramp_s=pr)
        self.agitator = Motor(max_rpm=MAX_RPM, ramp_rpm_s=p.agitator_ramp_rpm_s)
        self._actuators: dict[str, Actuator] = {
            "heating_valve": self.heating,
            "cooling_valve": self.cooling,
            "co2_valve": self.co2,
            "air_valve": self.air,
            "o2_valve": self.o2,
            "base_pump": self.base,
            "agitator": self.agitator,
            "feed_pump": self.feed,
            "fill_valve": self.fill,
            "harvest_pump": self.harvest,
        }
        self._components = tuple(self._actuators.values())
        self._k = self._constants()
        self.V = 60.0
        self.T = 25.0
        self.Tj = 25.0
        self.X = 0.3
        self.S = 6.0
        self.lac = 0.0
        self.alk = p.media_bicarbonate_mm
        self.do = 100.0
        self.base_total = 0.0
        self.co2_mm = 0.0
        self.ph = 7.3
        self._set_initial("ph", 7.3)
        self.mu = 0.0

    def initial_keys(self) -> dict[str, str]:
        return dict(_INITIAL)

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
            self._update_ph()

    def actuators(self) -> dict[str, Actuator]:
        return self._actuators

    def _update_ph(self) -> None:
        alk = self.alk if self.alk > 1e-3 else 1e-3
        co2 = self.co2_mm if self.co2_mm > 1e-3 else 1e-3
        ph = self.params.pka + _LOG10(alk / co2)
        self.ph = 2.0 if ph < 2.0 else 12.0 if ph > 12.0 else ph

    def _constants(self) -> tuple[float, ...]:
        """Parameter products the step needs, computed once per build (params are frozen).

        Each product keeps the left-to-right order of the expression it came from, so the
        floats are the same as when the step computed them itself (bit-identical traces).
        """
        p = self.params
        ts_h = p.time_scale * (1.0 / 3600.0)
        return (
            p.t_opt_c,
            p.t_width_c,
            p.ph_opt,
            p.ph_width,
            p.k_do_pct,
            p.mu_max_per_h * ts_h,
            p.ks_glucose_g_l,
            p.yxs_g_g,
            p.ms_g_g_h * ts_h,
            p.ylac_g_g,
            p.yxo_g_mmol,
            p.mo_mmol_g_h * ts_h,
            p.kla_surface_per_h * (1.0 / 3600.0),
            p.kla_ref_per_h * (1.0 / 3600.0),
            100.0 / _AIR_O2,
            p.co2_henry_mm,
            p.o2_sat_mm,
            p.co2_henry_mm * _AIR_CO2,
            p.rq,
            p.ua_jacket_w_k,
            p.agitator_power_w,
            p.ua_ambient_w_k,
            p.ambient_c,
            p.hot_water_c,
            p.cooling_water_c,
            p.jacket_volume_l,
            p.jacket_volume_l * _CP,
            p.kd_per_h * ts_h,
            p.base_conc_m,
            p.media_glucose_g_l,
            p.feed_glucose_g_l,
            p.media_bicarbonate_mm,
            p.media_c,
        )

    def step(self, dt: float) -> None:  # one flat step: locals are what keep it fast
        (
            t_opt,
            t_width,
            ph_opt,
            ph_width,
            k_do,
            mu_max_ts,
            ks,
            yxs,
            ms_ts,
            ylac,
            yxo,
            mo_ts,
            kla_surf_s,
            kla_ref_s,
            do_per_o2,
            henry,
            o2_sat_mm,
            co2_air,
            rq,
            ua_jacket,
            agit_w,
            ua_amb,
            ambient,
            hot_c,
            cold_c,
            vj,
            vj_cp,
            kd_ts,
            base_conc,
            media_glc,
            feed_glc,
            media_bic,
            media_c,
        ) = self._k
        for c in self._components:
            c.step(dt)
        V, T, Tj, X, S, do, co2, alk = (
            self.V,
            self.T,
            self.Tj,
            self.X,
            self.S,
            self.do,
            self.co2_mm,
            self.alk,
        )
        N = self.agitator.speed
        n_rel = N * (1.0 / 150.0)
        # liquid flows, L/s
        f_fill = self.fill.flow() * (1.0 / 60.0)
        f_feed = self.feed.flow() * (1.0 / 3600.0)
        base_ml_s = self.base.flow() * (1.0 / 60.0)
        f_base = base_ml_s * 1e-3
        f_harv = self.harvest.flow() * (1.0 / 60.0) if V > 0.0 else 0.0
        f_in = f_fill + f_feed + f_base
        v_safe = V if V > 1.0 else 1.0

        # --- biology (rates per second of plant time) ---
        dT_opt = (T - t_opt) / t_width
        dph = (self.ph - ph_opt) / ph_width
        f_env = _EXP(-(dT_opt * dT_opt + dph * dph))
        f_do = do / (k_do + do)
        s_pos = S if S > 0.0 else 0.0
        mu = mu_max_ts * s_pos / (ks + s_pos) * f_env * f_do
        qs = mu / yxs + ms_ts * s_pos / (s_pos + 0.05)
        glc_up = qs * X  # g/L/s
        lac_mm = ylac * glc_up * (1000.0 / _MW_LACTATE)
        our = (mu / yxo + mo_ts * f_do) * X  # mmol/L/s
        self.mu = mu

        # --- gas transfer ---
        q_air = self.air.flow()
        q_o2 = self.o2.flow()
        q_co2 = self.co2.flow()
        q_tot = q_air + q_o2 + q_co2
        kla_surf = kla_surf_s * (0.5 + 0.5 * n_rel)
        if q_tot > 1e-9:
            kla = kla_ref_s * (q_tot * 0.5) ** 0.7 * (0.25 + 0.75 * n_rel**1.5)
            inv = 1.0 / q_tot
            do_star = do_per_o2 * (_AIR_O2 * q_air + q_o2) * inv
            co2_star = henry * (_AIR_CO2 * q_air + q_co2) * inv
        else:
            kla = do_star = co2_star = 0.0
        o2_sat = o2_sat_mm * (1.0 + 0.017 * (37.0 - T))
        d_do = kla * (do_star - do) + kla_surf * (100.0 - do) - our * 100.0 / o2_sat
        d_co2 = 0.9 * (kla * (co2_star - co2) + kla_surf * (co2_air - co2)) + rq * our + lac_mm
        d_alk = -lac_mm

        # --- heat ---
        ua = ua_jacket * (V / 30.0 if V < 30.0 else 1.0)
        q_j = ua * (Tj - T)
        p_agit = agit_w * (N * _PER_MAX_RPM) ** 3
        dT = (q_j - ua_amb * (T - ambient) + p_agit) / (v_safe * _CP)
        utility_ok = self.utility_ok
        f_hot = self.heating.flow() * (1.0 / 60.0) if utility_ok["hot_water"] else 0.0
        f_cold = self.cooling.flow() * (1.0 / 60.0) if utility_ok["cooling_water"] else 0.0
        dTj = (f_hot * (hot_c - Tj) + f_cold * (cold_c - Tj)) / vj - (
            q_j + 2.0 * (Tj - ambient)
        ) / vj_cp

        # --- integrate ---
        T += dT * dt
        Tj += dTj * dt
        X += (mu - kd_ts) * X * dt
        S -= glc_up * dt
        lac = self.lac + lac_mm * (_MW_LACTATE / 1000.0) * dt
        do += d_do * dt
        co2 += d_co2 * dt
        alk += d_alk * dt
        if base_ml_s > 0.0:
            nb = base_ml_s * base_conc * dt / v_safe  # mmol/L of OH- this step
            alk += nb
            co2 = co2 - nb if co2 > nb else 0.0
            self.base_total += base_ml_s * dt
        if f_in > 0.0:
            # additions mix in (fraction d of the broth is new liquid); d ≤ 1 keeps it stable
            d = f_in * dt / (V + f_in * dt)
            fd = f_fill * dt / (V + f_in * dt)
            X -= d * X
            S += fd * media_glc + f_feed * dt / (V + f_in * dt) * feed_glc
            S -= d * S
            lac -= d * lac
            alk += fd * media_bic - d * alk
            co2 += fd * 1.0 - d * co2
            do += fd * 100.0 - d * do
            T += d * (media_c - T)
        V += (f_in - f_harv) * dt
        self.V = 0.0 if V < 0.0 else VESSEL_L if V > VESSEL_L else V
        self.T, self.Tj = T, Tj
        self.X = X if X > 0.0 else 0.0
        self.S = S if S > 0.0 else 0.0
        self.lac = lac if lac > 0.0 else 0.0
        self.do = 0.0 if do < 0.0 else 500.0 if do > 500.0 else do
        self.co2_mm = co2 if co2 > 0.0 else 0.0
        self.alk = alk
        self._update_ph()
        self.time += dt

    def readers(self) -> dict[str, Callable[[], float | bool]]:
        # closures over self (not over components) stay valid when restore() rebuilds parts
        return {
            "temperature": lambda: self.T,
            "jacket_temperature": lambda: self.Tj,
            "ph": lambda: self.ph,
            "do": lambda: self.do,
            "pco2": lambda: self.co2_mm * 760.0 / self.params.co2_henry_mm,
            "level": lambda: 100.0 * self.V / VESSEL_L,
            "volume": lambda: self.V,
            "biomass": lambda: self.X,
            "glucose": lambda: self.S,
            "lactate": lambda: self.lac,
            "agitator_speed": lambda: self.agitator.speed,
            "air_flow": lambda: self.air.flow(),
            "o2_flow": lambda: self.o2.flow(),
            "co2_flow": lambda: self.co2.flow(),
            "feed_flow": lambda: self.feed.flow(),
            "base_flow": lambda: self.base.flow(),
            "base_total": lambda: self.base_total,
            "feed_pump_running": lambda: self.feed.running,
            "base_pump_running": lambda: self.base.running,
            "harvest_pump_running": lambda: self.harvest.running,
        }

    _STATE = ("V", "T", "Tj", "X", "S", "lac", "alk", "do", "co2_mm", "base_total", "ph", "mu")

    def _state(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self._STATE}

    def _load_state(self, state: Mapping[str, float]) -> None:
        for k in self._STATE:
            setattr(self, k, float(state[k]))
