# Compiled layout of _skid_readings.py (Cython pure-Python mode): C doubles, C reads of the
# model's and the components' fields (same IEEE operations in the same order).

cimport cython

from sim_hardware.components cimport Motor, Pump, Valve
from sim_hardware.plants._bioreactor_model cimport BioreactorModel

cdef double MAX_RPM, _MMOL_PER_L_GAS, _STEAM_C


@cython.locals(
    hw_c=double, cw_c=double, hw_bar=double, cw_bar=double, steam_bar=double, air_bar=double,
    k_do=double, yxo=double, mo=double, ts=double, rq=double,
    heating=Valve, cooling=Valve, air=Valve, o2=Valve, co2=Valve,
    feed=Pump, base=Pump, harvest=Pump, agitator=Motor,
    T=double, Tj=double, hot=double, cold=double, gas=double, inlet=double, q=double,
    off_o2=double, off_co2=double, f_do=double, used=double, made=double, o2_in=double,
    co2_in=double, out=double, left=double, n=double, cw_ret=double, code=int, values=list,
)
cpdef list analog(BioreactorModel m, object skid, tuple k, Valve condenser)


@cython.locals(feed=Pump, base=Pump, harvest=Pump, agitator=Motor, v=Valve, values=list)
cpdef list binary(BioreactorModel m, object skid, list valves)


@cython.locals(part=Valve)
cpdef step_parts(list parts, bint air_ok, double dt)


@cython.locals(valve=Valve, target=double, i=Py_ssize_t)
cpdef step_traps(list traps, list valves, bint steam, double ambient, double k)


@cython.locals(i=Py_ssize_t)
cpdef list pick(list values, list idx)
