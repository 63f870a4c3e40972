# Augments _sampling.py when compiled: C doubles for the noise arithmetic (same IEEE
# operations in the same order, so the readings are bit-identical to the interpreted module),
# and the plain points latched without a Python call.
cimport cython
from libc cimport math


cdef class Cell:
    cdef public object point
    cdef public double lo, hi
    cdef public bint ranged


cdef class Analog:
    cdef public double std, lo, hi
    cdef public list cells, points


cdef class Binary:
    cdef public list cells, points


cdef class Output:
    cdef public object point, set
    cdef public bint plain


cdef void _latch_float(Cell cell, double value, object boxed, object quality, object now_ns) except *
cdef void _latch_bool(Cell cell, object value, object now_ns) except *


@cython.locals(x=cython.double, std=cython.double, lo=cython.double, hi=cython.double,
               x2pi=cython.double, g2rad=cython.double, z=cython.double, value=cython.double,
               i=cython.int, diverged=cython.int, ch=Analog, b=Binary, cell=Cell)
cpdef int measure_clean(list analog, list values, list binary, list bvalues, object rng,
                        object now_ns) except? -2

@cython.locals(out=Output)
cpdef write_commands(list wired)
