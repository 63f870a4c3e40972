"""Fuzz scenario files: structure, types, numbers, encodings, and the condition language.

Each example runs ``vplc bench run`` on a small app (plots left out: they are not the input).
Exit 1 is a legitimate verdict here (an assertion or an event failed); 2 a refusal.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bench_scenarios.conftest import RAMP_LOGIC
from tests.conftest import memory_manifest
from tests.fuzz._harness import FUZZ, Case, assert_clean, check, no_plots, run_cli, run_inproc
from tests.fuzz._mutate import Example, dump, encoded, mutated
from tests.fuzz.conftest import PROFILE

BASE: dict[str, Any] = {
    "name": "fuzz",
    "duration": 2,
    "parameters": {"gain": 2.0},
    "timeline": [
        {"at": 0.5, "set": {"gain": 3.0}},
        {"at": 1.0, "force": {"X": 1.5}},
        {"at": 1.2, "phase": {"block": "main.phase", "command": "START"}},
        {"at": 1.5, "unforce": ["X"]},
    ],
    "assertions": [
        {"always": "Y >= 0"},
        {"never": "Y > 1000", "from": 0.2, "to": "1.5 s"},
        {"eventually": "main.count > 5", "within": 1.0},
        {"at": 1.0, "check": "abs(Y - 2 * t) < 10"},
        {"at_end": {"signal": "Y", "min": 0, "max": 100}},
    ],
}
SIGNALS = ["Y", "X", "t", "gain", "main.count", "main.phase.STATE_NAME", "X.quality", "nope"]


def conditions() -> st.SearchStrategy[str]:
    """Expressions of the language (and outside it): operators, calls, depth, big constants."""
    leaf = st.one_of(
        st.sampled_from(SIGNALS),
        st.sampled_from(["0", "1", "-1", "0.0", "1e308", "1e999", "10**9", "'x'", "True", "''"]),
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(['"x" * 5000000000', "'%0999999d' % 1", "1 / 0", "Y / 0", "t % 0"]),
    )
    ops = ["+", "-", "*", "/", "//", "%", "<", "<=", "==", "!=", ">", "and", "or", "**", "<<"]
    expr = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(ops), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["-", "not ", "+", "~"]), inner).map("".join),
            st.tuples(st.sampled_from(["abs", "min", "max", "len", "__import__"]), inner).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
        ),
        max_leaves=12,
    )
    deep = st.integers(50, 1200).flatmap(
        lambda n: st.sampled_from(["-" * n + "Y > 0", "(" * n + "Y" + ")" * n, "not " * n + "Y"])
    )
    return st.one_of(expr, deep, st.text(max_size=40))


# Keep runs short: a duration is either small or plainly invalid, never a day of cycles.
_DURATIONS = st.one_of(
    st.floats(min_value=0.0, max_value=3.0),
    st.sampled_from([-1, 0, float("nan"), float("inf"), 1e300, "2 s", "1.5 min", "x", None, []]),
)
_FIXED = {
    "duration": _DURATIONS,
    "always": conditions(),
    "never": conditions(),
    "eventually": conditions(),
    "check": conditions(),
    "at_end": conditions(),
    "signal": conditions(),
}


@cache
def _app() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vplc-fuzz-scenario-app-"))
    doc = memory_manifest(
        tasks=[{"name": "fast", "period_ms": 100, "programs": ["main"]}],
        parameters=[{"name": "gain", "type": "LREAL", "default": 1.0, "min": 0, "max": 10}],
    )
    (folder / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (folder / "logic.py").write_text(textwrap.dedent(RAMP_LOGIC))
    return folder


@st.composite
def scenarios(draw: st.DrawFn) -> Example:
    base = dict(BASE, app=str(_app()))
    doc, notes = draw(mutated(base, fixed=_FIXED))
    duration = doc.get("duration") if isinstance(doc, dict) else None
    if isinstance(duration, int | float) and 3.0 < duration <= 1e9:
        doc["duration"] = 3.0  # a long but valid run is not what is fuzzed
    data, how = draw(encoded(dump(doc)))
    return Example(doc, data, f"{how}: {'; '.join(notes)}")


def _example(ex: Example, *, cli: bool = False) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vplc-fuzz-scenario-"))
    path = folder / "scenario.yaml"
    path.write_bytes(ex.data)
    argv = ["--log-format", "json", "bench", "run", str(path), "--out", str(folder / "r")]
    argv.append("--quiet")
    case = Case("scenario", argv, ex.notes, names=(str(path),), may_fail=True)
    if cli:
        check(case, run_cli(argv, 60.0))
    else:
        with no_plots():
            check(case, run_inproc(argv, 30.0))
    shutil.rmtree(folder, ignore_errors=True)


@settings(settings.get_profile(PROFILE))
@given(scenarios())
def _fuzz(example: Example) -> None:
    _example(example)


def test_scenario_mutations() -> None:
    _fuzz()
    assert_clean("scenario")


@settings(settings.get_profile(PROFILE), max_examples=50 if FUZZ else 3)
@given(scenarios())
def _through_the_real_cli(example: Example) -> None:
    _example(example, cli=True)


def test_scenario_mutations_through_the_real_cli() -> None:
    _through_the_real_cli()
    assert_clean("scenario")
