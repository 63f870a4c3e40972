"""Fuzz app manifests: structure, types, numbers, encodings, YAML bombs and nesting.

Each example is validated (``vplc validate``) and, when valid, run for a few virtual cycles.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from pathlib import Path

from hypothesis import given, settings

from tests.conftest import COPY_LOGIC, memory_manifest
from tests.fuzz._harness import FUZZ, Case, Outcome, assert_clean, check, run_cli, run_inproc
from tests.fuzz._mutate import Example, mutated_file, non_finite
from tests.fuzz.conftest import PROFILE

BASE = memory_manifest(
    retain={"variables": ["main.count"], "interval_s": 1.0},
    parameters=[
        {"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10, "retain": True},
        {"name": "mode", "type": "STRING", "default": "auto"},
    ],
)
BASE["points"][1]["range"] = [-100.0, 100.0]


def _write(data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vplc-fuzz-app-"))
    (folder / "app.yaml").write_bytes(data)
    (folder / "logic.py").write_text(textwrap.dedent(COPY_LOGIC))
    return folder


def _example(ex: Example, *, cli: bool = False) -> None:
    folder = _write(ex.data)
    what = ex.notes
    names = (str(folder / "app.yaml"), "app.yaml")
    runner = run_cli if cli else run_inproc
    validate = Case("manifest", ["validate", str(folder)], what, names, violation=non_finite(ex))
    outcome: Outcome = runner(validate.argv, 20.0)
    if check(validate, outcome) == "accepted":
        argv = ["--log-format", "json", "run", str(folder), "--virtual", "--duration", "0.05"]
        check(Case("manifest", argv, what, names, may_fail=True), runner(argv, 20.0))
    shutil.rmtree(folder, ignore_errors=True)


@settings(settings.get_profile(PROFILE))
@given(mutated_file(BASE))
def _fuzz(example: Example) -> None:
    _example(example)


def test_manifest_mutations() -> None:
    _fuzz()
    assert_clean("manifest")


@settings(settings.get_profile(PROFILE), max_examples=100 if FUZZ else 5)
@given(mutated_file(BASE))
def _through_the_real_cli(example: Example) -> None:
    _example(example, cli=True)


def test_manifest_mutations_through_the_real_cli() -> None:
    _through_the_real_cli()
    assert_clean("manifest")
