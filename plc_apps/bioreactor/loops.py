"""Split-range PID loops: temperature (heat/cool), pH (base/CO2), DO (air then O2)."""

from __future__ import annotations

from hal import Quality
from runtime import AppContext, BoolGlobal, CycleContext, Program, RealIn, RealOut, RealParam
from runtime.blocks import PID

_BAD = Quality.BAD  # a module constant: Quality.BAD costs an enum lookup per use in the hot path


class Loops(Program):
    """Three ISA-form PIDs; outside batch control they sit in manual at a zero output.

    ``unit`` prefixes every point, parameter and global this program uses (``R3`` →
    ``R3_TT101``, ``R3_temp_sp``, ``R3_control_on``), so one class runs every reactor of a plant.
    """

    tt, tj = RealIn("TT101"), RealIn("TT102")
    ph, do = RealIn("AT201"), RealIn("AT301")
    heat, cool = RealOut("TV101H"), RealOut("TV101C")
    base, co2 = RealOut("P201B"), RealOut("AV201C")
    air, o2, agit = RealOut("AV301A"), RealOut("AV301O"), RealOut("M601")
    temp_sp, ph_sp, do_sp = RealParam("temp_sp"), RealParam("ph_sp"), RealParam("do_sp")
    rpm = RealParam("agitation_rpm")
    do_fallback = RealParam("do_fallback_air_pct")
    control_on = BoolGlobal("control_on")  # set by the batch phase

    def __init__(self, app: AppContext, *, unit: str = "") -> None:
        super().__init__(app, prefix=f"{unit}_" if unit else "")
        # Each loop is wired to its measurement and setpoint, as on the P&ID: a call reads them.
        # Temperature is a cascade, as on real jacketed vessels: the broth loop (τ ≈ 30 min)
        # sets the jacket temperature (tic102's SP), which the fast jacket loop (τ ≈ 1 min) holds.
        self.tic101 = PID(
            PV=self.tt, SP=self.temp_sp, KC=20.0, TI=3000.0, OUT_MIN=15.0, OUT_MAX=60.0
        )
        self.tic102 = PID(PV=self.tj, KC=5.0, TI=60.0, OUT_MIN=-100.0, OUT_MAX=100.0)
        self.aic201 = PID(
            PV=self.ph, SP=self.ph_sp, KC=200.0, TI=300.0, OUT_MIN=-100.0, OUT_MAX=100.0
        )
        # DO is split over three ranges: air 0–100, O2 enrichment 100–200, agitation 200–300.
        self.aic301 = PID(PV=self.do, SP=self.do_sp, KC=2.0, TI=300.0, OUT_MIN=0.0, OUT_MAX=300.0)

    # The scan's hot path: attribute reads and float arithmetic only, no tuples or kwargs
    # dicts (the compiled blocks' ``call`` takes keywords without building a dict). Clamps are
    # comparisons: a builtin min()/max() call costs ten of them in CPython.
    def execute(self, ctx: CycleContext) -> None:
        on = self.control_on.value
        # FF = SP: at steady state the jacket sits near the broth temperature, so the master's
        # integral only carries the losses and the heat of agitation and metabolism.
        self.tic101.FF = self.temp_sp.value
        t_on = on and self.tt.quality is not _BAD and self.tj.quality is not _BAD
        self.tic102.SP = _loop(ctx, self.tic101, t_on)
        t = _loop(ctx, self.tic102, t_on)
        # Split range around zero: positive drives the first actuator, negative the second.
        self.heat.value = t if t_on and t > 0.0 else 0.0
        self.cool.value = -t if t_on and t < 0.0 else 0.0
        ph_on = on and self.ph.quality is not _BAD
        ph = _loop(ctx, self.aic201, ph_on)
        self.base.value = ph if ph_on and ph > 0.0 else 0.0
        self.co2.value = -ph if ph_on and ph < 0.0 else 0.0
        # A BAD DO probe must not drive the gas: fall back to a fixed air flow, as operators do.
        do_on = on and self.do.quality is not _BAD
        out = _loop(ctx, self.aic301, do_on)
        if not do_on:
            out = self.do_fallback.value if on else 0.0
        self.air.value = _clamp(out, 0.0, 100.0)
        self.o2.value = _clamp(out - 100.0, 0.0, 100.0)
        rpm = self.rpm.value
        extra = _clamp(out - 200.0, 0.0, 100.0) / 100.0 * (300.0 - rpm if rpm < 300.0 else 0.0)
        self.agit.value = rpm + extra if on else 0.0


def _loop(ctx: CycleContext, pid: PID, auto: bool) -> float:
    """Run a PID; while not in control it tracks its proportional answer with no integral.

    A bumpless start from a saturated output would leave the integral at minus the initial
    proportional term, which a slow loop (TI of half an hour) then takes hours to unwind.
    Starting control from P + FF with a zero integral is what a batch start wants.
    """
    if auto:
        pid.call(ctx, TRACK=False)
    else:
        pid.read_wired()  # this cycle's PV and SP, for the proportional answer
        p_only = pid.KC * (pid.SP - pid.PV) + pid.FF
        pid.call(ctx, TRACK=True, TRACK_VAL=_clamp(p_only, pid.OUT_MIN, pid.OUT_MAX))
        pid.I = 0.0
    return float(pid.OUT)


def _clamp(x: float, lo: float, hi: float) -> float:
    """x limited to lo..hi (lo wins if they cross, as the tracking value always did)."""
    return lo if x < lo else hi if x > hi else x
