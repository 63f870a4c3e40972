"""The scan core: engine, tasks, clocks, function-block and program base, app loading, statistics.

The bottom layer of the runtime: it imports nothing of ``runtime.blocks``, ``state``, ``ops``,
``mqtt``, ``drivers``, ``host`` or ``bench`` (tests/test_layering.py). Other sub-packages reach
the engine only through its API: cycle hooks, program guards, ``submit``, pause/resume.
"""

from runtime.core._clock import Clock, RealClock, VirtualClock
from runtime.core._engine import Handled, ProgramGuard, RuntimeState, ScanEngine, StopScan
from runtime.core._fb import CycleContext, FunctionBlock
from runtime.core._handles import Handle
from runtime.core._loader import LoadedApp, load_app, unload_app
from runtime.core._program import AppContext, GlobalVar, Parameter, Program
from runtime.core._task import CycleHook, Task
from runtime.core.manifest import AppManifest, ManifestError, load_manifest

__all__ = [
    "AppContext",
    "AppManifest",
    "Clock",
    "CycleContext",
    "CycleHook",
    "FunctionBlock",
    "GlobalVar",
    "Handle",
    "Handled",
    "LoadedApp",
    "ManifestError",
    "Parameter",
    "Program",
    "ProgramGuard",
    "RealClock",
    "RuntimeState",
    "ScanEngine",
    "StopScan",
    "Task",
    "VirtualClock",
    "load_app",
    "load_manifest",
    "unload_app",
]
