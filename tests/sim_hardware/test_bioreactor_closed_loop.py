"""The bioreactor is controllable by ordinary PI loops: temperature, pH and DO hold their bands.

These are the starting tunings for the app author (ISA form, u = Kp·(e + ∫e dt / Ti), e = SP − PV,
so every loop is reverse-acting in process terms: PV low → output up):

* Temperature 37.0 °C: Kp 15 %/°C, Ti 900 s, output −100…+100 %, split range:
  u > 0 → heating_valve = u, u < 0 → cooling_valve = −u.
* pH 7.00: Kp 200 %/pH, Ti 300 s, output −100…+100 %, split range:
  u > 0 → base_pump = u, u < 0 → co2_valve = −u.
* DO 40 %: Kp 2 %/%, Ti 300 s, output 0…200 %, sequenced:
  0…100 → air_valve = u (O2 closed), 100…200 → air_valve 100 %, o2_valve = u − 100.
  Agitator fixed at 150 rpm.
Anti-windup: integration stops while the output is saturated in the error's direction.
"""

from __future__ import annotations

import math

import pytest

from .helpers import make_driver

SENSORS = ["temperature", "ph", "do", "biomass", "glucose", "base_total"]
ACTUATORS = ["heating_valve", "cooling_valve", "co2_valve", "base_pump", "air_valve", "o2_valve"]
ACTUATORS += ["agitator"]


class PI:
    """Positional PI with conditional-integration anti-windup."""

    def __init__(self, kp: float, ti: float, lo: float, hi: float) -> None:
        self.kp, self.ti, self.lo, self.hi = kp, ti, lo, hi
        self.integral = 0.0

    def __call__(self, sp: float, pv: float, dt: float) -> float:
        e = sp - pv
        u = self.kp * e + self.integral
        if self.lo < u < self.hi or (u >= self.hi and e < 0) or (u <= self.lo and e > 0):
            self.integral += self.kp * e * dt / self.ti
        return min(max(self.kp * e + self.integral, self.lo), self.hi)


@pytest.mark.parametrize(("seed", "dt"), [(1, 1.0), (2, 0.5)])
def test_pi_loops_hold_the_bands(seed: int, dt: float) -> None:
    driver, pts = make_driver(SENSORS, ACTUATORS, seed=seed)
    temp, ph, do = PI(15.0, 900.0, -100, 100), PI(200.0, 300.0, -100, 100), PI(2.0, 300.0, 0, 200)
    hours = 3.0
    worst = {"temperature": 0.0, "ph": 0.0, "do": 0.0}
    used = {"heating_valve": 0.0, "cooling_valve": 0.0, "co2_valve": 0.0, "o2_valve": 0.0}
    x0: float | None = None
    for k in range(round(hours * 3600 / dt) + 1):
        now = round(k * dt * 1e9)
        driver.read_inputs(now)
        t, ph_pv, do_pv = pts["temperature"].value, pts["ph"].value, pts["do"].value
        x0 = pts["biomass"].value if x0 is None else x0
        u = temp(37.0, t, dt)
        pts["heating_valve"].value, pts["cooling_valve"].value = max(u, 0.0), max(-u, 0.0)
        u = ph(7.0, ph_pv, dt)
        pts["base_pump"].value, pts["co2_valve"].value = max(u, 0.0), max(-u, 0.0)
        u = do(40.0, do_pv, dt)
        pts["air_valve"].value, pts["o2_valve"].value = min(u, 100.0), max(u - 100.0, 0.0)
        pts["agitator"].value = 150.0
        driver.write_outputs(now)
        for ch in used:
            used[ch] = max(used[ch], pts[ch].value)
        if k * dt >= 3600.0:  # settled after the first hour; judged over hours 1–3
            for ch, sp in (("temperature", 37.0), ("ph", 7.0), ("do", 40.0)):
                worst[ch] = max(worst[ch], abs(pts[ch].value - sp))
    plant = driver.plant
    assert worst["temperature"] <= 0.2, worst
    assert worst["ph"] <= 0.05, worst
    assert worst["do"] <= 5.0, worst
    # the plant itself (not only the noisy measurement) sits at the setpoints
    assert plant.read("temperature") == pytest.approx(37.0, abs=0.2)
    assert plant.read("ph") == pytest.approx(7.0, abs=0.05)
    assert plant.read("do") == pytest.approx(40.0, abs=5.0)
    # the run had real work to do: heat-up, CO2 to bring pH down, O2 enrichment as cells grow
    assert used["heating_valve"] == 100.0
    assert used["co2_valve"] > 20.0
    assert used["o2_valve"] > 5.0
    assert x0 is not None
    assert plant.read("biomass") > 1.8 * x0
    sensors = [s.name for s in plant.signals if s.direction.value == "in" and s.type.is_numeric]
    assert all(math.isfinite(float(plant.read(name))) for name in sensors)
