# Augments _sampling.py when compiled: C doubles for the noise arithmetic (same IEEE
# operations in the same order, so the readings are bit-identical to the interpreted module).
cimport cython
from libc cimport math


cdef class Analog:
    cdef public double std, lo, hi
    cdef public list points


@cython.locals(x=cython.double, std=cython.double, lo=cython.double, hi=cython.double,
               x2pi=cython.double, g2rad=cython.double, z=cython.double, value=cython.double,
               i=cython.int, diverged=cython.int, ch=Analog)
cpdef int measure_clean(list analog, list values, list binary, object rng, object now_ns) except? -2

cpdef write_commands(list wired)
