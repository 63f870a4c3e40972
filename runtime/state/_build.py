"""Building a new app version beside the running one: its manifest, modules and programs."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from runtime._engine import ScanEngine
from runtime._loader import LoadedApp, _import_package, build_programs
from runtime._program import AppContext, Parameter
from runtime.manifest import AppManifest, load_manifest, parse_manifest
from runtime.state._pacing import Pacer

# An app's optional state migration: old version, flat state by instance path → new state.
Migrate = Callable[[str, dict[str, Any]], dict[str, Any]]


def read_manifest(app_dir: Path) -> AppManifest:
    """The manifest, parsed with libyaml when available (the pure-Python parser holds the
    GIL for milliseconds); any problem is reported by the ordinary loader's messages."""
    path = app_dir / "app.yaml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return load_manifest(app_dir)  # raises ManifestError with the YAML position
    return parse_manifest(data, path)


def build(
    engine: ScanEngine, manifest: AppManifest, app_dir: Path, *, seed: int, pacer: Pacer
) -> tuple[LoadedApp, Migrate | None]:
    """Import the new logic and construct its programs over the running image.

    Raises whatever the import or a constructor raised, after forgetting the new modules.
    """
    parameters = {p.name: Parameter(p) for p in manifest.parameters}
    package = _import_package(manifest, app_dir)
    context = AppContext(
        app_name=manifest.name, image=engine.image, parameters=parameters, seed=seed
    )
    try:
        pacer.step()
        programs = build_programs(manifest, package, context, app_dir / "app.yaml")
    except Exception:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
        raise
    classes = [type(p) for p in programs.values()]
    modules = [importlib.import_module(cls.__module__) for cls in classes]
    migrate = next((m.migrate for m in modules if callable(getattr(m, "migrate", None))), None)
    new = LoadedApp(
        manifest=manifest,
        app_dir=app_dir,
        image=engine.image,
        drivers=engine.app.drivers,
        parameters=parameters,
        programs=programs,
        package=package,
    )
    return new, migrate
