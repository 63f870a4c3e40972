# Declaration of the Cython block base, so other .pyx blocks (also an app's own) can cimport it.

cdef class Block:
    cpdef execute(self, ctx)
