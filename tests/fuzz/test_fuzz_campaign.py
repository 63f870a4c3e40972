"""Fuzz ``vplc bench campaign``: its flags, the ``--faults`` specs (inline YAML or a file,
mutated like the other documents) and the scenarios it is given.

What is fuzzed is the campaign's input: everything up to the matrix, then the summary. The
runs themselves are the scenario runner's (fuzzed by test_fuzz_scenario.py) and each is an
interpreter of its own, so ``no_runs`` stands in for them with one "pass" outcome per cell
(and calls the progress line for each, as the real matrix does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz._harness import Case, assert_clean, check, no_plots, run_inproc
from tests.fuzz._mutate import dump, encoded, mutated
from tests.fuzz.conftest import PROFILE

BIO = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
FAULT: dict[str, Any] = {"kind": "pump_failed", "channel": "feed_pump", "at": [60, 120]}


@contextlib.contextmanager
def no_runs() -> Iterator[None]:
    """``run_matrix`` without processes: every cell passes at once (see the docstring); the
    summary's plots left out like the bench reports' (``no_plots``)."""
    from runtime.bench import _campaign_report, _cli_campaign
    from runtime.bench._campaign import _outcome

    real, plots = _cli_campaign.run_matrix, _campaign_report._plots

    def fake(runs: list[Any], *, progress: Any = None, **kw: Any) -> list[dict[str, Any]]:
        outcomes = [_outcome(spec, "pass", 0.0) for spec in runs]
        for o in outcomes:
            if progress is not None:
                progress(o)
        return outcomes

    _cli_campaign.run_matrix = fake  # type: ignore[assignment]
    _campaign_report._plots = lambda summary, out: []  # slow, and not the input
    try:
        yield
    finally:
        _cli_campaign.run_matrix, _campaign_report._plots = real, plots


@cache
def _place() -> Path:
    root = Path(tempfile.mkdtemp(prefix="vplc-fuzz-campaign-"))
    short = {
        "app": str(BIO),
        "duration": "4 min",
        "assertions": [{"never": "alarms.feed_fail.ACTIVE"}],
    }
    (root / "short.yaml").write_text(yaml.safe_dump(short))
    (root / "scenarios").mkdir()
    (root / "scenarios" / "short.yaml").write_text(yaml.safe_dump(short))
    (root / "empty").mkdir()
    (root / "bad.yaml").write_text(yaml.safe_dump({"app": str(BIO), "assertions": [{}]}))
    (root / "file").write_text("x")
    os.mkfifo(root / "fifo")
    return root


def _paths() -> st.SearchStrategy[str]:
    r = str(_place())
    return st.sampled_from(
        [f"{r}/short.yaml", f"{r}/scenarios", f"{r}/empty", f"{r}/bad.yaml", f"{r}/fifo",
         f"{r}/file/below", f"{r}/missing", str(BIO / "scenarios" / "feed_pump_failure.yaml"),
         "", "/dev/null", f"{r}/" + "y" * 300]
    )  # fmt: skip


SHAPED: dict[str, st.SearchStrategy[str]] = {
    "--seeds": st.sampled_from(["1", "2", "3", "0", "-1", "100001", "1.5", "x", "", "1e3"]),
    "--workers": st.sampled_from(["1", "2", "0", "100001", "x", ""]),
    "--timeout": st.sampled_from(["1", "600", "0", "-1", "86401", "nan", "inf", "x", "1e-300"]),
    "--engine": st.sampled_from(["local", "dask", "Local", ""]),
    "--scheduler": st.sampled_from(["tcp://127.0.0.1:1", "", "x", "tcp://[::1"]),
    "--out": st.sampled_from(["out", "/dev/null", "file", "file/below", "fifo", "", "/proc/x"]),
}


@st.composite
def _fault(draw: st.DrawFn) -> tuple[str, str]:
    """One ``--faults`` value: inline flow YAML, or a file of one or more mappings."""
    doc, notes = draw(mutated(FAULT))
    if draw(st.booleans()):
        text = dump(doc, flow=True).strip().removesuffix("...").strip()
        return text, f"inline {'; '.join(notes)}"
    data, how = draw(encoded(dump([doc, FAULT] if draw(st.booleans()) else doc)))
    folder = Path(tempfile.mkdtemp(prefix="f-", dir=_place()))
    (folder / "faults.yaml").write_bytes(data)
    return str(folder / "faults.yaml"), f"file {how}: {'; '.join(notes)}"


@st.composite
def argvs(draw: st.DrawFn) -> tuple[list[str], str]:
    app = draw(st.sampled_from([str(BIO), str(BIO), "bioreactor", str(_place()), "", "nope"]))
    argv = ["--log-format", "json", "bench", "campaign", app, "--quiet"]
    notes = []
    if draw(st.integers(0, 4)):
        argv += ["--scenarios", *draw(st.lists(_paths(), min_size=1, max_size=2))]
    for _ in range(draw(st.integers(0, 2))):
        spec, note = draw(_fault())
        argv += ["--faults", spec]
        notes.append(note)
    for flag in draw(st.lists(st.sampled_from(sorted(SHAPED)), max_size=3)):
        argv += [flag, draw(SHAPED[flag])]
    if "--out" not in argv:
        argv += ["--out", "out"]
    return argv, " | ".join(notes)


def _example(argv: list[str], notes: str) -> None:
    names = (*(a for a in argv[4:] if len(a) >= 2), "--faults", "--scenarios")
    case = Case("campaign", argv, f"{' '.join(argv)[:250]} [{notes[:200]}]", names, may_fail=True)
    with no_runs(), no_plots():
        check(case, run_inproc(argv, 60.0))


@settings(settings.get_profile(PROFILE))
@given(argvs())
def _fuzz(example: tuple[list[str], str]) -> None:
    _example(*example)


def test_campaign_argv_and_fault_specs() -> None:
    cwd = os.getcwd()
    work = Path(tempfile.mkdtemp(prefix="vplc-fuzz-campaign-cwd-"))
    os.chdir(work)  # --out out lands here
    (work / "file").write_text("x")
    os.mkfifo(work / "fifo")
    try:
        _fuzz()
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    assert_clean("campaign")
