"""The bioreactor plant's parameters: equipment, utilities, gassing and culture kinetics.

Its own module so that the compiled model (_bioreactor_model.py) can name the type without
importing the plant module that imports it.
"""

from __future__ import annotations

from pydantic import Field

from sim_hardware.plants._base import PlantParams

__all__ = ["BioreactorParams"]


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
