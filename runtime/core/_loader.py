"""App loading: manifest → process image, drivers, parameters and program instances."""

from __future__ import annotations

import importlib
import itertools
import re
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hal import Direction, Driver, DriverError, PointSpec, ProcessImage, get_driver_factory
from runtime.core._declare import AppConfigError
from runtime.core._instances import InstanceTree
from runtime.core._leaves import initial_values
from runtime.core._migrate import Migrate, applies
from runtime.core._program import AppContext, GlobalVar, Parameter, Program, build_globals
from runtime.core._pyx import PyxBuildError, build_app_extensions
from runtime.core.manifest import AppManifest, ManifestError, format_validation_error, load_manifest

_load_counter = itertools.count(1)


@dataclass
class LoadedApp:
    """Everything a scan engine needs, built and checked before RUN."""

    manifest: AppManifest
    app_dir: Path
    image: ProcessImage
    drivers: dict[str, Driver]
    parameters: dict[str, Parameter]
    programs: dict[str, Program]
    package: str
    # The manifest's global variables by name (instance paths ``globals.<name>``).
    globals: dict[str, GlobalVar] = field(default_factory=dict)
    # Instance path → value of every state leaf right after construction, before any
    # retained or transferred value was written: this version's initial values, the base of
    # the three-way merge of a version change (runtime.state._merge).
    initials: dict[str, Any] = field(default_factory=dict)
    migrate: Migrate | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def tree(self) -> InstanceTree:
        """Programs, blocks and state leaves by instance path (runtime.core._instances)."""
        return InstanceTree(self.programs, self.globals)

    def migrate_for(self, old_version: str) -> Migrate | None:
        """The app's migrate hook if state of ``old_version`` must go through it, else None
        (no hook, or one declared ``@migration(below=…)`` for older versions only)."""
        return self.migrate if applies(self.migrate, old_version) else None

    @property
    def parameter_defaults(self) -> dict[str, Any]:
        """Parameter name → its manifest default: a parameter's initial value."""
        return {name: p.spec.check(p.spec.default) for name, p in self.parameters.items()}

    @property
    def version(self) -> str:
        return self.manifest.version


def load_app(app_dir: Path | str, *, seed: int = 0) -> LoadedApp:
    """Validate the manifest, import the logic, bind drivers and build programs.

    Everything that can be wrong with an app is found here, before RUN; each problem is
    reported as a ManifestError naming app.yaml and the YAML path.
    """
    app_dir = Path(app_dir).resolve()
    manifest = load_manifest(app_dir)
    path = app_dir / "app.yaml"
    image = ProcessImage(manifest.points)
    parameters = {p.name: Parameter(p) for p in manifest.parameters}
    global_vars = build_globals(manifest.globals)
    drivers = _build_drivers(manifest, image, path)
    package = _import_package(manifest, app_dir)
    context = AppContext(
        app_name=manifest.name,
        image=image,
        parameters=parameters,
        seed=seed,
        global_vars=global_vars,
    )
    programs = build_programs(manifest, package, context, path)
    return LoadedApp(
        manifest=manifest,
        app_dir=app_dir,
        image=image,
        drivers=drivers,
        parameters=parameters,
        programs=programs,
        package=package,
        globals=global_vars,
        initials=initial_values(programs, global_vars),
        migrate=find_migrate(programs),
    )


def find_migrate(programs: dict[str, Program]) -> Migrate | None:
    """The app's ``migrate(old_version, state)``, defined in the module of any of its programs."""
    for cls in (type(p) for p in programs.values()):
        candidate = getattr(importlib.import_module(cls.__module__), "migrate", None)
        if callable(candidate):
            return candidate  # type: ignore[no-any-return]
    return None


def build_programs(
    manifest: AppManifest, package: str, context: AppContext, path: Path
) -> dict[str, Program]:
    """Construct every program of the manifest, in order, over ``context``.

    Shared by a fresh load and an online change (which builds over the running image).
    """
    programs: dict[str, Program] = {}
    for i, spec in enumerate(manifest.programs):
        # The manifest's args are keyword arguments of the class (or Program's own ``prefix``).
        cls: Callable[..., Program] = _resolve_program(
            package, spec.entry, f"programs.{i}.entry", path
        )
        context._program = spec.name
        try:
            programs[spec.name] = context.programs[spec.name] = cls(context, **spec.args)
        except AppConfigError as exc:
            raise ManifestError(path, [f"at programs.{i} ({spec.name}): {exc}"]) from None
        except BaseException as exc:  # sys.exit() or a KeyboardInterrupt of the app's own
            raise ManifestError(
                path,
                [
                    f"at programs.{i} ({spec.name}): constructing {spec.entry} raised "
                    + app_failure(exc, path.parent)
                ],
            ) from None
    return programs


def app_failure(exc: BaseException, app_dir: Path) -> str:
    """What app code raised, and where in the app's own files: ``SystemExit … at logic.py:4``."""
    if isinstance(exc, SystemExit):
        what = f"SystemExit (sys.exit({exc.code!r}): app logic must not exit the runtime)"
    elif isinstance(exc, KeyboardInterrupt):
        what = "KeyboardInterrupt"
    else:
        text = " ".join(str(exc).split())
        text = text if len(text) <= 300 else text[:300] + "…"
        what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    where = _app_location(exc, app_dir)
    return f"{what} at {where}" if where else what


def _app_location(exc: BaseException, app_dir: Path) -> str:
    """``file:line`` of the innermost frame in the app's folder (a SyntaxError: its own)."""
    spots: list[tuple[str | None, int | None]] = [
        (f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)
    ]
    if isinstance(exc, SyntaxError):
        spots.append((exc.filename, exc.lineno))
    root = app_dir.resolve()
    for filename, lineno in reversed(spots):
        if not filename:
            continue
        try:
            rel = Path(filename).resolve().relative_to(root)
        except (ValueError, OSError):
            continue
        return f"{rel}:{lineno}" if lineno else str(rel)
    return ""


def _build_drivers(manifest: AppManifest, image: ProcessImage, path: Path) -> dict[str, Driver]:
    drivers = {
        name: _build_driver(name, cfg.type, cfg.options, path)
        for name, cfg in manifest.drivers.items()
    }
    for name, driver in drivers.items():
        channels = driver.channels()
        bindings = []
        for i, spec in enumerate(manifest.points):
            if spec.driver != name:
                continue
            where = f"at points.{i}.channel ({spec.name})"
            info = channels.get(spec.channel)
            if info is None:
                known = ", ".join(sorted(channels))
                raise ManifestError(
                    path,
                    [f"{where}: driver {name!r} has no channel {spec.channel!r} (has: {known})"],
                )
            if spec.direction not in info.directions:
                can = "/".join(sorted(d.value for d in info.directions))
                raise ManifestError(
                    path,
                    [
                        f"{where}: point direction is {spec.direction.value!r} but channel "
                        f"{spec.channel!r} of driver {name!r} is {can}-only"
                        + (
                            " (an output cannot be bound to a sensor)"
                            if spec.direction is Direction.OUT
                            else ""
                        )
                    ],
                )
            _check_channel_range(spec, info.range, f"at points.{i}", name, path)
            bindings.append((image[spec.name], spec.channel))
        try:
            driver.bind(bindings)
        except DriverError as exc:
            raise ManifestError(path, [f"at drivers.{name}: {exc}"]) from None
        except Exception as exc:
            raise ManifestError(
                path,
                [f"at drivers.{name}: binding the points raised {app_failure(exc, path.parent)}"],
            ) from None
    return drivers


def _check_channel_range(
    spec: PointSpec, rng: tuple[float, float] | None, where: str, driver: str, path: Path
) -> None:
    """An output's safe and initial values must be values its device accepts."""
    if rng is None or spec.direction is not Direction.OUT:
        return
    for key in ("safe", "initial"):
        value = getattr(spec, key)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and not rng[0] <= value <= rng[1]:
            raise ManifestError(
                path,
                [
                    f"{where}.{key} ({spec.name}): {value!r} is outside the range "
                    f"{rng[0]:g}..{rng[1]:g} of channel {spec.channel!r} of driver {driver!r}"
                ],
            )


def _build_driver(name: str, kind: str, options: dict[str, Any], path: Path) -> Driver:
    """One driver from its factory; its options checked against the factory's ``Options``."""
    where = f"drivers.{name}"
    try:
        factory = get_driver_factory(kind)
    except DriverError as exc:
        raise ManifestError(path, [f"at {where}.type: {exc}"]) from None
    model = getattr(factory, "Options", None)
    try:
        if model is not None:
            model.model_validate(dict(options))
        return factory(name=name, options=options)
    except ValidationError as exc:  # the Options model's, or a driver validating by itself
        raise ManifestError(path, format_validation_error(exc, f"{where}.options")) from None
    except DriverError as exc:
        raise ManifestError(path, [f"at {where}: {exc}"]) from None
    except Exception as exc:
        raise ManifestError(
            path, [f"at {where}: driver type {kind!r} raised {app_failure(exc, path.parent)}"]
        ) from None


def _import_package(manifest: AppManifest, app_dir: Path) -> str:
    """Give the app's modules a private package so two versions can be loaded side by side."""
    tag = re.sub(r"\W", "_", manifest.version)
    package = f"_vplc_app_{manifest.name}_{tag}_{next(_load_counter)}"
    module = types.ModuleType(package)
    try:  # the app's own *.pyx blocks, compiled (or found in the cache) as app modules
        module.__path__ = [str(app_dir), *build_app_extensions(app_dir)]
    except PyxBuildError as exc:
        raise ManifestError(app_dir / "app.yaml", [f"Cython module {exc}"]) from None
    module.__file__ = str(app_dir / "__init__.py")
    sys.modules[package] = module
    return package


def _resolve_program(package: str, entry: str, where: str, path: Path) -> type[Program]:
    module_name, _, class_name = entry.partition(":")
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{package}.{module_name}":
            raise ManifestError(
                path,
                [
                    f"at {where}: module {module_name!r} not found in the app folder "
                    f"(expected {module_name.replace('.', '/')}.py next to app.yaml)"
                ],
            ) from None
        raise ManifestError(
            path, [f"at {where}: importing {module_name!r} failed: {app_failure(exc, path.parent)}"]
        ) from None
    except BaseException as exc:  # sys.exit() or a KeyboardInterrupt at import time too
        raise ManifestError(
            path, [f"at {where}: importing {module_name!r} raised {app_failure(exc, path.parent)}"]
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ManifestError(
            path, [f"at {where}: module {module_name!r} has no class {class_name!r}"]
        )
    if not (isinstance(cls, type) and issubclass(cls, Program)):
        raise ManifestError(
            path, [f"at {where}: {entry} is not a Program subclass (runtime.Program)"]
        )
    return cls


def unload_app(app: LoadedApp) -> None:
    """Forget the app's private modules (after an online change or at shutdown)."""
    for name in [m for m in sys.modules if m == app.package or m.startswith(app.package + ".")]:
        del sys.modules[name]
