# Declaration of the Cython block base, so other .pyx blocks (also an app's own) can cimport it.

cdef class Block:
    cdef tuple _wires  # (input, source) pairs read at every call; None: no input is wired
    cdef int _pull(self) except -1
    cpdef execute(self, ctx)
