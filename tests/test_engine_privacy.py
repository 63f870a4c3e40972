"""No code outside runtime/core reaches into the scan engine or its tasks: only their API.

The rule, checked on the source with an AST walk: outside ``runtime/core`` (and the core's own
tests), no attribute access ``obj._name`` where ``obj`` is not ``self``/``cls`` and ``_name`` is
a private attribute or method of ``ScanEngine`` or ``Task``. Matching by name rather than by
the object's type needs no type inference and errs on the strict side: a private name of
another class that happens to equal one of the engine's must then be accessed through
``self`` (which is what a class's own privates are for).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "runtime" / "core"
SCANNED = ("hal", "runtime", "sim_hardware", "plc_apps", "containers", "tests")
EXEMPT = (CORE, ROOT / "tests" / "runtime" / "core")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_names() -> set[str]:
    """Private attributes and methods of ScanEngine (runtime/core/_engine.py) and Task."""
    names: set[str] = set()
    for path, cls in ((CORE / "_engine.py", "ScanEngine"), (CORE / "_task.py", "Task")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
        for node in ast.walk(body):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "self" and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # __slots__ entries
    return {n for n in names if _is_private(n)}


def reaches(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, "obj._name") for each access of one of ``names`` on something but self/cls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in names:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append((node.lineno, f"{ast.unparse(owner)}.{node.attr}"))
    return sorted(set(found))


def _scanned() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in (ROOT / top).rglob("*.py"):
            if ".venv" in path.parts or any(path.is_relative_to(e) for e in EXEMPT):
                continue
            files.append(path)
    return sorted(files)


def test_the_rule_sees_the_engine_privates() -> None:
    names = private_names()
    assert {"_run_programs", "_commands", "_hooks", "_calls", "_guards", "_cycle"} <= names
    bad = "def f(engine, task):\n    engine._run_programs(task)\n    task._calls = ()\n"
    assert reaches(bad, names) == [(2, "engine._run_programs"), (3, "task._calls")]
    assert reaches("class A:\n    def f(self):\n        self._calls = 1\n", names) == []


def test_no_code_outside_the_core_touches_engine_or_task_privates() -> None:
    names = private_names()
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {what} is private to runtime/core; use the engine "
        "API (add_cycle_hook, add_program_guard, pause_programs, submit, ...)"
        for path in _scanned()
        for line, what in reaches(path.read_text(encoding="utf-8"), names)
    ]
    assert not problems, "\n".join(problems)
