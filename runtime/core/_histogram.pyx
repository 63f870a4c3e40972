# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The task histogram's storage and ``record`` in C: the same buckets as runtime/core/_stats.py.

Two records per task cycle are a measurable share of a virtual-time run; here each is a C
call on a C array. ``runtime.core._stats.Histogram`` adds the reports (percentiles, summary) on
top; the pure-Python ``PyHistogram`` there is the reference (tests/runtime/core/test_stats.py
drives both with the same values and requires identical buckets and totals).
"""

# Must match runtime/core/_stats.py: 32 sub-buckets per power of two. Values (ns) and their total
# are C long longs: below 2**63, i.e. 292 years of execution time in one task's statistics.
cdef enum:
    SUB_BITS = 5
    SUB = 32
    BUCKETS = 1888  # (64 - SUB_BITS) * SUB

cdef long long NO_MIN = 0x7FFFFFFFFFFFFFFF  # above any value: the first record sets the min


cdef inline int _bit_length(unsigned long long v) noexcept nogil:
    # portable (no compiler builtin): six halvings instead of a count-leading-zeros
    cdef int n = 0
    if v >> 32:
        v >>= 32
        n += 32
    if v >> 16:
        v >>= 16
        n += 16
    if v >> 8:
        v >>= 8
        n += 8
    if v >> 4:
        v >>= 4
        n += 4
    if v >> 2:
        v >>= 2
        n += 2
    if v >> 1:
        v >>= 1
        n += 1
    return n + <int>v


cdef class HistogramCore:
    """Bucket counts, total, min and max of non-negative ns values (negative count as 0)."""

    cdef long long _counts[BUCKETS]
    cdef long long _min
    cdef public long long total
    cdef public long long max

    def __init__(self):
        self.reset()

    cpdef void reset(self):
        cdef int i
        for i in range(BUCKETS):
            self._counts[i] = 0
        self.total = 0
        self.max = 0
        self._min = NO_MIN

    cpdef void record(self, long long v):
        cdef int shift
        if v < SUB:
            if v < 0:
                v = 0
            self._counts[v] += 1
        else:
            shift = _bit_length(<unsigned long long>v) - SUB_BITS - 1
            self._counts[((shift + 1) << SUB_BITS) + ((v >> shift) - SUB)] += 1
        if v < self._min:
            self._min = v
        if v > self.max:
            self.max = v
        self.total += v

    @property
    def counts(self):
        """A copy of the bucket counts (reports read it a few times a second at most)."""
        return [self._counts[i] for i in range(BUCKETS)]

    @property
    def count(self):
        cdef long long n = 0
        cdef int i
        for i in range(BUCKETS):
            n += self._counts[i]
        return n

    @property
    def min(self):
        return 0 if self._min == NO_MIN else self._min
