# Compiled layout of sim_hardware/components.py (Cython pure-Python mode): C fields, cpdef steps.

cdef double _clamp_command(double value, double hi)


cdef class Valve:
    cdef public double command, max_flow, position, rate, stroke_time_s
    cdef public bint stuck
    cpdef set(self, double command)
    cpdef step(self, double dt)
    cpdef double flow(self)


cdef class OnOff(Valve):
    cpdef set(self, double command)


cdef class Pump:
    cdef public double command, max_flow, ramp, speed
    cdef public bint failed
    cpdef set(self, double command)
    cpdef step(self, double dt)
    cpdef double flow(self)


cdef class Motor:
    cdef public double command, max_rpm, ramp, speed
    cdef public bint failed
    cpdef set(self, double command)
    cpdef step(self, double dt)
