"""The shipped apps use the app-author API one way: what a reviewer would otherwise re-find.

Cross-program data goes through globals, not ``app.program("batch").x``; quality is checked
as ``point.quality is _BAD`` (an identity test with a module constant: ``== 0`` is a second
spelling, ``Quality.BAD`` an enum lookup per use); phase states, commands and batch steps are
named by their enums, never as string literals; nothing needs ``# type: ignore``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runtime.blocks import COMMANDS, PHASE_STATES

APPS = Path(__file__).resolve().parents[2] / "plc_apps"
SOURCES = sorted(p for p in APPS.rglob("*.py") if p.name != "generate.py")
NAMES = set(PHASE_STATES) | set(COMMANDS) | {"FILL", "HEAT", "GROW", "HARVEST", "DONE"}


def _problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    out = [
        f"line {i}: type: ignore" for i, ln in enumerate(text.splitlines(), 1) if "ignore[" in ln
    ]
    for node in ast.walk(ast.parse(text)):
        call = node.func if isinstance(node, ast.Call) else None
        if isinstance(call, ast.Attribute) and call.attr == "program":
            out.append(f"line {node.lineno}: another program read by name (use a global)")
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        by_value = not all(isinstance(op, ast.Is | ast.IsNot) for op in node.ops)
        if by_value and any(isinstance(o, ast.Attribute) and o.attr == "quality" for o in operands):
            out.append(f"line {node.lineno}: quality compared by value (use `is _BAD`)")
        for o in operands:
            if isinstance(o, ast.Constant) and o.value in NAMES:
                out.append(f"line {node.lineno}: {o.value!r} as a literal (use the enum)")
    return out


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "on = self.app.program('batch').control_on  # type: ignore[attr-defined]\n"
        "bad = self.tt.quality == 0\n"
        "grow = step == 'GROW'\n"
    )
    assert len(_problems(bad)) == 4


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APPS)))
def test_app_sources_use_the_typed_api(path: Path) -> None:
    assert _problems(path) == []
