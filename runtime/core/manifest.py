"""The app manifest (app.yaml): pydantic models, YAML loading, errors carrying the YAML path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hal import DeclaredValue, IecType, PointSpec, Value, coerce_exact, default_value
from runtime.core._gmp import GmpSpec
from runtime.core._yaml import YamlError, read_yaml

__all__ = [
    "GLOBALS_ROOT",
    "PERIOD_MAX_MS",
    "PERIOD_MIN_MS",
    "AppManifest",
    "DriverConfig",
    "GlobalSpec",
    "ManifestError",
    "OverrunPolicy",
    "ParameterSpec",
    "ProgramSpec",
    "RealtimeConfig",
    "RetainConfig",
    "TaskSpec",
    "format_validation_error",
    "load_manifest",
]

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SEMVER = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"

# Task periods and watchdogs. Below 50 µs the Python scan cannot even latch its inputs (an
# empty cycle plus the OS wake-up take tens of µs) and a rounded period could reach 0 ns,
# which never lets a virtual run advance. Above an hour a "cyclic task" is a scheduler job,
# and such a value is far more likely seconds typed as milliseconds.
PERIOD_MIN_MS = 0.05
PERIOD_MAX_MS = 3_600_000.0
_MAX_PROBLEMS = 20  # a thoroughly broken file is not worth a screenful per problem


class ManifestError(Exception):
    """A manifest that cannot run; ``str()`` is the one-paragraph message a user sees."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        shown = problems[:_MAX_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f"; and {more} more problem(s)" if more > 0 else ""
        super().__init__(f"{self.path}: invalid app manifest: " + "; ".join(shown) + tail)


class _Strict(BaseModel):
    # Every float of a manifest is finite: no field here has a use for NaN or ±inf.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _in_span(value: float | None, what: str) -> float | None:
    if value is not None and not PERIOD_MIN_MS <= value <= PERIOD_MAX_MS:
        raise ValueError(
            f"{what} must be {PERIOD_MIN_MS:g} ms (50 µs) to {PERIOD_MAX_MS:.0f} ms (1 h)"
        )
    return value


class OverrunPolicy(StrEnum):
    """What a task does when a cycle runs past its next release."""

    WARN = "warn"  # count and log; the pending release runs at once (late), older ones are dropped
    SKIP = "skip"  # count and drop every missed release; resume at the next future deadline
    FAULT = "fault"  # go to FAULT: outputs safe


class TaskSpec(_Strict):
    """A cyclic task: programs run in declared order every ``period_ms``."""

    name: str = Field(pattern=_NAME)
    period_ms: float = Field(description="cycle period in milliseconds (0.05 to 3600000)")
    priority: int = Field(default=10, ge=0, le=99, description="higher runs first")
    overrun: OverrunPolicy = OverrunPolicy.WARN
    watchdog_ms: float | None = Field(
        default=None, description="execution time above which the cycle counts as overrun"
    )
    spin_us: int = Field(default=0, ge=0, le=5000, description="busy-wait before each release")
    programs: list[str] = Field(min_length=1)

    @field_validator("period_ms")
    @classmethod
    def _period(cls, v: float) -> float:
        _in_span(v, "a task period")
        return v

    @field_validator("watchdog_ms")
    @classmethod
    def _watchdog(cls, v: float | None) -> float | None:
        return _in_span(v, "a watchdog time")

    @property
    def period_ns(self) -> int:
        return round(self.period_ms * 1_000_000)


class ProgramSpec(_Strict):
    """A program (POU): a class in one of the app's modules, given as ``module:Class``."""

    name: str = Field(pattern=_NAME)
    entry: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
    description: str = ""
    # Keyword arguments of the class's constructor, so one class serves many instances (the
    # reactors of a plant). Scalars only: they are part of the manifest's identity and diff.
    args: dict[str, DeclaredValue] = Field(
        default_factory=dict, description="keyword arguments for the program class"
    )

    @field_validator("args")
    @classmethod
    def _arg_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not re.match(_NAME, key) or key == "app":
                raise ValueError(f"argument name {key!r} is not an identifier (or is 'app')")
        return v


class DriverConfig(_Strict):
    """A driver instance: its registered ``type`` and the options that type validates."""

    type: str
    options: dict[str, Any] = Field(default_factory=dict)


class ParameterSpec(_Strict):
    """A tunable parameter (setpoint, limit, gain) with its range; operators may write it."""

    name: str = Field(pattern=_NAME)
    type: IecType = IecType.LREAL
    default: DeclaredValue
    min: float | None = None
    max: float | None = None
    unit: str = ""
    description: str = ""
    retain: bool = False

    @model_validator(mode="after")
    def _check(self) -> ParameterSpec:
        try:
            value = coerce_exact(self.type, self.default)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"default: {exc}") from None
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.min is not None and value < self.min:
                raise ValueError(f"default {value} is below min {self.min}")
            if self.max is not None and value > self.max:
                raise ValueError(f"default {value} is above max {self.max}")
        return self

    def check(self, value: object) -> Value:
        """Coerce an operator's value and check the range; raise ValueError saying why.

        NaN, ±inf and numbers the type cannot hold are refused, never clamped: a setpoint is
        taken exactly as written or not at all.
        """
        try:
            v = coerce_exact(self.type, value)
        except ValueError as exc:
            raise ValueError(f"parameter {self.name!r}: {exc}") from None
        if isinstance(v, int | float) and not isinstance(v, bool):
            if self.min is not None and v < self.min:
                raise ValueError(f"parameter {self.name!r}: {v} is below min {self.min}")
            if self.max is not None and v > self.max:
                raise ValueError(f"parameter {self.name!r}: {v} is above max {self.max}")
        return v


# The root of the globals' instance paths (``globals.control_on``), so no program may have it
# as its name.
GLOBALS_ROOT = "globals"


class GlobalSpec(_Strict):
    """A global variable: shared by the app's programs, state like a program variable.

    Its instance path is ``globals.<name>``; ``initial`` is its value at a cold start and the
    initial value of the state merge of a version change; ``retain`` keeps it over a restart.
    """

    name: str = Field(pattern=_NAME)
    type: IecType
    initial: DeclaredValue | None = Field(
        default=None, description="value at a cold start (default: the IEC initial value)"
    )
    retain: bool = False
    unit: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> GlobalSpec:
        if self.initial is not None:
            try:
                coerce_exact(self.type, self.initial)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"initial: {exc}") from None
        return self

    def initial_value(self) -> Value:
        """The initial value in the Python type of ``type`` (REAL 1 → 1.0)."""
        if self.initial is None:
            return default_value(self.type)
        return coerce_exact(self.type, self.initial)


class RetainConfig(_Strict):
    """Which state survives a restart (used by the retain store)."""

    variables: list[str] = Field(default_factory=list, description="instance paths")
    # 10 ms: below, checkpoints (a file write and two fsyncs each, coalesced by the writer)
    # would only queue up; a day: a longer interval is hardly durability at all.
    interval_s: float = Field(
        default=1.0,
        ge=0.01,
        le=86400.0,
        description="seconds of app time between checkpoints (and one at start-up): what a "
        "kill can lose at most",
    )


class RealtimeConfig(_Strict):
    """OS scheduling for the scan thread; each falls back with a warning where not permitted."""

    fifo_priority: int = Field(default=0, ge=0, le=99, description="0 = normal scheduling")
    cpus: list[Annotated[int, Field(ge=0, le=1023)]] = Field(
        default_factory=list, description="CPU affinity, empty = any"
    )
    timer_slack_ns: int = Field(default=1, ge=1, le=1_000_000_000)
    gc_freeze: bool = True
    lock_memory: bool | None = Field(
        default=None, description="mlockall the process; unset: only with automatic settings"
    )
    cpu_dma_latency_us: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="hold this CPU wake-up latency limit (PM QoS, /dev/cpu_dma_latency) while"
        " the scan runs; unset: 0 with automatic settings; null: never",
    )


class AppManifest(_Strict):
    """An app: tasks, programs, I/O points with driver bindings, parameters, globals, retain."""

    name: str = Field(pattern=_NAME)
    version: str = Field(pattern=_SEMVER, description="semantic version, e.g. 1.2.0")
    description: str = ""
    drivers: dict[str, DriverConfig] = Field(min_length=1)
    programs: list[ProgramSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    points: list[PointSpec] = Field(default_factory=list)
    parameters: list[ParameterSpec] = Field(default_factory=list)
    globals: list[GlobalSpec] = Field(default_factory=list)
    retain: RetainConfig = Field(default_factory=RetainConfig)
    realtime: RealtimeConfig = Field(default_factory=RealtimeConfig)
    gmp: GmpSpec | None = Field(default=None, description="batch, critical actions, spec limits")

    @field_validator("drivers")
    @classmethod
    def _driver_names(cls, v: dict[str, DriverConfig]) -> dict[str, DriverConfig]:
        for name in v:
            if not re.match(_NAME, name):
                raise ValueError(f"driver name {name!r} is not an identifier")
        return v

    @model_validator(mode="after")
    def _cross_check(self) -> AppManifest:
        _unique("tasks", [t.name for t in self.tasks])
        _unique("programs", [p.name for p in self.programs])
        _unique("points", [p.name for p in self.points])
        _unique("parameters", [p.name for p in self.parameters])
        _unique("globals", [g.name for g in self.globals])
        for i, spec in enumerate(self.programs):
            if spec.name == GLOBALS_ROOT:
                raise ValueError(
                    f"programs.{i}.name: {GLOBALS_ROOT!r} is reserved: it is the root of the "
                    "instance paths of the global variables (globals.<name>)"
                )
        programs = {p.name for p in self.programs}
        assigned: dict[str, str] = {}
        for i, task in enumerate(self.tasks):
            for j, prog in enumerate(task.programs):
                if prog not in programs:
                    raise ValueError(
                        f"tasks.{i}.programs.{j}: program {prog!r} is not declared under "
                        f"'programs' (declared: {sorted(programs)})"
                    )
                if prog in assigned:
                    raise ValueError(
                        f"tasks.{i}.programs.{j}: program {prog!r} is already assigned to "
                        f"task {assigned[prog]!r}; a program instance runs in one task"
                    )
                assigned[prog] = task.name
        for i, point in enumerate(self.points):
            if point.driver not in self.drivers:
                raise ValueError(
                    f"points.{i}.driver: {point.driver!r} is not declared under 'drivers' "
                    f"(declared: {sorted(self.drivers)})"
                )
        if self.gmp is not None:
            _check_gmp(self.gmp, {p.name for p in self.parameters}, {p.name for p in self.points})
        return self

    def parameter(self, name: str) -> ParameterSpec:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


def _check_gmp(gmp: GmpSpec, parameters: set[str], points: set[str]) -> None:
    """Names in ``gmp:`` must be the app's own (block paths are checked against the build)."""
    for i, act in enumerate(gmp.critical):
        known = {"set_parameter": parameters, "force": points, "unforce": points}.get(act.cmd)
        for j, target in enumerate(act.targets):
            if known is not None and target not in known:
                raise ValueError(
                    f"gmp.critical.{i}.targets.{j}: {target!r} is not a declared "
                    f"{'parameter' if act.cmd == 'set_parameter' else 'point'}"
                )
    for i, spec in enumerate(gmp.specifications):
        if spec.signal not in points:
            raise ValueError(f"gmp.specifications.{i}.signal: {spec.signal!r} is not a point")


def _unique(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{where}.{i}.name: duplicate name {name!r}")
        seen.add(name)


def format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per problem, each starting with the YAML path: ``at a.b.0: what was wrong``.

    ``prefix`` is the YAML path of the validated mapping when it is part of a larger file
    (a driver's options: ``drivers.sim.options``).
    """
    return [_format_error(e, prefix) for e in exc.errors()]


def _format_error(err: Mapping[str, Any], prefix: str = "") -> str:
    loc = ".".join([*([prefix] if prefix else []), *(str(part) for part in err["loc"])])
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not part of the schema)"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    # Cross-field checks name their own path as "a.b.c: message".
    m = re.match(r"^([A-Za-z_][\w]*(?:\.[\w]+)+): (.*)$", msg, re.S)
    if m:
        loc = ".".join(x for x in (loc, m.group(1)) if x)
        msg = m.group(2)
    loc = loc or "(top level)"
    inp = err.get("input")
    shown = (
        "" if isinstance(inp, dict | list) or err["type"] == "missing" else f" (got {_short(inp)})"
    )
    return f"at {loc}: {msg}{shown}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"


def parse_manifest(data: object, path: Path | str) -> AppManifest:
    """Validate already-parsed YAML; raise ManifestError naming each YAML path."""
    if not isinstance(data, dict):
        raise ManifestError(
            path, [f"expected a mapping at the top level, got {type(data).__name__}"]
        )
    try:
        return AppManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(path, format_validation_error(exc)) from None


def load_manifest(app_dir: Path | str) -> AppManifest:
    """Read and validate ``APP_DIR/app.yaml``."""
    path = Path(app_dir) / "app.yaml"
    try:
        data = read_yaml(path)
    except FileNotFoundError:
        raise ManifestError(path, ["file not found: an app folder needs an app.yaml"]) from None
    except YamlError as exc:
        raise ManifestError(path, [str(exc)]) from None
    return parse_manifest(data, path)
