# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython RAMP, HYSTERESIS, LIMIT and SCALE: same ports, semantics and snapshots as analog.py.

Comparisons and arithmetic follow the Python version step by step (also min/max with NaN), so
the results are bit-identical.
"""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()


cdef class RAMP(Block):
    """Rate limiter: OUT moves towards IN at most RATE_UP / RATE_DOWN units per second."""

    INPUTS = {
        "IN": 0.0,
        "RATE_UP": 0.0,
        "RATE_DOWN": 0.0,
        "RESET": False,
        "SET": False,
        "SET_VAL": 0.0,
    }
    OUTPUTS = {"OUT": 0.0, "BUSY": False}
    STATE = {"INIT": False}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public double IN, RATE_UP, RATE_DOWN, SET_VAL, OUT
    cdef public bint RESET, SET, BUSY, INIT

    def __call__(self, ctx, *, IN=_UNSET, RATE_UP=_UNSET, RATE_DOWN=_UNSET, RESET=_UNSET,
                 SET=_UNSET, SET_VAL=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if RATE_UP is not _UNSET:
            self.RATE_UP = RATE_UP
        if RATE_DOWN is not _UNSET:
            self.RATE_DOWN = RATE_DOWN
        if RESET is not _UNSET:
            self.RESET = RESET
        if SET is not _UNSET:
            self.SET = SET
        if SET_VAL is not _UNSET:
            self.SET_VAL = SET_VAL
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, RATE_UP=_UNSET, RATE_DOWN=_UNSET, RESET=_UNSET,
             SET=_UNSET, SET_VAL=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if RATE_UP is not _UNSET:
            self.RATE_UP = RATE_UP
        if RATE_DOWN is not _UNSET:
            self.RATE_DOWN = RATE_DOWN
        if RESET is not _UNSET:
            self.RESET = RESET
        if SET is not _UNSET:
            self.SET = SET
        if SET_VAL is not _UNSET:
            self.SET_VAL = SET_VAL
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef double target = self.IN
        cdef double out, dt, up, down
        if self.RESET or not self.INIT:
            self.INIT = True
            self.OUT = target
        elif self.SET:
            self.OUT = self.SET_VAL
        else:
            out = self.OUT
            dt = ctx.dt
            if not dt > 0.0:
                dt = 0.0
            if target > out:
                up = self.RATE_UP * dt
                out = target if self.RATE_UP <= 0.0 or target - out <= up else out + up
            elif target < out:
                down = self.RATE_DOWN * dt
                out = target if self.RATE_DOWN <= 0.0 or out - target <= down else out - down
            self.OUT = out
        self.BUSY = target != self.OUT


cdef class HYSTERESIS(Block):
    """Two-point switch: Q goes TRUE when IN > HIGH, FALSE when IN < LOW, else holds."""

    INPUTS = {"IN": 0.0, "HIGH": 0.0, "LOW": 0.0}
    OUTPUTS = {"Q": False}
    STATE = {}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public double IN, HIGH, LOW
    cdef public bint Q

    def __call__(self, ctx, *, IN=_UNSET, HIGH=_UNSET, LOW=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if HIGH is not _UNSET:
            self.HIGH = HIGH
        if LOW is not _UNSET:
            self.LOW = LOW
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, HIGH=_UNSET, LOW=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if HIGH is not _UNSET:
            self.HIGH = HIGH
        if LOW is not _UNSET:
            self.LOW = LOW
        self.execute(ctx)

    cpdef execute(self, ctx):
        if self.IN > self.HIGH:
            self.Q = True
        elif self.IN < self.LOW:
            self.Q = False


cdef class LIMIT(Block):
    """IEC LIMIT(MN, IN, MX): OUT is IN clamped to MN..MX (MX wins if MN > MX, as min(max()))."""

    INPUTS = {"MN": 0.0, "IN": 0.0, "MX": 0.0}
    OUTPUTS = {"OUT": 0.0}
    STATE = {}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public double MN, IN, MX, OUT

    def __call__(self, ctx, *, MN=_UNSET, IN=_UNSET, MX=_UNSET):
        if MN is not _UNSET:
            self.MN = MN
        if IN is not _UNSET:
            self.IN = IN
        if MX is not _UNSET:
            self.MX = MX
        self.execute(ctx)

    def call(self, ctx, *, MN=_UNSET, IN=_UNSET, MX=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if MN is not _UNSET:
            self.MN = MN
        if IN is not _UNSET:
            self.IN = IN
        if MX is not _UNSET:
            self.MX = MX
        self.execute(ctx)

    cpdef execute(self, ctx):
        # Python's max(a, b) keeps a unless b > a; min(a, b) keeps a unless b < a.
        cdef double x = self.IN
        if self.MN > x:
            x = self.MN
        if self.MX < x:
            x = self.MX
        self.OUT = x


cdef class SCALE(Block):
    """Linear map of IN_MIN..IN_MAX onto OUT_MIN..OUT_MAX (either range may be inverted)."""

    INPUTS = {
        "IN": 0.0,
        "IN_MIN": 0.0,
        "IN_MAX": 1.0,
        "OUT_MIN": 0.0,
        "OUT_MAX": 1.0,
        "CLAMP": False,
    }
    OUTPUTS = {"OUT": 0.0, "ERROR": False}
    STATE = {}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public double IN, IN_MIN, IN_MAX, OUT_MIN, OUT_MAX, OUT
    cdef public bint CLAMP, ERROR

    def __cinit__(self):
        self.IN_MAX = 1.0
        self.OUT_MAX = 1.0

    def __call__(self, ctx, *, IN=_UNSET, IN_MIN=_UNSET, IN_MAX=_UNSET, OUT_MIN=_UNSET,
                 OUT_MAX=_UNSET, CLAMP=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if IN_MIN is not _UNSET:
            self.IN_MIN = IN_MIN
        if IN_MAX is not _UNSET:
            self.IN_MAX = IN_MAX
        if OUT_MIN is not _UNSET:
            self.OUT_MIN = OUT_MIN
        if OUT_MAX is not _UNSET:
            self.OUT_MAX = OUT_MAX
        if CLAMP is not _UNSET:
            self.CLAMP = CLAMP
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, IN_MIN=_UNSET, IN_MAX=_UNSET, OUT_MIN=_UNSET,
             OUT_MAX=_UNSET, CLAMP=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if IN_MIN is not _UNSET:
            self.IN_MIN = IN_MIN
        if IN_MAX is not _UNSET:
            self.IN_MAX = IN_MAX
        if OUT_MIN is not _UNSET:
            self.OUT_MIN = OUT_MIN
        if OUT_MAX is not _UNSET:
            self.OUT_MAX = OUT_MAX
        if CLAMP is not _UNSET:
            self.CLAMP = CLAMP
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef double span = self.IN_MAX - self.IN_MIN
        cdef double out, lo, hi
        if span == 0.0:
            self.ERROR = True
            self.OUT = self.OUT_MIN
            return
        self.ERROR = False
        out = self.OUT_MIN + (self.IN - self.IN_MIN) * (self.OUT_MAX - self.OUT_MIN) / span
        if self.CLAMP:
            lo = self.OUT_MIN
            hi = self.OUT_MAX
            if lo > hi:
                lo, hi = hi, lo
            out = hi if out > hi else lo if out < lo else out
        self.OUT = out
