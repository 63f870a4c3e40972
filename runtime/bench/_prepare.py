"""Everything checked before a scenario runs: app, overrides, events and assertions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal import Driver, DriverError, coerce, get_driver_factory
from runtime.bench._expr import ExprError, Getter, compile_expr, compile_signal
from runtime.bench._schema import Assertion, Bound, Event, Scenario, ScenarioError
from runtime.bench._signals import make_resolver
from runtime.blocks import COMMANDS, PHASE
from runtime.core._engine import ScanEngine
from runtime.core._loader import LoadedApp, _build_drivers
from runtime.core.manifest import ManifestError
from runtime.host._apps import open_app

__all__ = ["Prepared", "prepare"]

Action = Callable[[ScanEngine], str]


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
    engine: ScanEngine
    clock_s: list[float]  # [current app time], read by the ``t`` signal
    events: list[tuple[Event, Action]] = field(default_factory=list)
    checks: list[Compiled] = field(default_factory=list)


class _Problems(list[str]):
    def add(self, where: str, exc: Exception | str) -> None:
        self.append(f"at {where}: {exc}")


def prepare(scenario: Scenario, *, engine_factory: Callable[[LoadedApp], ScanEngine]) -> Prepared:
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
    engine = engine_factory(app)
    clock_s = [0.0]
    prepared = Prepared(scenario, app, engine, clock_s)
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
    """Validate one event now; return what applies it between two cycles."""
    if ev.set_ is not None:
        updates = {n: _parameter(app, n).spec.check(v) for n, v in ev.set_.items()}

        def set_params(_e: ScanEngine) -> str:
            return ", ".join(
                f"{n}: {app.parameters[n].set(v)!r} → {v!r}" for n, v in updates.items()
            )

        return set_params
    if ev.command is not None:
        return _lifecycle(ev.command)
    if ev.phase is not None:
        return _phase(app, ev.phase.block, ev.phase.command)
    if ev.force is not None:
        forced = {}
        for name, value in ev.force.items():
            if name not in app.image:
                raise KeyError(f"unknown point {name!r}")
            forced[app.image[name]] = coerce(app.image[name].type, value)

        def force(_e: ScanEngine) -> str:
            for point, value in forced.items():
                point.force(value)
            return ", ".join(f"{p.name} forced to {v!r}" for p, v in forced.items())

        return force
    if ev.unforce is not None:
        points = [app.image[n] for n in ev.unforce if n in app.image or _unknown(n)]

        def unforce(_e: ScanEngine) -> str:
            for p in points:
                p.unforce()
            return "unforced " + ", ".join(p.name for p in points)

        return unforce
    if ev.inject is not None:
        return _inject(app, ev)
    if ev.power_cut is not None:
        return lambda _e: "power cut"  # the runner replaces the runtime itself (_powercut)
    driver = _fault_driver(app, ev, "clear_faults")
    channel = ev.clear_faults if isinstance(ev.clear_faults, str) else None
    return lambda _e: f"{driver.clear_faults(channel)} fault(s) cleared"  # type: ignore[attr-defined]


def _unknown(name: str) -> bool:
    raise KeyError(f"unknown point {name!r}")


def _lifecycle(cmd: str) -> Action:
    def lifecycle(engine: ScanEngine) -> str:
        before = engine.state.value
        {"start": engine.start, "stop": engine.stop, "reset": engine.reset}[cmd]()
        return f"{before} → {engine.state.value}"

    return lifecycle


def _phase(app: LoadedApp, path: str, command: str) -> Action:
    prog_name, _, inner = path.partition(".")
    program = app.programs.get(prog_name)
    blocks = dict(program.blocks()) if program is not None else {}
    block = blocks.get(inner)
    if not isinstance(block, PHASE):
        phases = [
            f"{p}.{b}"
            for p, prog in app.programs.items()
            for b, blk in prog.blocks()
            if isinstance(blk, PHASE)
        ]
        raise ValueError(
            f"{path!r} is not a PHASE instance (PHASE blocks: {', '.join(phases) or 'none'})"
        )
    if command.strip().upper() not in COMMANDS:
        raise ValueError(f"unknown phase command {command!r} (commands: {', '.join(COMMANDS)})")

    def phase(_e: ScanEngine) -> str:
        result = block.command(command)
        if not result.accepted:
            raise RuntimeError(f"{path}: {command} refused: {result.reason}")
        return f"{path}: {result.state_before} → {result.state_after}"

    return phase


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
