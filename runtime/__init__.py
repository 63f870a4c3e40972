"""vplc runtime: scan engine, clocks, function blocks, app loading, lifecycle and CLI.

Apps import only what is listed in ``__all__`` here and the blocks in ``runtime.blocks``.
"""

from runtime.core._clock import Clock, RealClock, VirtualClock
from runtime.core._declare import (
    AppConfigError,
    BoolGlobal,
    BoolIn,
    BoolOut,
    BoolParam,
    GlobalValue,
    InputPoint,
    IntGlobal,
    IntIn,
    IntOut,
    IntParam,
    OutputPoint,
    ParamValue,
    RealGlobal,
    RealIn,
    RealOut,
    RealParam,
    StringGlobal,
    StringIn,
    StringOut,
    StringParam,
)
from runtime.core._engine import RuntimeState, ScanEngine
from runtime.core._fb import CycleContext, FunctionBlock
from runtime.core._loader import LoadedApp, load_app
from runtime.core._migrate import migration
from runtime.core._program import AppContext, GlobalVar, Parameter, Program
from runtime.core._task import Task
from runtime.core.manifest import AppManifest, ManifestError, load_manifest

__all__ = [
    "AppConfigError",
    "AppContext",
    "AppManifest",
    "BoolGlobal",
    "BoolIn",
    "BoolOut",
    "BoolParam",
    "Clock",
    "CycleContext",
    "FunctionBlock",
    "GlobalValue",
    "GlobalVar",
    "InputPoint",
    "IntGlobal",
    "IntIn",
    "IntOut",
    "IntParam",
    "LoadedApp",
    "ManifestError",
    "OutputPoint",
    "ParamValue",
    "Parameter",
    "Program",
    "RealClock",
    "RealGlobal",
    "RealIn",
    "RealOut",
    "RealParam",
    "RuntimeState",
    "ScanEngine",
    "StringGlobal",
    "StringIn",
    "StringOut",
    "StringParam",
    "Task",
    "VirtualClock",
    "load_app",
    "load_manifest",
    "migration",
]
