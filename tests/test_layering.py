"""The import direction of DESIGN.md §1, checked on the source with an AST walk."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
LAYERS = {"hal", "runtime", "sim_hardware", "plc_apps", "containers"}

# What each layer may import besides the standard library and itself.
ALLOWED: dict[str, set[str]] = {
    "hal": {"pydantic"},
    "sim_hardware": {"pydantic", "hal", "aiomqtt"},  # aiomqtt: the plant served for HIL
    "plc_apps": {"runtime", "hal"},
    "runtime": {"hal"},  # + third-party libraries, but no other layer
    "containers": {"runtime", "hal"},
}
THIRD_PARTY_OK = {"runtime", "containers"}
# plc_apps see only the public API: runtime, runtime.blocks and hal (no private modules).
PUBLIC_FOR_APPS = {"runtime", "runtime.blocks", "hal"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _sources(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if ".venv" not in p.parts)


def violations(layer: str, path: Path) -> list[str]:
    bad = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        where = f"{path.relative_to(ROOT)}:{line} imports {module}"
        if top == layer or top in STDLIB:
            continue
        if top in LAYERS - ALLOWED[layer] - {layer}:
            bad.append(f"{where}: layer {layer!r} must not import {top!r}")
        elif top not in LAYERS and top not in ALLOWED[layer] and layer not in THIRD_PARTY_OK:
            bad.append(f"{where}: layer {layer!r} may use only {sorted(ALLOWED[layer])}")
        elif layer == "plc_apps" and top in LAYERS and module not in PUBLIC_FOR_APPS:
            bad.append(f"{where}: apps use only the public API {sorted(PUBLIC_FOR_APPS)}")
    return bad


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_import_direction(layer: str) -> None:
    problems = [v for path in _sources(layer) for v in violations(layer, path)]
    assert not problems, "\n".join(problems)


def test_nothing_imports_containers() -> None:
    importers = [
        f"{path.relative_to(ROOT)}:{line}"
        for layer in LAYERS - {"containers"}
        for path in _sources(layer)
        for line, module in _imports(path)
        if module.split(".")[0] == "containers"
    ]
    assert not importers


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = ROOT / "sim_hardware" / "_layering_probe.py"
    bad.write_text("import runtime\nfrom docker import DockerClient\n")
    try:
        found = violations("sim_hardware", bad)
    finally:
        bad.unlink()
    assert len(found) == 2
    assert "must not import 'runtime'" in found[0]
