# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython TON, TOF and TP: same ports, semantics and snapshots as runtime/blocks/timers.py.

Keep the arithmetic in the same order as the Python version: the parity test demands
bit-identical outputs. See timers.py for the IEC semantics (PT changed while timing etc.).
"""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()


cdef class TON(Block):
    """On-delay: Q goes TRUE once IN has been TRUE for PT seconds; IN FALSE resets Q and ET."""

    INPUTS = {"IN": False, "PT": 0.0}
    OUTPUTS = {"Q": False, "ET": 0.0}
    STATE = {"M": False, "START_NS": 0}
    CLOCK_VARS = ("START_NS",)  # an app-time stamp: retained as an age (runtime.state)
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint IN, Q, M
    cdef public double PT, ET
    cdef public long long START_NS

    def __call__(self, ctx, *, IN=_UNSET, PT=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if PT is not _UNSET:
            self.PT = PT
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, PT=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if PT is not _UNSET:
            self.PT = PT
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef long long now_ns
        cdef double elapsed
        if not self.IN:
            self.Q = False
            self.ET = 0.0
            self.M = False
            return
        now_ns = ctx.now_ns
        if not self.M:
            self.M = True
            self.START_NS = now_ns
        if self.Q:
            self.ET = self.PT
            return
        elapsed = <double>(now_ns - self.START_NS) / 1e9
        if elapsed >= self.PT:
            self.Q = True
            self.ET = self.PT
        else:
            self.ET = elapsed


cdef class TOF(Block):
    """Off-delay: Q follows IN up at once and stays TRUE for PT seconds after IN falls."""

    INPUTS = {"IN": False, "PT": 0.0}
    OUTPUTS = {"Q": False, "ET": 0.0}
    STATE = {"M": False, "RUNNING": False, "EXPIRED": False, "START_NS": 0}
    CLOCK_VARS = ("START_NS",)  # an app-time stamp: retained as an age (runtime.state)
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint IN, Q, M, RUNNING, EXPIRED
    cdef public double PT, ET
    cdef public long long START_NS

    def __call__(self, ctx, *, IN=_UNSET, PT=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if PT is not _UNSET:
            self.PT = PT
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, PT=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if PT is not _UNSET:
            self.PT = PT
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef double elapsed
        if self.IN:
            self.Q = True
            self.ET = 0.0
            self.M = True
            self.RUNNING = False
            self.EXPIRED = False
            return
        if self.M:
            self.M = False
            self.RUNNING = True
            self.START_NS = ctx.now_ns
        if self.RUNNING:
            elapsed = <double>(<long long>ctx.now_ns - self.START_NS) / 1e9
            if elapsed >= self.PT:
                self.RUNNING = False
                self.EXPIRED = True
                self.Q = False
                self.ET = self.PT
            else:
                self.ET = elapsed
        elif self.EXPIRED:
            self.ET = self.PT


cdef class TP(Block):
    """Pulse: a rising edge of IN gives a Q pulse of exactly PT seconds; not retriggerable."""

    INPUTS = {"IN": False, "PT": 0.0}
    OUTPUTS = {"Q": False, "ET": 0.0}
    STATE = {"M": False, "START_NS": 0}
    CLOCK_VARS = ("START_NS",)  # an app-time stamp: retained as an age (runtime.state)
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint IN, Q, M
    cdef public double PT, ET
    cdef public long long START_NS

    def __call__(self, ctx, *, IN=_UNSET, PT=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if PT is not _UNSET:
            self.PT = PT
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, PT=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if PT is not _UNSET:
            self.PT = PT
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef double elapsed
        cdef long long now_ns
        cdef bint rising = self.IN and not self.M
        self.M = self.IN
        if not self.Q and rising:
            self.Q = True
            self.START_NS = ctx.now_ns
        if self.Q:
            now_ns = ctx.now_ns
            elapsed = <double>(now_ns - self.START_NS) / 1e9
            if elapsed >= self.PT:
                self.Q = False
                self.ET = self.PT if self.IN else 0.0
            else:
                self.ET = elapsed
        elif self.IN:
            self.ET = self.PT
        else:
            self.ET = 0.0
