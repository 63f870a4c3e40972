"""The batch as an ISA-88 phase: FILL → HEAT → GROW → HARVEST inside RUNNING."""

from __future__ import annotations

from runtime import AppContext, CycleContext, Program
from runtime.blocks import HYSTERESIS, PHASE, TON

FILL, HEAT, GROW, HARVEST, DONE = "FILL", "HEAT", "GROW", "HARVEST", "DONE"


class Batch(Program):
    """Sequence logic; the loops program reads ``control_on`` and ``step`` from here."""

    VARS = {"step": FILL, "step_started": 0.0, "control_on": False, "batches": 0}
    step: str
    step_started: float
    control_on: bool
    batches: int

    def __init__(self, app: AppContext) -> None:
        super().__init__(app)
        self.phase = PHASE()
        self.in_band = TON()
        self.feed_hyst = HYSTERESIS()
        self.volume = app.point("WT401")
        self.temp = app.point("TT101")
        self.glucose = app.point("AT502")
        self.fill = app.point("XV401F")
        self.feed = app.point("P701F")
        self.harvest = app.point("P401H")
        self.p = {
            n: app.param(n)
            for n in (
                "temp_sp",
                "fill_target_l",
                "heat_band_c",
                "heat_settle_s",
                "grow_duration_h",
                "feed_on_glucose_g_l",
                "feed_off_glucose_g_l",
                "feed_pct",
                "harvest_end_l",
                "auto_start",
            )
        }

    def execute(self, ctx: CycleContext) -> None:
        phase, p = self.phase, self.p
        if ctx.first_scan and p["auto_start"].value and phase.STATE_NAME == "IDLE":
            phase.command("START")
        phase(ctx, DONE=self.step == DONE, AUTO_COMPLETE_ACTING=True)
        state = phase.STATE_NAME
        if state == "IDLE" and phase.STATE_ENTRY:
            self._goto(FILL, ctx)
        if phase.STATE_ENTRY and state == "RUNNING" and self.step == DONE:
            self._goto(FILL, ctx)
        # Loops keep conditions through HOLD; STOP/ABORT/COMPLETE hand the plant to safe values.
        self.control_on = state in ("RUNNING", "HOLDING", "HELD", "RESTARTING")
        fill = feed = harvest = 0.0
        if state == "RUNNING":
            fill, feed, harvest = self._run_step(ctx)
        self.fill.value, self.feed.value, self.harvest.value = fill, feed, harvest

    def _goto(self, step: str, ctx: CycleContext) -> None:
        self.step = step
        self.step_started = ctx.now
        if step == DONE:
            self.batches += 1

    def _run_step(self, ctx: CycleContext) -> tuple[float, float, float]:
        p, step = self.p, self.step
        if step == FILL:
            if self.volume.value >= p["fill_target_l"].value:
                self._goto(HEAT, ctx)
            return 100.0, 0.0, 0.0
        if step == HEAT:
            near = abs(self.temp.value - p["temp_sp"].value) < p["heat_band_c"].value
            self.in_band(ctx, IN=near, PT=p["heat_settle_s"].value)
            if self.in_band.Q:
                self._goto(GROW, ctx)
            return 0.0, 0.0, 0.0
        if step == GROW:
            # Feed by glucose with hysteresis: on below the low mark, off above the high mark.
            self.feed_hyst(
                ctx,
                IN=-self.glucose.value,
                HIGH=-p["feed_on_glucose_g_l"].value,
                LOW=-p["feed_off_glucose_g_l"].value,
            )
            if ctx.now - self.step_started >= p["grow_duration_h"].value * 3600.0:
                self._goto(HARVEST, ctx)
            return 0.0, (p["feed_pct"].value if self.feed_hyst.Q else 0.0), 0.0
        if step == HARVEST:
            if self.volume.value <= p["harvest_end_l"].value:
                self._goto(DONE, ctx)
            return 0.0, 0.0, 100.0
        return 0.0, 0.0, 0.0
