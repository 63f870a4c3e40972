"""Process and equipment alarms: T, pH, DO limits, high level, feed-pump failure, pH drift."""

from __future__ import annotations

from typing import Any

from runtime import AppContext, CycleContext, Program
from runtime.blocks import ALARM, TON


class Alarms(Program):
    """Low limits arm only in GROW (heat-up from 25 °C would otherwise alarm every batch)."""

    VARS = {"ph_prev": 7.0, "ph_rate": 0.0}
    ph_prev: float
    ph_rate: float

    def __init__(self, app: AppContext) -> None:
        super().__init__(app)
        pt = app.point
        self.tt, self.ph, self.do, self.lt = pt("TT101"), pt("AT201"), pt("AT301"), pt("LT401")
        self.feed_cmd, self.feed_flow = pt("P701F"), pt("FT701")
        self.temp_sp = app.param("temp_sp")
        self.ph_sp = app.param("ph_sp")
        self.temp = ALARM(
            TEXT="TT101 broth temperature",
            DEADBAND=0.2,
            DELAY=10.0,
            H_EN=True,
            HH_EN=True,
            LATCH=True,
        )
        self.ph_alarm = ALARM(TEXT="AT201 pH", DEADBAND=0.02, DELAY=30.0, LATCH=True)
        self.do_alarm = ALARM(
            TEXT="AT301 dissolved oxygen", L=20.0, LL=10.0, DEADBAND=2.0, DELAY=30.0, LATCH=True
        )
        self.level = ALARM(
            TEXT="LT401 vessel level",
            H=90.0,
            HH=95.0,
            H_EN=True,
            HH_EN=True,
            DEADBAND=1.0,
            DELAY=5.0,
            LATCH=True,
        )
        self.feed_fail = ALARM(
            TEXT="P701F feed pump: no flow while commanded", H=0.5, H_EN=True, LATCH=True
        )
        self.feed_nf = TON(PT=30.0)
        self.ph_drift = ALARM(TEXT="AT201 pH drifting (rate check)", H=0.5, H_EN=True, LATCH=True)
        self.drift_on = TON(PT=60.0)

    def execute(self, ctx: CycleContext) -> None:
        batch: Any = self.app.program("batch")
        grow = batch.step == "GROW" and batch.control_on
        sp = self.temp_sp.value
        self.temp(
            ctx,
            IN=self.tt.value,
            H=sp + 1.0,
            HH=sp + 2.0,
            L=sp - 1.0,
            LL=sp - 2.0,
            L_EN=grow,
            LL_EN=grow,
            BAD=self.tt.quality == 0,
        )
        psp = self.ph_sp.value
        self.ph_alarm(
            ctx,
            IN=self.ph.value,
            H=psp + 0.2,
            L=psp - 0.2,
            H_EN=grow,
            L_EN=grow,
            BAD=self.ph.quality == 0,
        )
        self.do_alarm(ctx, IN=self.do.value, L_EN=grow, LL_EN=grow, BAD=self.do.quality == 0)
        self.level(ctx, IN=self.lt.value, BAD=self.lt.quality == 0)
        self.feed_nf(ctx, IN=self.feed_cmd.value > 5.0 and self.feed_flow.value < 0.05)
        self.feed_fail(ctx, IN=1.0 if self.feed_nf.Q else 0.0)
        self._ph_rate(ctx, grow)

    def _ph_rate(self, ctx: CycleContext, grow: bool) -> None:
        # A controlled pH that keeps moving one way for a minute at > 0.1 pH/h while the loop
        # holds its setpoint points at a drifting probe, not at the process.
        if ctx.dt > 0.0:
            raw = (self.ph.value - self.ph_prev) / ctx.dt * 3600.0
            self.ph_rate += (raw - self.ph_rate) * min(1.0, ctx.dt / 120.0)
        self.ph_prev = self.ph.value
        self.drift_on(ctx, IN=grow and abs(self.ph_rate) > 0.1)
        self.ph_drift(ctx, IN=1.0 if self.drift_on.Q else 0.0)
