# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython R_TRIG and F_TRIG: same ports, semantics and snapshots as runtime/blocks/edges.py."""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()


cdef class R_TRIG(Block):
    """Rising edge: Q is TRUE for the one call on which CLK went from FALSE to TRUE."""

    INPUTS = {"CLK": False}
    OUTPUTS = {"Q": False}
    STATE = {"M": False}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint CLK, Q, M

    def __call__(self, ctx, *, CLK=_UNSET):
        if CLK is not _UNSET:
            self.CLK = CLK
        self.execute(ctx)

    def call(self, ctx, *, CLK=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if CLK is not _UNSET:
            self.CLK = CLK
        self.execute(ctx)

    cpdef execute(self, ctx):
        self.Q = self.CLK and not self.M
        self.M = self.CLK


cdef class F_TRIG(Block):
    """Falling edge: Q is TRUE for the one call on which CLK went from TRUE to FALSE.

    As edges.py: the memory starts FALSE, so CLK FALSE on the very first call gives Q TRUE.
    """

    INPUTS = {"CLK": False}
    OUTPUTS = {"Q": False}
    STATE = {"M": False}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint CLK, Q, M

    def __call__(self, ctx, *, CLK=_UNSET):
        if CLK is not _UNSET:
            self.CLK = CLK
        self.execute(ctx)

    def call(self, ctx, *, CLK=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if CLK is not _UNSET:
            self.CLK = CLK
        self.execute(ctx)

    cpdef execute(self, ctx):
        self.Q = not self.CLK and not self.M
        self.M = not self.CLK
