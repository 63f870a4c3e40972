"""vplc runtime: scan engine, clocks, function blocks, app loading, lifecycle and CLI.

Apps import only what is listed in ``__all__`` here and the blocks in ``runtime.blocks``.
"""

from runtime._clock import Clock, RealClock, VirtualClock
from runtime._engine import RuntimeState, ScanEngine
from runtime._fb import CycleContext, FunctionBlock
from runtime._loader import LoadedApp, load_app
from runtime._program import AppConfigError, AppContext, Parameter, Program
from runtime._task import Task
from runtime.manifest import AppManifest, ManifestError, load_manifest

__all__ = [
    "AppConfigError",
    "AppContext",
    "AppManifest",
    "Clock",
    "CycleContext",
    "FunctionBlock",
    "LoadedApp",
    "ManifestError",
    "Parameter",
    "Program",
    "RealClock",
    "RuntimeState",
    "ScanEngine",
    "Task",
    "VirtualClock",
    "load_app",
    "load_manifest",
]
