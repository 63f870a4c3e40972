"""The import direction of DESIGN.md §1, checked on the source with an AST walk."""

from __future__ import annotations

import ast
import itertools
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
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
# hal.opcua likewise: the OPC UA security names, certificates and the variable server that the
# `opcua` driver (runtime) and `sim serve --protocol opcua` (sim_hardware) share; asyncua and
# the cryptography its security policies use.
SUBPACKAGE_ALLOWED = {
    ("hal", "mqtt"): {"aiomqtt", "yaml"},
    ("hal", "opcua"): {"asyncua", "cryptography"},
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


# ---------------------------------------------------------------------------- inside runtime
# Sub-packages of runtime, bottom to top. A module may import its own sub-package and any
# lower rank; never a higher one, nor another sub-package of its own rank (drivers and mqtt
# are two front-ends side by side). ``runtime`` itself (the public API in runtime/__init__.py)
# re-exports the core and sits with it. Every import counts here, also one inside a function
# or under TYPE_CHECKING: a dependency that only type checkers see is still one.
RUNTIME_RANKS: dict[str, int] = {
    "": 0,  # runtime/__init__.py: the public API, re-exported from the core
    "core": 0,  # engine, tasks, clocks, FB/program base, loading, manifest, stats
    "blocks": 1,  # the standard function blocks (FunctionBlock from the core)
    "state": 2,  # retain, snapshots, merge, online change, handover
    "ops": 3,  # commands (the one command path), access, audit
    # The process front-ends' common part: one shared-memory frame per engine, the child's
    # supervision and its end of the pipe.
    "front": 4,
    "mqtt": 5,  # the MQTT front-end: telemetry and commands
    "modbus": 5,  # the Modbus TCP front-end: a register map, audited parameter writes
    # The MQTT I/O driver (found by name through vplc.drivers) writes the front-end's JSON
    # wire format (timestamps, compact JSON), so it sits just above it.
    "drivers": 6,
    "opcua": 6,  # the OPC UA server, a process front-end
    "web": 6,  # the web HMI, a process front-end
    "sparkplug": 6,  # the Sparkplug B edge node, a process front-end beside it
    "host": 7,  # the vplc CLI, the Runtime assembly, view, trace, heartbeat
    "bench": 8,  # test benches: scenarios, replay (a vplc.commands plugin of the CLI)
}


def _all_imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import of a module, with the names of ``from X import a, b`` as X.a, X.b
    (so ``from runtime import ops`` is seen as an import of runtime.ops)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _sub_package(module: str) -> str | None:
    """``runtime.core._engine`` → ``core``; ``runtime`` → ``""``; outside runtime → None."""
    parts = module.split(".")
    if parts[0] != "runtime":
        return None
    if len(parts) == 1 or parts[1] not in RUNTIME_RANKS:
        return ""  # the package root, or a name imported from it (from runtime import Program)
    return parts[1]


def runtime_violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT)
    mine = _sub_package(".".join(rel.with_suffix("").parts))
    assert mine is not None and mine in RUNTIME_RANKS, f"{rel}: a sub-package without a rank"
    bad = []
    seen: set[tuple[int, str]] = set()
    for line, module in _all_imports(path):
        theirs = _sub_package(module)
        if theirs is None or theirs == mine or (line, theirs) in seen:
            continue
        seen.add((line, theirs))
        if (RUNTIME_RANKS[theirs] >= RUNTIME_RANKS[mine] and RUNTIME_RANKS[mine] > 0) or (
            RUNTIME_RANKS[mine] == 0 and theirs not in ("", "core")
        ):
            bad.append(
                f"{rel}:{line} imports {module}: runtime.{mine or '(root)'} (rank "
                f"{RUNTIME_RANKS[mine]}) may import only lower ranks, not runtime.{theirs} "
                f"(rank {RUNTIME_RANKS[theirs]})"
            )
    return bad


def test_runtime_sub_packages_are_known() -> None:
    found = {p.name for p in (ROOT / "runtime").iterdir() if (p / "__init__.py").is_file()}
    assert found == set(RUNTIME_RANKS) - {""}


def test_import_direction_inside_runtime() -> None:
    problems = [v for path in _sources("runtime") for v in runtime_violations(path)]
    assert not problems, "\n".join(problems)


def test_core_imports_none_of_the_upper_sub_packages() -> None:
    """The scan core stands alone: nothing of ops, host, mqtt, state, bench (nor blocks)."""
    upper = ("ops", "host", "mqtt", "state", "bench", "blocks", "drivers")
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "runtime" / "core").rglob("*.py"))
        for line, module in _all_imports(path)
        if _sub_package(module) in upper
    ]
    assert not found, "\n".join(found)


def test_the_runtime_checker_catches_an_upward_import() -> None:
    probe = ROOT / "runtime" / "core" / "_layering_probe.py"
    probe.write_text(
        "def f():\n    from runtime.state import retain\n    from runtime import ops\n"
    )
    try:
        found = runtime_violations(probe)
    finally:
        probe.unlink()
    assert len(found) == 2 and "runtime.state" in found[0] and "runtime.ops" in found[1]


# ------------------------------------------------------------------------------- no cycles
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module of every layer: .py sources, and compiled-only cores (.pyx) by their name."""
    mods: dict[str, Path] = {}
    for layer in sorted(LAYERS):
        for path in sorted((ROOT / layer).rglob("*.py*")):
            if ".venv" in path.parts or path.suffix not in (".py", ".pyx"):
                continue
            mods.setdefault(_module_name(path), path)
    return mods


def _target(name: str, mods: dict[str, Path]) -> str | None:
    """The module an imported name lives in: itself, else its nearest enclosing package."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _edges(path: Path, mods: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, module) for each import of one source. ``from pkg import sub`` ties to the module
    ``pkg.sub`` when there is one, else to ``pkg``; a package's ``__init__`` that Python runs
    first for any of its submodules is no edge of its own (else every package whose
    ``__init__`` re-exports a submodule would be a cycle)."""
    if path.suffix == ".pyx":  # Cython: its (few) Python imports by their text
        text = path.read_text(encoding="utf-8")
        names = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", text, re.M)
        return [(0, t) for t in (_target(n, mods) for n in names) if t]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((node.lineno, sub if sub in mods else node.module))
    return [(line, t) for line, t in ((ln, _target(m, mods)) for ln, m in found) if t]


def import_graph(mods: dict[str, Path] | None = None) -> dict[str, dict[str, int]]:
    """Module → {module it imports: line of the first such import}.

    Every import counts: at module level, inside a function and under TYPE_CHECKING alike.
    A lazy import only hides a cycle from the interpreter: the two modules still need each
    other, cannot be understood, tested or moved apart, and the next refactor that lifts the
    import to the top fails at start-up. Each of the five cycles issue 14 found hid behind an
    import deferred into a function or under TYPE_CHECKING; counting them keeps them out.
    """
    mods = mods if mods is not None else _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        deps: dict[str, int] = {}
        for line, dep in _edges(path, mods):
            if dep != name:
                deps.setdefault(dep, line)
        graph[name] = deps
    return graph


def cycle_path(graph: Mapping[str, Iterable[str]], component: list[str]) -> list[str]:
    """One shortest import path from the component's first module back to itself."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt in members and nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{component}: not a cycle")


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_anywhere() -> None:
    graph = import_graph()
    mods = _modules()
    problems = []
    for component in cycles(graph):
        path = cycle_path(graph, component)
        steps = [
            f"  {a} ({mods[a].relative_to(ROOT)}:{graph[a][b]}) imports {b}"
            for a, b in itertools.pairwise(path)
        ]
        problems.append(
            f"cycle of {len(component)} modules: {' ↔ '.join(component)}\n" + "\n".join(steps)
        )
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycle_path(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    mods = _modules()
    assert "runtime.core._engine" in mods and "runtime.core._histogram" in mods
    real = import_graph(mods)
    assert "runtime.core._task" in real["runtime.core._engine"]
    assert "runtime.core._histogram" in real["runtime.core._stats"]  # a function-level import


def test_a_lazy_import_is_a_cycle_a_package_init_is_not(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    files = {
        "pkg": "from pkg.a import A\n",  # __init__ re-exports: no cycle with pkg.a
        "pkg.a": "from pkg import b\nA = 1\n",  # the module pkg.b, not pkg's __init__
        "pkg.b": "def f():\n    from pkg.c import C\n",
        "pkg.c": "from pkg.b import f\nC = 2\n",
    }
    mods = {}
    for name, text in files.items():
        path = pkg / ("__init__.py" if name == "pkg" else name.split(".")[1] + ".py")
        path.write_text(text)
        mods[name] = path
    graph = import_graph(mods)
    assert graph["pkg.a"] == {"pkg.b": 1}
    assert cycles(graph) == [["pkg.b", "pkg.c"]]
    assert cycle_path(graph, ["pkg.b", "pkg.c"]) == ["pkg.b", "pkg.c", "pkg.b"]
