"""Cython builds of the standard blocks (all but PHASE), same names, ports and semantics.

The ``.pyx`` sources here are compiled by setup.py at install time; ``load()`` imports the
compiled modules and raises ImportError when they were not built (no compiler or Cython),
in which case ``runtime.blocks`` falls back to the pure-Python blocks.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MODULES", "load"]

# Compiled module → the public names it provides (as in the pure-Python module of that name).
MODULES: dict[str, tuple[str, ...]] = {
    "timers": ("TON", "TOF", "TP"),
    "counters": ("CTU", "CTD", "CTUD"),
    "edges": ("R_TRIG", "F_TRIG"),
    "bistables": ("SR", "RS"),
    "analog": ("RAMP", "HYSTERESIS", "LIMIT", "SCALE"),
    "pid": ("PID", "PID_FORMS"),
    "alarm": ("ALARM", "ALARM_KINDS"),
}


def load() -> dict[str, Any]:
    """Name → Cython class (or constant) for every compiled block; ImportError if not built."""
    names: dict[str, Any] = {}
    for module_name, public in MODULES.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        for name in public:
            names[name] = getattr(module, name)
    return names
