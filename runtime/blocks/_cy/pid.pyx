# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython PID: same ports, semantics and snapshots as runtime/blocks/pid.py (see there).

Every expression keeps the Python version's evaluation order (``i_old + ki * err * dt`` is
``i_old + ((ki * err) * dt)`` in both) and the extension is built with -ffp-contract=off, so
outputs are bit-identical to the pure-Python PID.
"""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()

PID_FORMS = ("ISA", "PARALLEL")


cdef class PID(Block):
    """Positional PID, derivative on PV with filter, conditional integration, bumpless modes."""

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
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public double SP, PV, KC, TI, TD, KP, KI, KD, N, OUT_MIN, OUT_MAX, FF, MAN_OUT
    cdef public double TRACK_VAL, SP_RATE, OUT, ERR, P, I, D, SP_W, PV_PREV
    cdef public bint DIRECT, MAN, TRACK, SP_TRACK, LIMITED, INIT, BAD
    cdef public str FORM, MODE

    def __cinit__(self):
        self.FORM = "ISA"
        self.KC = 1.0
        self.KP = 1.0
        self.N = 10.0
        self.OUT_MAX = 100.0
        self.MODE = "AUTO"

    def __call__(self, ctx, *, SP=_UNSET, PV=_UNSET, FORM=_UNSET, KC=_UNSET, TI=_UNSET,
                 TD=_UNSET, KP=_UNSET, KI=_UNSET, KD=_UNSET, N=_UNSET, DIRECT=_UNSET,
                 OUT_MIN=_UNSET, OUT_MAX=_UNSET, FF=_UNSET, MAN=_UNSET, MAN_OUT=_UNSET,
                 TRACK=_UNSET, TRACK_VAL=_UNSET, SP_TRACK=_UNSET, SP_RATE=_UNSET):
        if SP is not _UNSET:
            self.SP = SP
        if PV is not _UNSET:
            self.PV = PV
        if FORM is not _UNSET:
            self.FORM = FORM
        if KC is not _UNSET:
            self.KC = KC
        if TI is not _UNSET:
            self.TI = TI
        if TD is not _UNSET:
            self.TD = TD
        if KP is not _UNSET:
            self.KP = KP
        if KI is not _UNSET:
            self.KI = KI
        if KD is not _UNSET:
            self.KD = KD
        if N is not _UNSET:
            self.N = N
        if DIRECT is not _UNSET:
            self.DIRECT = DIRECT
        if OUT_MIN is not _UNSET:
            self.OUT_MIN = OUT_MIN
        if OUT_MAX is not _UNSET:
            self.OUT_MAX = OUT_MAX
        if FF is not _UNSET:
            self.FF = FF
        if MAN is not _UNSET:
            self.MAN = MAN
        if MAN_OUT is not _UNSET:
            self.MAN_OUT = MAN_OUT
        if TRACK is not _UNSET:
            self.TRACK = TRACK
        if TRACK_VAL is not _UNSET:
            self.TRACK_VAL = TRACK_VAL
        if SP_TRACK is not _UNSET:
            self.SP_TRACK = SP_TRACK
        if SP_RATE is not _UNSET:
            self.SP_RATE = SP_RATE
        self.execute(ctx)

    def call(self, ctx, *, SP=_UNSET, PV=_UNSET, FORM=_UNSET, KC=_UNSET, TI=_UNSET, TD=_UNSET,
             KP=_UNSET, KI=_UNSET, KD=_UNSET, N=_UNSET, DIRECT=_UNSET, OUT_MIN=_UNSET,
             OUT_MAX=_UNSET, FF=_UNSET, MAN=_UNSET, MAN_OUT=_UNSET, TRACK=_UNSET,
             TRACK_VAL=_UNSET, SP_TRACK=_UNSET, SP_RATE=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if SP is not _UNSET:
            self.SP = SP
        if PV is not _UNSET:
            self.PV = PV
        if FORM is not _UNSET:
            self.FORM = FORM
        if KC is not _UNSET:
            self.KC = KC
        if TI is not _UNSET:
            self.TI = TI
        if TD is not _UNSET:
            self.TD = TD
        if KP is not _UNSET:
            self.KP = KP
        if KI is not _UNSET:
            self.KI = KI
        if KD is not _UNSET:
            self.KD = KD
        if N is not _UNSET:
            self.N = N
        if DIRECT is not _UNSET:
            self.DIRECT = DIRECT
        if OUT_MIN is not _UNSET:
            self.OUT_MIN = OUT_MIN
        if OUT_MAX is not _UNSET:
            self.OUT_MAX = OUT_MAX
        if FF is not _UNSET:
            self.FF = FF
        if MAN is not _UNSET:
            self.MAN = MAN
        if MAN_OUT is not _UNSET:
            self.MAN_OUT = MAN_OUT
        if TRACK is not _UNSET:
            self.TRACK = TRACK
        if TRACK_VAL is not _UNSET:
            self.TRACK_VAL = TRACK_VAL
        if SP_TRACK is not _UNSET:
            self.SP_TRACK = SP_TRACK
        if SP_RATE is not _UNSET:
            self.SP_RATE = SP_RATE
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef double pv = self.PV
        cdef double sp = self.SP
        cdef double dt, kp, ti, td, ki, kd, spw, rate, prev, step, err, p, d, n, tf, dpv
        cdef double ff, lo, hi, i_old, i, u, out
        cdef bint manual, track, auto, direct
        if pv != pv or sp != sp:  # NaN: bad input, hold everything
            self.BAD = True
            return
        dt = ctx.dt
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
