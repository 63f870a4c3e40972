"""The bioreactor's state and Euler step, compiled with Cython when built (see the .pxd)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim_hardware.components import Motor, Pump, Valve

if TYPE_CHECKING:
    from sim_hardware.plants._bioreactor_params import BioreactorParams

__all__ = ["SENSORS", "BioreactorModel", "constants"]

VESSEL_L = 100.0
MAX_RPM = 300.0
CP = 4180.0  # J/(kg K), broth and jacket water taken as water
AIR_O2 = 0.2095
AIR_CO2 = 0.0004
# Private copies for the step: the .pxd makes them C doubles (the public names stay Python).
_VESSEL_L = VESSEL_L
_CP = CP
_AIR_O2 = AIR_O2
_AIR_CO2 = AIR_CO2
_MW_LACTATE = 90.08
_PER_MAX_RPM = 1.0 / MAX_RPM

# The analogue sensor channels the model reads (``BioreactorModel.value``), by code: position.
SENSORS = (
    "temperature",
    "jacket_temperature",
    "ph",
    "do",
    "pco2",
    "level",
    "volume",
    "biomass",
    "glucose",
    "lactate",
    "agitator_speed",
    "air_flow",
    "o2_flow",
    "co2_flow",
    "feed_flow",
    "base_flow",
    "base_total",
)


def constants(p: BioreactorParams) -> tuple[float, ...]:
    """Parameter products the step needs, computed once per build (params are frozen).

    Each product keeps the left-to-right order of the expression it came from, so the
    floats are the same as when the step computed them itself (bit-identical traces).
    The step unpacks them in this order.
    """
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
        100.0 / AIR_O2,
        p.co2_henry_mm,
        p.o2_sat_mm,
        p.co2_henry_mm * AIR_CO2,
        p.rq,
        p.ua_jacket_w_k,
        p.agitator_power_w,
        p.ua_ambient_w_k,
        p.ambient_c,
        p.hot_water_c,
        p.cooling_water_c,
        p.jacket_volume_l,
        p.jacket_volume_l * CP,
        p.kd_per_h * ts_h,
        p.base_conc_m,
        p.media_glucose_g_l,
        p.feed_glucose_g_l,
        p.media_bicarbonate_mm,
        p.media_c,
    )


class BioreactorModel:
    """State in engineering units, the ten final elements and the step's parameter products.

    The plant reads and commands the components the model builds. ``k`` is
    :func:`constants` of the params. Every expression keeps the operand order the
    step always had, and the build forbids FMA contraction and fast-math: the compiled and the
    interpreted model give bit-identical states.
    """

    __slots__ = (
        "S",
        "T",
        "Tj",
        "V",
        "X",
        "agitator",
        "air",
        "alk",
        "base",
        "base_total",
        "co2",
        "co2_mm",
        "cooling",
        "do",
        "feed",
        "fill",
        "harvest",
        "heating",
        "henry",
        "k",
        "lac",
        "mu",
        "o2",
        "ph",
        "pka",
    )

    def __init__(self, p: BioreactorParams) -> None:
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
        self.k = constants(p)
        self.pka = p.pka
        self.henry = p.co2_henry_mm
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
        self.mu = 0.0

    def values(self, codes: list[int]) -> list[float]:
        """The true values of the sensors numbered ``codes``, in one call (the driver's read)."""
        return [self.value(c) for c in codes]

    def value(self, code: int) -> float:
        """The true value of sensor ``SENSORS[code]`` (one C switch when compiled)."""
        if code == 0:
            return self.T
        elif code == 1:
            return self.Tj
        elif code == 2:
            return self.ph
        elif code == 3:
            return self.do
        elif code == 4:
            return self.co2_mm * 760.0 / self.henry
        elif code == 5:
            return 100.0 * self.V / _VESSEL_L
        elif code == 6:
            return self.V
        elif code == 7:
            return self.X
        elif code == 8:
            return self.S
        elif code == 9:
            return self.lac
        elif code == 10:
            return self.agitator.speed
        elif code == 11:
            return self.air.flow()
        elif code == 12:
            return self.o2.flow()
        elif code == 13:
            return self.co2.flow()
        elif code == 14:
            return self.feed.flow()
        elif code == 15:
            return self.base.flow()
        elif code == 16:
            return self.base_total
        raise IndexError(f"no sensor {code} (codes are positions in SENSORS)")

    def update_ph(self) -> None:
        alk = self.alk if self.alk > 1e-3 else 1e-3
        co2 = self.co2_mm if self.co2_mm > 1e-3 else 1e-3
        ph = self.pka + math.log10(alk / co2)
        self.ph = 2.0 if ph < 2.0 else 12.0 if ph > 12.0 else ph

    def step(self, dt: float, utility_ok: dict[str, bool]) -> None:
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
        ) = self.k
        # the plant's actuator order (independent parts: the order changes no float)
        self.heating.step(dt)
        self.cooling.step(dt)
        self.co2.step(dt)
        self.air.step(dt)
        self.o2.step(dt)
        self.base.step(dt)
        self.agitator.step(dt)
        self.feed.step(dt)
        self.fill.step(dt)
        self.harvest.step(dt)
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
        f_env = math.exp(-(dT_opt * dT_opt + dph * dph))
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
        self.V = 0.0 if V < 0.0 else _VESSEL_L if V > _VESSEL_L else V
        self.T, self.Tj = T, Tj
        self.X = X if X > 0.0 else 0.0
        self.S = S if S > 0.0 else 0.0
        self.lac = lac if lac > 0.0 else 0.0
        self.do = 0.0 if do < 0.0 else 500.0 if do > 500.0 else do
        self.co2_mm = co2 if co2 > 0.0 else 0.0
        self.alk = alk
        self.update_ph()
