"""Invalid scenarios are refused before the run, naming the file and the YAML path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.bench import ExprError, ScenarioError, load_scenario, run_scenario
from runtime.bench._expr import compile_expr
from tests.bench_scenarios.conftest import write_scenario

VPLC = str(Path(sys.executable).with_name("vplc"))
OK = [{"at_end": "Y >= 0"}]


@pytest.mark.parametrize(
    ("data", "where", "text"),
    [
        ({"duration": 10, "asserts": []}, "at asserts", "unknown key"),
        ({"duration": "ten", "assertions": OK}, "at duration", "expected seconds"),
        ({"assertions": OK}, "at duration", "required key is missing"),
        ({"duration": 10, "timeline": [{"at": 1}]}, "at timeline.0", "exactly one action"),
        ({"duration": 10, "timeline": [{"at": 1, "sett": {}}]}, "at timeline.0.sett", "unknown"),
        (
            {"duration": 10, "assertions": [{"always": "Y > 0", "within": 3}]},
            "at assertions.0",
            "within",
        ),
        (
            {"duration": 10, "timeline": [{"at": 12, "set": {"gain": 2}}]},
            "at timeline.0.at",
            "not before the end",
        ),
        (
            {"duration": 10, "timeline": [{"at": 1, "set": {"gian": 2}}]},
            "at timeline.0.set",
            "unknown parameter 'gian'",
        ),
        (
            {"duration": 10, "timeline": [{"at": 1, "set": {"gain": 99}}]},
            "at timeline.0.set",
            "above max",
        ),
        ({"duration": 10, "parameters": {"gain": -1}}, "at parameters.gain", "below min"),
        (
            {
                "duration": 10,
                "timeline": [{"at": 1, "phase": {"block": "main.count", "command": "HOLD"}}],
            },
            "at timeline.0.phase",
            "not a PHASE",
        ),
        (
            {"duration": 10, "timeline": [{"at": 1, "inject": {"kind": "drift"}}]},
            "at timeline.0.inject",
            "0 drivers support inject()",
        ),
        (
            {"duration": 10, "timeline": [{"at": 1, "force": {"Z": 1}}]},
            "at timeline.0.force",
            "unknown point 'Z'",
        ),
        (
            {"duration": 10, "assertions": [{"always": "TT101 > 3"}]},
            "at assertions.0.always",
            "unknown signal 'TT101'",
        ),
        (
            {"duration": 10, "assertions": [{"never": "main.nothing"}]},
            "at assertions.0.never",
            "no 'nothing'",
        ),
        (
            {"duration": 10, "assertions": [{"at_end": "main.phase"}]},
            "at assertions.0.at_end",
            "PHASE block, not a value",
        ),
        (
            {"duration": 10, "assertions": [{"at_end": "main.phase.STATE_NAME > 3"}]},
            "at assertions.0.at_end",
            "cannot evaluate",
        ),
        (
            {"duration": 10, "assertions": [{"eventually": "Y > 3", "from": 9, "within": 5}]},
            "at assertions.0.eventually",
            "after the end",
        ),
        ({"duration": 10, "drivers": {"nope": {"seed": 1}}}, "at drivers.nope", "no driver 'nope'"),
    ],
)
def test_invalid_scenario_names_the_yaml_path(
    ramp_app: Path, data: dict[str, Any], where: str, text: str
) -> None:
    path = write_scenario(ramp_app, "bad", data)
    with pytest.raises(ScenarioError) as info:
        run_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path.resolve()}: invalid scenario: ") or str(path) in message
    assert where in message, message
    assert text in message, message


def test_sim_fault_is_validated_by_the_driver_before_the_run(tmp_path: Path) -> None:
    app = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
    path = tmp_path / "s.yaml"
    path.write_text(
        f"app: {app}\nduration: 10\ntimeline:\n"
        "  - {at: 1, inject: {kind: drift, channel: nowhere, rate: 1}}\n"
    )
    with pytest.raises(ScenarioError, match=r"at timeline\.0\.inject: .*'nowhere' is not a sensor"):
        load_scenario(path) and run_scenario(path)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "Y.__class__",
        "(lambda: 1)()",
        "Y ** 2",
        "[Y for Y in X]",
        "open('f')",
        "Y if X else 1",
        "f'{Y}'",
        "Y @ X",
    ],
)
def test_expression_language_refuses_anything_else(source: str) -> None:
    def resolve(parts: tuple[str | int, ...]) -> Any:
        if parts[-1] in ("__class__",):
            raise ExprError("private")
        return lambda: 1.0

    with pytest.raises(ExprError):
        compile_expr(source, resolve)


def test_expression_language_evaluates() -> None:
    values = {"a": 3.0, "b": -4.0, "s": "RUN"}
    expr = compile_expr(
        "abs(b) > a >= 3 and not s != 'RUN' and max(a, 1) * 2 - 1 == 5 and min(a, b) % 3 == 2",
        lambda parts: lambda: values[str(parts[0])],
    )
    assert expr.evaluate() is True
    assert set(expr.signals) == {"a", "b", "s"}


def test_cli_exit_codes(ramp_app: Path, tmp_path: Path) -> None:
    good = write_scenario(ramp_app, "good", {"duration": 2, "assertions": OK})
    bad = write_scenario(ramp_app, "failing", {"duration": 2, "assertions": [{"always": "Y < 1"}]})
    invalid = write_scenario(ramp_app, "invalid", {"duration": 2, "assertion": OK})
    codes = {}
    for path in (good, bad, invalid):
        res = subprocess.run(
            [VPLC, "bench", "run", str(path), "--out", str(tmp_path / path.stem), "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        codes[path.stem] = (res.returncode, res.stdout + res.stderr)
    assert codes["good"][0] == 0, codes["good"][1]
    assert codes["failing"][0] == 1 and "failed at t=1.000 s: Y = 1" in codes["failing"][1]
    assert codes["invalid"][0] == 2 and "at assertion: unknown key" in codes["invalid"][1]
