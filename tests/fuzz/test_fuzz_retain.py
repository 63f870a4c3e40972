"""Fuzz retain files: truncation, bit flips, foreign apps, non-finite and odd values (with a
valid checksum, so the loader's content checks are reached), and special files.

Each example starts ``vplc run --virtual`` warm (or cold, or with --on-bad-retain cold) from
the file. Accepted warm starts must trace only finite values: a retained NaN must never
reach an output.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import shutil
import tempfile
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import ScanEngine, VirtualClock, load_app
from runtime.state import RetainStore, _file
from tests.fuzz._harness import FUZZ, Case, assert_clean, check, run_cli, run_inproc
from tests.fuzz._mutate import Example, mutated, paths, values
from tests.fuzz.conftest import PROFILE
from tests.runtime.state.helpers import STATE_LOGIC, manifest

RETAIN = {"variables": ["main.count", "main.pid", "main.stages", "main.label"], "interval_s": 0.5}
PARAMS = [{"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10, "retain": True}]


@cache
def _app() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vplc-fuzz-retain-app-"))
    (folder / "app.yaml").write_text(
        yaml.safe_dump(manifest(retain=RETAIN, parameters=PARAMS), sort_keys=False)
    )
    (folder / "logic.py").write_text(textwrap.dedent(STATE_LOGIC))
    return folder


@cache
def _good() -> tuple[bytes, dict[str, Any]]:
    """A checkpoint of the app after a second of running: the file every mutation starts from."""
    folder = Path(tempfile.mkdtemp(prefix="vplc-fuzz-retain-"))
    app = load_app(_app())
    engine = ScanEngine(app, clock=VirtualClock())
    store = RetainStore(folder / "good.retain", app)
    store.load()
    store.attach(engine)
    engine.start()
    engine.run_until(1_000_000_000)
    engine.close()
    data = (folder / "good.retain").read_bytes()
    doc = json.loads(data)
    doc.pop("sha256")
    return data, doc


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "symlink":
        path.with_name("real").write_bytes(_good()[0])
        path.symlink_to(path.with_name("real"))
    elif kind == "sparse":
        with path.open("wb") as f:
            f.truncate(1 << 31)


@st.composite
def retain_files(draw: st.DrawFn) -> Example:
    data, doc = _good()
    how = draw(
        st.sampled_from(
            ["content"] * 5 + ["poison"] * 3 + ["truncate", "flip", "garbage", "special", "good"]
        )
    )
    if how == "poison":  # a retained number turned NaN/inf/huge, checksum recomputed
        new = copy.deepcopy(doc)
        leaves = [p for p in paths(new["data"]) if isinstance(_at(new["data"], p), float)]
        at = draw(st.sampled_from(leaves))
        value = draw(st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324]))
        _set(new["data"], at, value)
        return Example(new, _file.encode(new), f"poison data.{'.'.join(map(str, at))} = {value}")
    if how == "content":  # valid JSON and checksum: only the content is wrong
        new, notes = draw(mutated(doc))
        try:
            body = _file.encode(new) if isinstance(new, dict) else json.dumps(new).encode()
        except (TypeError, ValueError, RecursionError) as exc:  # not encodable: write raw
            body = repr(new).encode()
            notes.append(f"(raw: {type(exc).__name__})")
        return Example(new, body, "content: " + "; ".join(notes))
    if how == "truncate":
        n = draw(st.integers(min_value=0, max_value=len(data) - 1))
        return Example(None, data[:n], f"truncate to {n} bytes")
    if how == "flip":
        flips = draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=8))
        raw = bytearray(data)
        for bit in flips:
            raw[bit // 8] ^= 1 << (bit % 8)
        return Example(None, bytes(raw), f"flip bits {flips}")
    if how == "garbage":
        return Example(None, draw(st.binary(max_size=300)), "random bytes")
    if how == "special":
        kind = draw(st.sampled_from(["fifo", "directory", "dev_zero", "symlink", "sparse"]))
        return Example(None, b"", f"special: {kind}")
    return Example(doc, data, "good file")


def _at(node: Any, at: tuple[str | int, ...]) -> Any:
    for key in at:
        node = node[key]
    return node


def _set(node: Any, at: tuple[str | int, ...], value: Any) -> None:
    _at(node, at[:-1])[at[-1]] = value


def _finite_trace(path: Path) -> str:
    """A column of the trace that holds a non-finite value ("" when all are finite)."""
    with path.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        for row in rows:
            for name, cell in zip(header[:-2], row, strict=False):
                try:
                    if not math.isfinite(float(cell)):
                        return f"{name} = {cell} at t={row[0]}"
                except ValueError:
                    continue
    return ""


def _example(ex: Example, start: str, *, cli: bool = False) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vplc-fuzz-retain-run-"))
    path = folder / "app.retain"
    as_prev = start == "prev"  # the damaged file is the previous generation, no latest
    target = _file.prev_path(path) if as_prev else path
    if ex.notes.startswith("special: "):
        _special(ex.notes.removeprefix("special: "), target)
    else:
        target.write_bytes(ex.data)
    flags = {"warm": [], "prev": [], "cold": ["--cold"], "aside": ["--on-bad-retain", "cold"]}
    trace = folder / "trace.csv"
    argv = ["--log-format", "json", "run", str(_app()), "--virtual", "--duration", "0.1"]
    argv += ["--retain-file", str(path), "--trace", str(trace), *flags[start]]
    # Exit 1 is a real failure here: a retained value the logic cannot work with (a PID form
    # of '') faults the run; one that drives it to NaN makes checkpoints fail (not written).
    case = Case("retain", argv, f"{start}: {ex.notes}", names=(str(path),), may_fail=True)
    outcome = (run_cli if cli else run_inproc)(argv, 20.0)
    if outcome.code == 0 and trace.exists():
        bad = _finite_trace(trace)
        case.violation = f"non-finite value reached the trace: {bad}" if bad else ""
    if start == "aside" and outcome.code == 2 and not ex.notes.startswith("special"):
        case.violation = "--on-bad-retain cold refused a regular file"
        outcome.code = 0  # judged as a property failure, not as a refusal
    check(case, outcome)
    shutil.rmtree(folder, ignore_errors=True)


STARTS = st.sampled_from(["warm", "warm", "warm", "prev", "cold", "aside"])


@settings(settings.get_profile(PROFILE))
@given(retain_files(), STARTS)
def _fuzz(example: Example, start: str) -> None:
    _example(example, start)


def test_retain_file_mutations() -> None:
    _fuzz()
    assert_clean("retain")


@settings(settings.get_profile(PROFILE), max_examples=100 if FUZZ else 5)
@given(retain_files(), STARTS)
def _through_the_real_cli(example: Example, start: str) -> None:
    _example(example, start, cli=True)


def test_retain_file_mutations_through_the_real_cli() -> None:
    _through_the_real_cli()
    assert_clean("retain")


def test_values_strategy_reaches_non_finite_numbers() -> None:
    """The generator can produce what the loader must refuse (guards the fuzzer itself)."""
    seen = set()

    @settings(max_examples=300, derandomize=True, database=None)
    @given(values())
    def probe(v: Any) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            seen.add(repr(v))

    probe()
    assert {"nan", "inf", "-inf"} <= seen
