"""Tests of the simulated plant hardware (sim_hardware)."""
