"""PID controller as process engineers tune it: ISA or parallel form, bumpless and windup-free."""

from __future__ import annotations

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["PID", "PID_FORMS"]

PID_FORMS = ("ISA", "PARALLEL")


class PID(FunctionBlock):
    """Positional PID with derivative on PV, filtered derivative and conditional integration.

    Gains: ``FORM='ISA'`` uses KC, TI (s, 0 = no integral action), TD (s):
    OUT = KC * (e + 1/TI ∫e dt - TD dPV/dt); ``FORM='PARALLEL'`` uses KP, KI (1/s), KD (s):
    OUT = KP*e + KI ∫e dt - KD dPV/dt. The derivative acts on PV only (a setpoint step gives no
    kick) through a first-order filter with time constant Td/N (parallel form: Td = KD/KP; with
    KP = 0 the derivative is unfiltered).

    Action: DIRECT FALSE (default, "reverse", heating-type) uses ERR = SP - PV, so OUT rises
    when PV is below SP; DIRECT TRUE (cooling-type) uses ERR = PV - SP.

    Anti-windup by conditional integration: the integrator I (kept in output units, so
    retuning TI/KI never bumps OUT; retuning the gain changes P) only moves into a limit until
    P+I+D+FF reaches it and never further; integration away from the limit is always allowed,
    so the output leaves the limit on the first cycle the error reverses. OUT is clamped to
    OUT_MIN..OUT_MAX.

    Modes, in priority order: TRACK (OUT := TRACK_VAL, for cascade/split range), MAN
    (OUT := MAN_OUT), auto. Outside auto the integrator tracks OUT - P - D - FF so the return
    to auto is bumpless; in auto MAN_OUT tracks OUT, so switching to manual holds OUT unless
    MAN_OUT is written in the same call. SP_TRACK makes the working setpoint SP_W follow PV
    while not in auto; otherwise SP_RATE (units/s, 0 = unlimited) ramps SP_W towards SP, which
    also makes the return from SP tracking bumpless. The first call (and any call with dt == 0)
    neither integrates nor differentiates. A NaN PV or SP holds OUT and all state (bad input);
    the first good PV after that does not differentiate across the gap.
    """

    INPUTS = {
        "SP": 0.0,
        "PV": 0.0,
        "FORM": "ISA",
        "KC": 1.0,
        "TI": 0.0,
        "TD": 0.0,
        "KP": 1.0,
        "KI": 0.0,
        "KD": 0.0,
        "N": 10.0,
        "DIRECT": False,
        "OUT_MIN": 0.0,
        "OUT_MAX": 100.0,
        "FF": 0.0,
        "MAN": False,
        "MAN_OUT": 0.0,
        "TRACK": False,
        "TRACK_VAL": 0.0,
        "SP_TRACK": False,
        "SP_RATE": 0.0,
    }
    OUTPUTS = {
        "OUT": 0.0,
        "ERR": 0.0,
        "P": 0.0,
        "I": 0.0,
        "D": 0.0,
        "SP_W": 0.0,
        "LIMITED": False,
        "MODE": "AUTO",
    }
    STATE = {"PV_PREV": 0.0, "INIT": False, "BAD": False}

    SP: float
    PV: float
    FORM: str
    KC: float
    TI: float
    TD: float
    KP: float
    KI: float
    KD: float
    N: float
    DIRECT: bool
    OUT_MIN: float
    OUT_MAX: float
    FF: float
    MAN: bool
    MAN_OUT: float
    TRACK: bool
    TRACK_VAL: float
    SP_TRACK: bool
    SP_RATE: float
    OUT: float
    ERR: float
    P: float
    I: float  # noqa: E741 - the ISA name of the integral term
    D: float
    SP_W: float
    LIMITED: bool
    MODE: str
    PV_PREV: float
    INIT: bool
    BAD: bool

    def execute(self, ctx: CycleContext) -> None:
        # Written for speed (this runs every cycle): every input and state variable is read
        # once into a local, and each output is written once.
        pv = self.PV
        sp = self.SP
        if pv != pv or sp != sp:  # NaN: bad input, hold everything
            self.BAD = True
            return
        dt: float = ctx.dt
        if dt < 0.0:
            dt = 0.0
        form = self.FORM
        if form == "ISA":
            kp = self.KC
            ti = self.TI
            td = self.TD
            ki = kp / ti if ti > 0.0 else 0.0
            kd = kp * td
        elif form == "PARALLEL":
            kp = self.KP
            ki = self.KI
            kd = self.KD
            td = kd / kp if kp != 0.0 else 0.0
        else:
            raise ValueError(f"PID FORM must be one of {PID_FORMS}, not {form!r}")
        if not self.INIT:
            self.INIT = True
            self.PV_PREV = pv
            self.SP_W = sp
        manual = self.MAN
        track = self.TRACK
        auto = not (track or manual)
        # Working setpoint: follows PV outside auto if asked, else moves towards SP.
        if not auto and self.SP_TRACK:
            spw = pv
        else:
            rate = self.SP_RATE
            spw = sp
            if rate > 0.0:
                prev = self.SP_W
                step = rate * dt
                if sp > prev + step:
                    spw = prev + step
                elif sp < prev - step:
                    spw = prev - step
        self.SP_W = spw
        direct = self.DIRECT
        err = pv - spw if direct else spw - pv
        self.ERR = err
        p = kp * err
        self.P = p
        # Filtered derivative on PV, backward Euler (stable for any dt and filter constant).
        d = self.D
        if self.BAD:
            self.BAD = False
        elif dt > 0.0 and kd != 0.0:
            n = self.N
            tf = td / n if n > 0.0 else 0.0
            dpv = pv - self.PV_PREV
            d = (tf * d + kd * (dpv if direct else -dpv)) / (tf + dt)
        elif kd == 0.0:
            d = 0.0
        self.D = d
        self.PV_PREV = pv
        ff = self.FF
        lo = self.OUT_MIN
        hi = self.OUT_MAX
        if auto:
            i_old = self.I
            i = i_old + ki * err * dt
            u = p + i + d + ff
            if u > hi:
                if i > i_old:  # integrate only up to the limit, never past it
                    i = hi - p - d - ff
                    if i < i_old:
                        i = i_old
                    u = p + i + d + ff
            elif u < lo and i < i_old:
                i = lo - p - d - ff
                if i > i_old:
                    i = i_old
                u = p + i + d + ff
            self.I = i
            out = hi if u > hi else lo if u < lo else u
            self.LIMITED = out != u
            self.OUT = out
            self.MAN_OUT = out
            if self.MODE != "AUTO":
                self.MODE = "AUTO"
        else:
            u = self.TRACK_VAL if track else self.MAN_OUT
            out = hi if u > hi else lo if u < lo else u
            self.LIMITED = out != u
            self.OUT = out
            self.I = out - p - d - ff
            if track:
                self.MAN_OUT = out
                self.MODE = "TRACK"
            else:
                self.MODE = "MAN"
