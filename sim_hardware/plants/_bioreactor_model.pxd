# Compiled layout of _bioreactor_model.py (Cython pure-Python mode): C state, C arithmetic.

cimport cython
from libc cimport math

from sim_hardware.components cimport Motor, Pump, Valve

cdef double _VESSEL_L, _CP, _AIR_O2, _AIR_CO2, _MW_LACTATE, _PER_MAX_RPM


cdef class BioreactorModel:
    cdef public double V, T, Tj, X, S, lac, alk, do, co2_mm, base_total, ph, mu, pka, henry
    cdef public tuple k
    cdef public Valve heating, cooling, air, o2, co2, fill
    cdef public Pump base, feed, harvest
    cdef public Motor agitator

    cpdef list values(self, list codes)
    cpdef double value(self, int code)

    @cython.locals(alk=double, co2=double, ph=double)
    cpdef update_ph(self)

    @cython.locals(
        t_opt=double, t_width=double, ph_opt=double, ph_width=double, k_do=double,
        mu_max_ts=double, ks=double, yxs=double, ms_ts=double, ylac=double, yxo=double,
        mo_ts=double, kla_surf_s=double, kla_ref_s=double, do_per_o2=double, henry=double,
        o2_sat_mm=double, co2_air=double, rq=double, ua_jacket=double, agit_w=double,
        ua_amb=double, ambient=double, hot_c=double, cold_c=double, vj=double, vj_cp=double,
        kd_ts=double, base_conc=double, media_glc=double, feed_glc=double, media_bic=double,
        media_c=double,
        V=double, T=double, Tj=double, X=double, S=double, do=double, co2=double, alk=double,
        N=double, n_rel=double, f_fill=double, f_feed=double, base_ml_s=double, f_base=double,
        f_harv=double, f_in=double, v_safe=double, dT_opt=double, dph=double, f_env=double,
        f_do=double, s_pos=double, mu=double, qs=double, glc_up=double, lac_mm=double,
        our=double, q_air=double, q_o2=double, q_co2=double, q_tot=double, kla_surf=double,
        kla=double, inv=double, do_star=double, co2_star=double, o2_sat=double, d_do=double,
        d_co2=double, d_alk=double, ua=double, q_j=double, p_agit=double, dT=double,
        f_hot=double, f_cold=double, dTj=double, lac=double, nb=double, d=double, fd=double,
    )
    cpdef step(self, double dt, dict utility_ok)
