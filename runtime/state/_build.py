"""Building a new app version beside the running one: its manifest, modules and programs."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from hal import ProcessImage
from runtime.core._engine import ScanEngine
from runtime.core._leaves import initial_values
from runtime.core._loader import LoadedApp, _import_package, build_programs, find_migrate
from runtime.core._migrate import Migrate
from runtime.core._program import AppContext, Parameter, build_globals
from runtime.core.manifest import AppManifest, load_manifest, parse_manifest
from runtime.state._pacing import Pacer

__all__ = ["Migrate", "build", "read_manifest"]  # Migrate: from runtime.core._migrate


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
    engine: ScanEngine,
    manifest: AppManifest,
    app_dir: Path,
    *,
    seed: int,
    pacer: Pacer,
    image: ProcessImage,
) -> LoadedApp:
    """Import the new logic and construct its programs over ``image`` (the running image, or
    the one an online change that adds or removes points switches to).

    Its initial values are recorded before anything else touches the new instances. Raises
    whatever the import or a constructor raised, after forgetting the new modules.
    """
    parameters = {p.name: Parameter(p) for p in manifest.parameters}
    # New cells at the new version's initial values; the merge carries the running ones over.
    global_vars = build_globals(manifest.globals)
    package = _import_package(manifest, app_dir)
    context = AppContext(
        app_name=manifest.name,
        image=image,
        parameters=parameters,
        seed=seed,
        global_vars=global_vars,
    )
    try:
        pacer.step()
        programs = build_programs(manifest, package, context, app_dir / "app.yaml")
    except Exception:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
        raise
    return LoadedApp(
        manifest=manifest,
        app_dir=app_dir,
        image=image,
        drivers=engine.app.drivers,
        parameters=parameters,
        programs=programs,
        package=package,
        globals=global_vars,
        initials=initial_values(programs, global_vars),
        migrate=find_migrate(programs),
    )
