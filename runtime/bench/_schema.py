"""Scenario files: pydantic models, YAML loading, and errors that carry the YAML path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hal import Value
from runtime.core._yaml import YamlError, read_yaml_file
from runtime.core.manifest import _format_error

__all__ = [
    "Assertion",
    "Bound",
    "Event",
    "PhaseAction",
    "PowerCut",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
]

_UNITS = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(value: object) -> object:
    """Times are seconds, or a string with a unit: '90 s', '30 min', '1.5 h', '2 d'."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*(ms|s|min|h|d)\s*", value)
        if m is None:
            raise ValueError(f"expected seconds or a time like '30 min' / '2 h', got {value!r}")
        return float(m.group(1)) * _UNITS[m.group(2)]
    return value


# At most 1e9 s (31 years, as `vplc run --duration`): app time is kept in integer nanoseconds.
Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=1e9, allow_inf_nan=False)]


class ScenarioError(Exception):
    """A scenario that cannot run; ``str()`` names the file and each problem's YAML path."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}: invalid scenario: " + "; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PhaseAction(_Strict):
    """An ISA-88 command to a PHASE instance, e.g. ``{block: batch.phase, command: HOLD}``."""

    block: str
    command: str


class PowerCut(_Strict):
    """The PLC loses power (the plant does not): ``{off_for: 30 s}``, ``cold: true`` to ignore
    the retain file at power-up. The runtime stops without a clean shutdown (no final retain
    checkpoint), the outputs de-energise to their safe values, the plant runs on for
    ``off_for``, then a fresh runtime of the same app starts on the same plant."""

    off_for: Seconds
    cold: bool = Field(False, description="power up cold: retained values are not loaded")


class Event(_Strict):
    """At time ``at`` (before that cycle): exactly one action."""

    at: Seconds
    set_: dict[str, Value] | None = Field(None, alias="set", description="parameters")
    command: Literal["start", "stop", "reset"] | None = Field(None, description="lifecycle")
    phase: PhaseAction | None = None
    force: dict[str, Value] | None = Field(None, description="point → forced value")
    unforce: list[str] | None = None
    inject: dict[str, Any] | None = Field(None, description="a fault of the driver's fault set")
    clear_faults: bool | str | None = Field(None, description="true: all; a channel: its faults")
    power_cut: PowerCut | None = None
    driver: str | None = Field(None, description="for inject/clear_faults: which driver")
    note: str = ""

    @model_validator(mode="after")
    def _one_action(self) -> Event:
        actions = [k for k in _ACTIONS if getattr(self, k) is not None]
        if len(actions) != 1:
            names = ", ".join(_ACTION_NAMES.get(k, k) for k in _ACTIONS)
            raise ValueError(f"an event needs exactly one action of: {names} (got {actions})")
        if self.driver is not None and actions[0] not in ("inject", "clear_faults"):
            raise ValueError("'driver' applies to inject and clear_faults only")
        if self.inject is not None and "start_s" in self.inject:
            raise ValueError("inject: the fault starts at the event's 'at'; remove 'start_s'")
        return self

    @property
    def action(self) -> str:
        return next(_ACTION_NAMES.get(k, k) for k in _ACTIONS if getattr(self, k) is not None)


_ACTIONS = ("set_", "command", "phase", "force", "unforce", "inject", "clear_faults", "power_cut")
_ACTION_NAMES = {"set_": "set"}


class Bound(_Strict):
    """A signal held to a range or a value: ``{signal: TT101, min: 36.5, max: 37.5}``."""

    signal: str
    min: float | None = None
    max: float | None = None
    equals: Value | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("a bound needs min, max or equals")
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("give equals, or min/max, not both")
        return self

    def describe(self) -> str:
        if self.equals is not None:
            return f"{self.signal} == {self.equals!r}"
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"{self.signal} in [{lo}, {hi}]"


Condition = str | Bound
_KINDS = ("always", "never", "eventually", "check", "at_end")


class Assertion(_Strict):
    """One of: always / never / eventually (over a window), at + check, at_end."""

    name: str = ""
    always: Condition | None = None
    never: Condition | None = None
    eventually: Condition | None = None
    at: Seconds | None = Field(None, description="with check: the value at this time")
    check: Condition | None = None
    at_end: Condition | None = None
    from_: Seconds = Field(0.0, alias="from", description="window start")
    to: Seconds | None = Field(None, description="window end (default: end of run)")
    within: Seconds | None = Field(None, description="eventually: seconds after 'from'")

    @model_validator(mode="after")
    def _one_kind(self) -> Assertion:
        kinds = [k for k in _KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "an assertion needs exactly one of always, never, eventually, "
                f"at + check, at_end (got {kinds or 'none'})"
            )
        kind = kinds[0]
        condition = getattr(self, kind)
        if isinstance(condition, str) and not condition.strip():
            raise ValueError(f"{kind}: the condition is empty")
        if (self.at is not None) != (kind == "check"):
            raise ValueError("'at' and 'check' go together (the value of check at time at)")
        windowed = kind in ("always", "never", "eventually")
        if not windowed and ("from_" in self.model_fields_set or self.to is not None):
            raise ValueError(f"'from'/'to' apply to always, never and eventually, not {kind}")
        if self.within is not None and kind != "eventually":
            raise ValueError("'within' applies to eventually only")
        if self.within is not None and self.to is not None:
            raise ValueError("eventually takes 'within' or 'to', not both")
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"window ends (to={self.to:g}) before it starts ({self.from_:g})")
        return self

    @property
    def kind(self) -> str:
        if self.check is not None:
            return "at"
        return next(k for k in _KINDS if getattr(self, k) is not None)

    @property
    def condition(self) -> Condition:
        value: Condition | None = getattr(self, "check" if self.kind == "at" else self.kind)
        assert value is not None
        return value

    @property
    def window_end(self) -> float | None:
        if self.within is not None:
            return self.from_ + self.within
        return self.to

    def label(self) -> str:
        """What the assertion says, for reports: name, or kind + condition + window."""
        cond = self.condition
        text = cond.describe() if isinstance(cond, Bound) else cond
        if self.kind == "at":
            return self.name or f"at t={self.at:g} s: {text}"
        if self.kind == "at_end":
            return self.name or f"at end: {text}"
        end = self.window_end
        window = f"t in [{self.from_:g}, {'end' if end is None else f'{end:g}'}] s"
        return self.name or f"{self.kind} {text} ({window})"


class Scenario(_Strict):
    """A test bench: an app, driver/parameter overrides, a timeline of events, assertions."""

    name: str = ""
    description: str = ""
    app: str | None = Field(None, description="app folder, relative to the scenario file")
    seed: int = Field(0, description="seed of the app's random sources")
    duration: Seconds = Field(description="simulated time to run (s, or '2 h')")
    drivers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="driver name → option overrides (merged)"
    )
    parameters: dict[str, Value] = Field(default_factory=dict, description="set before start")
    timeline: list[Event] = Field(default_factory=list)
    assertions: list[Assertion] = Field(default_factory=list)
    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _positive(self) -> Scenario:
        if self.duration <= 0:
            raise ValueError("duration: must be greater than 0")
        return self

    @field_validator("app")
    @classmethod
    def _app_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\x00" in value):
            raise ValueError("expected the path of an app folder")
        return value

    @property
    def source(self) -> Path | None:
        """The YAML file this scenario came from (None when built in Python)."""
        return self._source

    def app_dir(self, base: Path | None = None) -> Path:
        """The app folder: ``app`` relative to the file, or the folder holding scenarios/."""
        src = self._source
        if self.app is not None:
            root = src.parent if src is not None else (base or Path.cwd())
            return (root / self.app).resolve()
        if src is not None:
            return src.parent.parent.resolve()
        raise ScenarioError("<scenario>", ["at app: required for a scenario built in Python"])

    @property
    def title(self) -> str:
        return self.name or (self._source.stem if self._source is not None else "scenario")


def parse_scenario(data: object, path: Path | str) -> Scenario:
    """Validate already-parsed YAML; raise ScenarioError naming each YAML path."""
    if not isinstance(data, dict):
        raise ScenarioError(
            path, [f"expected a mapping at the top level, got {type(data).__name__}"]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [
            _format_error(e).replace("manifest schema", "scenario schema") for e in exc.errors()
        ]
        raise ScenarioError(path, problems) from None
    if isinstance(path, Path):
        scenario._source = path.resolve()
    return scenario


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario YAML file (a regular UTF-8 file, bounded YAML)."""
    path = Path(path)
    try:
        data = read_yaml_file(path)
    except YamlError as exc:
        raise ScenarioError(path, [str(exc)]) from None
    return parse_scenario(data, path)
