"""The import direction of DESIGN.md §1, checked on the source with an AST walk."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
LAYERS = {"hal", "runtime", "sim_hardware", "plc_apps", "containers"}

# What each layer may import besides the standard library and itself.
ALLOWED: dict[str, set[str]] = {
    "hal": {"pydantic"},
    "sim_hardware": {"pydantic", "hal"},  # the plant served for HIL talks MQTT via hal.mqtt
    "plc_apps": {"runtime", "hal"},
    "runtime": {"hal"},  # + third-party libraries, but no other layer
    "containers": {"runtime", "hal"},
}
# hal.mqtt is the one MQTT session shared by the bridge and driver (runtime), `sim serve`
# (sim_hardware) and the blue-green deployer (containers): it must live in a layer all of them
# may import, which is hal. Only that sub-package may use the MQTT client library, aiomqtt (and
# PyYAML for a broker file); the rest of hal stays stdlib + pydantic, and `import hal` does not
# load it. paho-mqtt comes with aiomqtt and is used by none of our modules, hal.mqtt included.
SUBPACKAGE_ALLOWED = {("hal", "mqtt"): {"aiomqtt", "yaml"}}
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
    parts = path.relative_to(ROOT).parts
    extra = SUBPACKAGE_ALLOWED.get(tuple(parts[:2]), set()) if len(parts) > 2 else set()
    for line, module in _imports(path):
        top = module.split(".")[0]
        where = f"{path.relative_to(ROOT)}:{line} imports {module}"
        if top == layer or top in STDLIB or top in extra:
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


def test_import_hal_does_not_load_the_mqtt_client() -> None:
    code = (
        "import sys, hal; print([m for m in sys.modules "
        "if m == 'hal.mqtt' or m.split('.')[0] in ('aiomqtt', 'paho')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_mqtt_client_library_only_in_hal_mqtt() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for layer in LAYERS
        for path in _sources(layer)
        for line, module in _imports(path)
        if module.split(".")[0] in ("paho", "aiomqtt")
        and path.relative_to(ROOT).parts[:2] != ("hal", "mqtt")
    ]
    assert not found, "\n".join(found)


def _foreign_private_attributes(path: Path) -> list[str]:
    """``x._name`` where x is not self/cls (or a dunder): reaching into another object."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not (node.attr.startswith("__") and node.attr.endswith("__"))
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")
    return found


def test_hal_mqtt_uses_only_the_public_api_of_its_client() -> None:
    """aiomqtt's private attributes (``client._client`` and the like) change without notice."""
    found = [v for p in sorted((ROOT / "hal" / "mqtt").glob("*.py"))
             for v in _foreign_private_attributes(p)]  # fmt: skip
    assert not found, "\n".join(found)
    probe = ROOT / "hal" / "mqtt" / "_private_probe.py"
    probe.write_text("def f(client):\n    return client._client\n")
    try:
        assert len(_foreign_private_attributes(probe)) == 1  # the check can fail
    finally:
        probe.unlink()


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = ROOT / "sim_hardware" / "_layering_probe.py"
    bad.write_text("import runtime\nfrom docker import DockerClient\n")
    try:
        found = violations("sim_hardware", bad)
    finally:
        bad.unlink()
    assert len(found) == 2
    assert "must not import 'runtime'" in found[0]
