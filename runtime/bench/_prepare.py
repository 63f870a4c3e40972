"""Everything checked before a scenario runs: app, overrides, events and assertions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from hal import Driver, DriverError, get_driver_factory
from runtime.bench._expr import ExprError, Getter, compile_expr, compile_signal
from runtime.bench._schema import Assertion, Bound, Event, Scenario, ScenarioError
from runtime.bench._signals import make_resolver
from runtime.core._engine import ScanEngine
from runtime.core._loader import LoadedApp, _build_drivers
from runtime.core.manifest import ManifestError, format_validation_error
from runtime.host._apps import open_app
from runtime.ops import Command, RefusedError, command_action
from runtime.ops._commands import notify_command

__all__ = ["Prepared", "prepare"]

Action = Callable[[ScanEngine], str]
OpsAction = Callable[[ScanEngine], tuple[Any, Any]]  # a command's action (runtime.ops)


@dataclass
class Compiled:
    """An assertion ready to sample: a boolean test and the signals it reads."""

    spec: Assertion
    test: Callable[[], bool]
    signals: dict[str, Getter]
    text: str
    where: str = ""  # "<file>: at assertions.<i>.<kind>", for errors found while running


@dataclass
class Prepared:
    scenario: Scenario
    app: LoadedApp
    clock_s: list[float]  # [current app time], read by the ``t`` signal
    events: list[tuple[Event, Action]] = field(default_factory=list)
    checks: list[Compiled] = field(default_factory=list)


class _Problems(list[str]):
    def add(self, where: str, exc: Exception | str) -> None:
        self.append(f"at {where}: {exc}")


def prepare(scenario: Scenario) -> Prepared:
    """Load the app with the scenario's overrides and compile every event and assertion.

    Raises ScenarioError listing every problem with its YAML path, before anything runs.
    """
    where = scenario.source or "<scenario>"
    try:
        app_dir = scenario.app_dir()
        app = open_app(app_dir, seed=scenario.seed)
    except ManifestError as exc:
        raise ScenarioError(where, [f"at app: {exc}"]) from None
    except (OSError, ValueError) as exc:  # a path the OS refuses (too long, a NUL byte)
        raise ScenarioError(where, [f"at app: cannot use {scenario.app!r}: {exc}"]) from None
    problems = _Problems()
    _override_drivers(scenario, app, problems)
    for name, value in scenario.parameters.items():
        try:
            _parameter(app, name).set(value)
        except (KeyError, TypeError, ValueError) as exc:
            problems.add(f"parameters.{name}", _msg(exc))
    clock_s = [0.0]
    prepared = Prepared(scenario, app, clock_s)
    order = sorted(range(len(scenario.timeline)), key=lambda i: scenario.timeline[i].at)
    for i in order:
        ev = scenario.timeline[i]
        if ev.at >= scenario.duration:
            problems.add(
                f"timeline.{i}.at", f"{ev.at:g} s is not before the end ({scenario.duration:g} s)"
            )
            continue
        cut = ev.power_cut
        if cut is not None and ev.at + cut.off_for >= scenario.duration:
            problems.add(
                f"timeline.{i}.power_cut.off_for",
                f"power returns at {ev.at + cut.off_for:g} s, not before the end "
                f"({scenario.duration:g} s)",
            )
            continue
        dark = [
            c
            for c in scenario.timeline
            if c.power_cut and c.at < ev.at < c.at + c.power_cut.off_for
        ]
        if dark:
            problems.add(f"timeline.{i}.at", f"{ev.at:g} s is while the PLC has no power")
            continue
        try:
            prepared.events.append((ev, _action(app, ev)))
        except (ExprError, DriverError, KeyError, TypeError, ValueError) as exc:
            problems.add(f"timeline.{i}.{ev.action}", _msg(exc))
    resolve = make_resolver(app, lambda: clock_s[0])
    for i, spec in enumerate(scenario.assertions):
        try:
            _check_times(spec, scenario.duration)
            prepared.checks.append(
                _compile(spec, resolve, f"{where}: at assertions.{i}.{spec.kind}")
            )
        except (ExprError, ValueError) as exc:
            problems.add(f"assertions.{i}.{spec.kind}", exc)
    if problems:
        raise ScenarioError(where, problems)
    return prepared


def _msg(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _parameter(app: LoadedApp, name: str) -> Any:
    if name not in app.parameters:
        raise KeyError(f"unknown parameter {name!r} (parameters: {', '.join(app.parameters)})")
    return app.parameters[name]


def _override_drivers(scenario: Scenario, app: LoadedApp, problems: _Problems) -> None:
    """Rebuild the overridden drivers from the manifest options merged with the scenario's."""
    if not scenario.drivers:
        return
    configs = dict(app.manifest.drivers)
    for name, over in scenario.drivers.items():
        if name not in configs:
            problems.add(
                f"drivers.{name}", f"the app has no driver {name!r} ({', '.join(configs)})"
            )
            return
        opts = dict(configs[name].options)
        for key, value in over.items():
            base = opts.get(key)  # nested option maps (plant params, initial) merge key by key
            opts[key] = (
                {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
            )
        configs[name] = configs[name].model_copy(update={"options": opts})
    manifest = app.manifest.model_copy(update={"drivers": configs})
    try:
        app.drivers = _build_drivers(manifest, app.image, app.app_dir / "app.yaml")
    except ManifestError as exc:
        problems.add("drivers", "; ".join(exc.problems))
        return
    app.manifest = manifest


def _fault_driver(app: LoadedApp, ev: Event, method: str) -> Driver:
    """The driver named by the event, or the only one that supports fault injection."""
    if ev.driver is not None:
        if ev.driver not in app.drivers:
            raise KeyError(f"unknown driver {ev.driver!r} (drivers: {', '.join(app.drivers)})")
        driver = app.drivers[ev.driver]
        if not callable(getattr(driver, method, None)):
            raise ValueError(f"driver {ev.driver!r} does not support {method}()")
        return driver
    able = [d for d in app.drivers.values() if callable(getattr(d, method, None))]
    if len(able) != 1:
        names = ", ".join(d.name for d in able) or "none"
        raise ValueError(f"name the driver: {len(able)} drivers support {method}() ({names})")
    return able[0]


def _action(app: LoadedApp, ev: Event) -> Action:
    """Validate one event now; return what applies it between two cycles.

    Operator actions (set, command, phase, force, unforce) are commands through the one
    command path (runtime.ops): validated here, before the run, and applied as an operator's
    would be; plant actions (inject, clear_faults, power_cut) are the bench's own.
    """
    if ev.set_ is not None:
        sets = [_command(app, cmd="set_parameter", name=n, value=v) for n, v in ev.set_.items()]
        names = list(ev.set_)
        return _joined(sets, lambda i, old, new: f"{names[i]}: {old!r} → {new!r}")
    if ev.command is not None:
        return _joined([_command(app, cmd=ev.command)], lambda i, old, new: f"{old} → {new}")
    if ev.phase is not None:
        path = ev.phase.block
        phase = _command(app, cmd="phase", block=path, command=ev.phase.command)
        return _joined([phase], lambda i, old, new: f"{path}: {old} → {new}")
    if ev.force is not None:
        forced = [_command(app, cmd="force", point=n, value=v) for n, v in ev.force.items()]
        points = list(ev.force)
        return _joined(forced, lambda i, old, new: f"{points[i]} forced to {new!r}")
    if ev.unforce is not None:
        unforced = [_command(app, cmd="unforce", point=n) for n in ev.unforce]
        return _joined(unforced, lambda i, old, new: "", head="unforced " + ", ".join(ev.unforce))
    if ev.inject is not None:
        return _inject(app, ev)
    if ev.power_cut is not None:
        return lambda _e: "power cut"  # the runner replaces the runtime itself (_powercut)
    driver = _fault_driver(app, ev, "clear_faults")
    channel = ev.clear_faults if isinstance(ev.clear_faults, str) else None
    return lambda _e: f"{driver.clear_faults(channel)} fault(s) cleared"  # type: ignore[attr-defined]


_COMMAND: TypeAdapter[Any] = TypeAdapter(Command)
_SENT = datetime(2000, 1, 1, tzinfo=UTC)  # commands of a bench are not checked for staleness


def _command(app: LoadedApp, **fields: Any) -> OpsAction:
    """An operator command of the timeline, validated against the app by runtime.ops."""
    try:
        cmd = _COMMAND.validate_python({"id": "bench", "ts": _SENT, "user": "bench", **fields})
    except ValidationError as exc:
        raise ValueError("; ".join(format_validation_error(exc))) from None
    try:
        action = command_action(app, cmd)
    except RefusedError as exc:
        raise ValueError(str(exc)) from None

    def run(engine: ScanEngine) -> tuple[Any, Any]:
        old, new = action(engine)
        notify_command(engine, cmd, old, new, [])  # the batch record's operator actions
        return old, new

    return run


def _joined(
    actions: list[OpsAction], text: Callable[[int, Any, Any], str], *, head: str = ""
) -> Action:
    """Run commands' actions in order (between cycles); one line saying what each changed."""

    def run(engine: ScanEngine) -> str:
        lines = [text(i, *action(engine)) for i, action in enumerate(actions)]
        return head or ", ".join(lines)

    return run


def _inject(app: LoadedApp, ev: Event) -> Action:
    driver = _fault_driver(app, ev, "inject")
    assert ev.inject is not None
    fault = {**ev.inject, "start_s": ev.at}
    # Validate on a throwaway driver of the same type and options: refused before the run.
    cfg = app.manifest.drivers[driver.name]
    probe: Any = get_driver_factory(cfg.type)(name=driver.name, options=cfg.options)
    probe.inject(dict(fault))
    target: Any = driver
    return lambda _e: f"{target.name}: injected {target.inject(dict(fault))!r}"


def _check_times(spec: Assertion, duration: float) -> None:
    times = {"from": spec.from_, "to": spec.to, "at": spec.at, "from + within": spec.window_end}
    for key, value in times.items():
        if value is not None and value > duration:
            raise ValueError(f"{key} = {value:g} s is after the end of the run ({duration:g} s)")


def _compile(spec: Assertion, resolve: Callable[..., Getter], where: str = "") -> Compiled:
    cond = spec.condition
    if isinstance(cond, Bound):
        name, get = compile_signal(cond.signal, resolve)
        lo, hi, eq = cond.min, cond.max, cond.equals
        if eq is not None:
            test: Callable[[], bool] = lambda: get() == eq  # noqa: E731
        else:
            test = lambda: (lo is None or get() >= lo) and (hi is None or get() <= hi)  # noqa: E731
        compiled = Compiled(spec, test, {name: get}, cond.describe(), where)
    else:
        expr = compile_expr(cond, resolve, as_bool=True)
        compiled = Compiled(spec, expr.evaluate, expr.signals, cond, where)
    try:  # types are known now: "str < float" is a scenario error, not a failed run
        compiled.test()
    except (TypeError, ExprError) as exc:
        raise ExprError(f"cannot evaluate {compiled.text!r}: {exc}") from None
    except ArithmeticError:
        pass  # e.g. a division by a signal that is still 0 before the first cycle
    return compiled


def app_label(app: LoadedApp) -> str:
    return f"{app.name} {app.version} ({Path(app.app_dir).name})"
