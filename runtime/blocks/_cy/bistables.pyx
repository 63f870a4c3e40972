# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython SR and RS: same ports, semantics and snapshots as runtime/blocks/bistables.py."""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()


cdef class SR(Block):
    """Set-dominant latch: Q1 := S1 OR (NOT R AND Q1)."""

    INPUTS = {"S1": False, "R": False}
    OUTPUTS = {"Q1": False}
    STATE = {}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint S1, R, Q1

    def __call__(self, ctx, *, S1=_UNSET, R=_UNSET):
        if S1 is not _UNSET:
            self.S1 = S1
        if R is not _UNSET:
            self.R = R
        self.execute(ctx)

    def call(self, ctx, *, S1=_UNSET, R=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if S1 is not _UNSET:
            self.S1 = S1
        if R is not _UNSET:
            self.R = R
        self.execute(ctx)

    cpdef execute(self, ctx):
        self.Q1 = self.S1 or (not self.R and self.Q1)


cdef class RS(Block):
    """Reset-dominant latch: Q1 := NOT R1 AND (S OR Q1)."""

    INPUTS = {"S": False, "R1": False}
    OUTPUTS = {"Q1": False}
    STATE = {}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint S, R1, Q1

    def __call__(self, ctx, *, S=_UNSET, R1=_UNSET):
        if S is not _UNSET:
            self.S = S
        if R1 is not _UNSET:
            self.R1 = R1
        self.execute(ctx)

    def call(self, ctx, *, S=_UNSET, R1=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if S is not _UNSET:
            self.S = S
        if R1 is not _UNSET:
            self.R1 = R1
        self.execute(ctx)

    cpdef execute(self, ctx):
        self.Q1 = not self.R1 and (self.S or self.Q1)
