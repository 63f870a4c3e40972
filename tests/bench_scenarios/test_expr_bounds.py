"""The condition language is bounded: depth, text sizes, arithmetic errors named as such."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.bench import ScenarioError, parse_scenario, run_scenario
from runtime.bench._expr import MAX_TEXT, ExprError, compile_expr
from tests.bench_scenarios.conftest import write_scenario

VPLC = str(Path(sys.executable).with_name("vplc"))
VALUES: dict[str, Any] = {"a": 2.0, "zero": 0.0, "s": "GROW", "n": 5_000_000_000, "k": 3}


def _resolve(parts: tuple[str | int, ...]) -> Any:
    name = ".".join(str(p) for p in parts)
    if name not in VALUES:
        raise ExprError(f"unknown signal {name!r}")
    return lambda: VALUES[name]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("-" * 990 + "1", "nested more than"),
        ("not " * 200 + "a", "nested more than"),
        ("a" + " + a" * 100, "nested more than"),
        ("x." * 300 + "y", "nested more than"),
        ('"x" * 5000000000 == "y"', "text repetition of 5,000,000,000 characters"),
        ('5000000000 * "x" == "y"', "text repetition"),
        ('"ab" * -(-6000) == "y"', "text repetition of 12,000"),
        ("a / 0 > 1", "division by zero"),
        ("a // (2 - 2) > 1", "division by zero"),
        ("a % 0.0 > 1", "division by zero"),
        ("a / False", "division by zero"),
        ('"%0999999999d" % 1', "string formatting"),
        ("1 / 0 == 1", "ZeroDivisionError"),
        ("-'x'", "bad operand type"),
        ('"x" - 1', "TypeError"),
        ("a\x00", "null bytes"),
    ],
)
def test_refused_at_compile_time(source: str, message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ExprError, match=message.replace("(", r"\(")):
        compile_expr(source, _resolve)
    assert time.perf_counter() - t0 < 1.0  # nothing was built


def test_repetition_with_a_signal_is_guarded_when_evaluated() -> None:
    expr = compile_expr('s * n == "y"', _resolve)
    with pytest.raises(ExprError, match="text repetition of 20,000,000,000"):
        expr.evaluate()
    assert compile_expr("s * k", _resolve).evaluate() == "GROWGROWGROW"
    assert compile_expr('s * 2 == "GROWGROW"', _resolve).evaluate() is True
    with pytest.raises(ExprError, match="string formatting"):
        compile_expr("s % k", _resolve).evaluate()
    assert compile_expr("k % 2", _resolve).evaluate() == 1
    assert len("x" * MAX_TEXT) == MAX_TEXT  # the limit itself is allowed
    assert compile_expr(f'"x" * {MAX_TEXT} != ""', _resolve).evaluate() is True


def test_numeric_products_are_not_guarded() -> None:
    """The fast path stays a plain multiplication where no operand can be text."""
    for source in ("abs(a) * 2 > 1", "(a - 1) * (a / 2) > 0", "-a * 3 < 0"):
        code = compile_expr(source, _resolve).evaluate.__code__
        assert "_mul" not in code.co_names, source
    assert "_mul" in compile_expr("a * 2 > 1", _resolve).evaluate.__code__.co_names


def test_constants_are_folded_and_checked() -> None:
    assert compile_expr("a * (2 + 3) == 10", _resolve).evaluate() is True
    assert compile_expr("-(-a) == 2", _resolve).evaluate() is True


def test_an_evaluation_error_is_an_expression_error_naming_file_and_condition(
    ramp_app: Path, tmp_path: Path
) -> None:
    path = write_scenario(
        ramp_app,
        "divides",
        {
            "duration": 2,
            "parameters": {"gain": 0.0},
            "assertions": [
                {"always": "Y >= 0"},
                {"never": "X / gain > 1"},  # gain is 0 all along: never "holds" by accident
            ],
        },
    )
    result = run_scenario(path, out=tmp_path / "r")
    assert not result.passed and result.assertions[0].passed
    err = result.assertions[1].error
    assert err.startswith(f"{path.resolve()}: at assertions.1.never: expression error in ")
    assert "'X / gain > 1'" in err and "ZeroDivisionError" in err and "t=0.000 s" in err
    assert result.expression_errors == [err]
    suite = ET.parse(tmp_path / "r" / "junit.xml").getroot()[0]
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    res = subprocess.run(
        [VPLC, "bench", "run", str(path), "--out", str(tmp_path / "cli"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and res.stdout.startswith("ERROR divides")
    assert "Traceback" not in res.stderr and "expression error in 'X / gain > 1'" in res.stderr


def test_a_scenario_with_a_constant_division_by_zero_is_refused(ramp_app: Path) -> None:
    path = write_scenario(
        ramp_app, "div0", {"duration": 2, "assertions": [{"always": "Y / 0 > 1"}]}
    )
    res = subprocess.run(
        [VPLC, "bench", "run", str(path), "--quiet"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert str(path) in res.stderr and "at assertions.0.always" in res.stderr
    assert "division by zero" in res.stderr


def test_an_unwritable_report_folder_is_refused_before_any_run(
    ramp_app: Path, tmp_path: Path
) -> None:
    path = write_scenario(ramp_app, "ok", {"duration": 2, "assertions": [{"always": "Y >= 0"}]})
    (tmp_path / "file").write_text("")
    res = subprocess.run(
        [VPLC, "bench", "run", str(path), "--out", str(tmp_path / "file" / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stdout == ""
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith(f"vplc: error: --out {tmp_path / 'file' / 'r'}: cannot create the folder")
    )


@pytest.mark.parametrize(
    ("initial", "message"),
    [
        ({"glucose": -1e300}, "initial 'glucose' = -1e+300 is outside its range 0..400"),
        # refused as the file is read, at its YAML path, before any plant check
        ({"temperature": float("inf")}, "initial.temperature: expected a finite number"),
    ],
)
def test_plant_initial_values_are_checked_against_the_plants_ranges(
    tmp_path: Path, initial: dict[str, float], message: str
) -> None:
    app = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"app": str(app), "duration": 10, "drivers": {"sim": {"initial": initial}}})
    )
    res = subprocess.run(
        [VPLC, "bench", "run", str(path), "--quiet", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert str(path) in res.stderr and "drivers.sim" in res.stderr and message in res.stderr


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"always": ""}, "always: the condition is empty"),
        ({"never": "   "}, "never: the condition is empty"),
    ],
)
def test_an_empty_condition_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario({"duration": 1, "assertions": [data]}, "s.yaml")


@pytest.mark.parametrize("app", ["", "a\x00b", "x" * 5000])
def test_an_unusable_app_path_is_a_scenario_error(tmp_path: Path, app: str) -> None:
    with pytest.raises(ScenarioError, match="at app"):
        run_scenario(parse_scenario({"app": app, "duration": 1}, tmp_path / "s.yaml"))
