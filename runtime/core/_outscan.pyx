# cython: language_level=3, boundscheck=False, wraparound=False
"""The output check's fast path in C: the same test as ``PyOutputScan`` in runtime/core/_outputs.py.

After every task cycle each output the task can write is tested: exact Python type of its
IEC type and inside its limits. In Python that costs ~800 machine instructions per output
(a measurable share of a virtual-time run); here it is a pointer read of the ``value`` slot,
a type pointer compare and two double compares. The slots of ``hal.Point`` are read and
written at their offsets, taken once from the member descriptors (a Point's layout is fixed
by its ``__slots__``). tests/runtime/core/test_outputs.py drives both scans with the same values.
"""

from cpython.object cimport PyObject, PyTypeObject

from hal import Point


cdef extern from "structmember.h":  # the full PyMemberDef (descrobject.h only declares it)
    ctypedef struct PyMemberDef:
        Py_ssize_t offset


cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    PyTypeObject PyFloat_Type
    PyTypeObject PyLong_Type
    PyTypeObject PyBool_Type
    PyTypeObject PyUnicode_Type
    PyTypeObject PyMemberDescr_Type
    PyTypeObject* _type_of "Py_TYPE"(PyObject*)
    double _as_double "PyFloat_AS_DOUBLE"(PyObject*)
    long long _as_longlong "PyLong_AsLongLongAndOverflow"(PyObject*, int*)
    void _incref "Py_INCREF"(PyObject*)
    void _xdecref "Py_XDECREF"(PyObject*)


cdef Py_ssize_t _slot_offset(str name) except -1:
    descr = Point.__dict__[name]
    if _type_of(<PyObject*>descr) is not &PyMemberDescr_Type:
        raise TypeError(f"hal.Point.{name} is not a slot")
    return (<PyMemberDescrObject*>descr).d_member.offset


cdef Py_ssize_t VALUE = _slot_offset("value")
cdef Py_ssize_t GOOD = _slot_offset("good")

cdef enum:
    K_FLOAT = 0
    K_INT = 1
    K_BOOL = 2
    K_STR = 3


cdef struct Entry:
    PyObject* point  # borrowed: OutputScan._points holds the references
    int kind
    double lo
    double hi
    long long ilo
    long long ihi


cdef class OutputScan:
    """Built from ``(point, python_type, lo, hi)`` tuples (``lo``/``hi`` unused for str)."""

    cdef Entry* _entries
    cdef Py_ssize_t _n
    cdef list _points
    cdef object _buffer

    def __cinit__(self, entries):
        cdef Py_ssize_t i
        cdef Entry* e
        entries = list(entries)
        self._points = [entry[0] for entry in entries]
        for p in self._points:
            if type(p) is not Point:  # a subclass could add slots; offsets are Point's
                raise TypeError(f"expected a hal.Point, got {type(p).__name__}")
        self._n = len(entries)
        self._buffer = bytearray(max(1, self._n) * sizeof(Entry))
        self._entries = <Entry*><char*>self._buffer
        for i in range(self._n):
            p, kind, lo, hi = entries[i]
            e = &self._entries[i]
            e.point = <PyObject*>p
            e.lo = e.hi = 0.0
            e.ilo = e.ihi = 0
            if kind is float:
                e.kind = K_FLOAT
                e.lo = lo
                e.hi = hi
            elif kind is int:
                e.kind = K_INT
                e.ilo = lo
                e.ihi = hi
            elif kind is bool:
                e.kind = K_BOOL
            elif kind is str:
                e.kind = K_STR
            else:
                raise TypeError(f"unknown output kind {kind!r}")

    def scan(self):
        """Keep each valid value as its point's ``good``; return the other points, or None."""
        cdef Py_ssize_t i
        cdef Entry* e
        cdef PyObject* v
        cdef PyObject** good
        cdef PyObject* old
        cdef PyTypeObject* t
        cdef double d
        cdef long long iv
        cdef int overflow
        cdef bint ok
        cdef list bad = None
        for i in range(self._n):
            e = &self._entries[i]
            v = (<PyObject**>((<char*>e.point) + VALUE))[0]
            ok = False
            if v is not NULL:
                t = _type_of(v)
                if e.kind == K_FLOAT:
                    if t is &PyFloat_Type:
                        d = _as_double(v)
                        ok = e.lo <= d <= e.hi  # NaN compares false: not ok
                elif e.kind == K_INT:
                    if t is &PyLong_Type:
                        overflow = 0
                        iv = _as_longlong(v, &overflow)
                        ok = overflow == 0 and e.ilo <= iv <= e.ihi
                elif e.kind == K_BOOL:
                    ok = t is &PyBool_Type
                else:
                    ok = t is &PyUnicode_Type
            if ok:
                good = <PyObject**>((<char*>e.point) + GOOD)
                if good[0] is not v:
                    old = good[0]
                    _incref(v)
                    good[0] = v
                    _xdecref(old)  # last: a deallocation sees the point consistent
            elif bad is None:
                bad = [<object>e.point]
            else:
                bad.append(<object>e.point)
        return bad
