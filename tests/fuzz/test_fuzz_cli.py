"""Fuzz the command line: subcommands, flags and values (numbers, paths, text) in any order.

In-process runs are virtual (a real-time run installs signal handlers and runs in threads:
those go through the real executable, a few per session).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from functools import cache
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import COPY_LOGIC, memory_manifest
from tests.fuzz._harness import FUZZ, Case, assert_clean, check, no_plots, run_cli, run_inproc
from tests.fuzz.conftest import PROFILE


@cache
def _place() -> dict[str, str]:
    """A folder with an app, a scenario, a trace, a file, a FIFO: things a path can be."""
    root = Path(tempfile.mkdtemp(prefix="vplc-fuzz-cli-"))
    app = root / "app"
    app.mkdir()
    (app / "app.yaml").write_text(yaml.safe_dump(memory_manifest(), sort_keys=False))
    (app / "logic.py").write_text(textwrap.dedent(COPY_LOGIC))
    (root / "s.yaml").write_text(
        yaml.safe_dump({"app": str(app), "duration": 1, "assertions": [{"always": "Y > -1e9"}]})
    )
    (root / "file").write_text("x")
    os.mkfifo(root / "fifo")
    (root / "t.csv").write_text("t,X,Y,inputs.quality,parameters.changed\n0.0,1.0,2.0,,\n")
    return {"root": str(root), "app": str(app)}


def paths() -> st.SearchStrategy[str]:
    p = _place()
    root = p["root"]
    return st.sampled_from(
        [
            p["app"],
            f"{root}/s.yaml",
            f"{root}/t.csv",
            f"{root}/file",
            f"{root}/file/below",
            f"{root}/fifo",
            f"{root}/missing/x",
            f"{root}/new.out",
            root,
            "/dev/null",
            "/dev/full",
            "/dev/zero",
            "",
            "x" * 300,
            f"{root}/" + "y" * 300,
            f"{root}/é💥",
            "bioreactor",
        ]
    )


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["0", "-1", "1", "0.05", "nan", "inf", "-inf", "1e300", "1e-300", "1e9"]),
        st.sampled_from(["1e10", "0x10", "1_000", " 1", "", "abc", "9" * 5000, "-0"]),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(10**6), 10**6).map(str),
    )


def values() -> st.SearchStrategy[str]:
    return st.one_of(numbers(), paths(), st.text(max_size=12), st.sampled_from(["a=1", "=", "1,2"]))


# Flags whose values have a form of their own: mostly that form, sometimes anything.
SHAPED = {
    "--spin": st.sampled_from(["fixed", "adaptive", "off", "Fixed", "", "on"]),
    "--web": st.sampled_from([":0", "0", "127.0.0.1:0", "[::1]:0", ":99999", ":-1", "a:b:c", ":"]),
    "--spin-us": st.sampled_from(["0", "50", "5000", "5001", "-1", "x"]),
    "--batch-dir": st.sampled_from(["batches", "/dev/null", "file", "file/below", "fifo", "."]),
}


def flag_values(flag: str) -> st.SearchStrategy[str]:
    shaped = SHAPED.get(flag)
    return values() if shaped is None else st.one_of(shaped, shaped, shaped, values())


FLAGS = {
    "run": [
        "--duration",
        "--trace",
        "--seed",
        "--stats-json",
        "--heartbeat",
        "--rt-priority",
        "--cpus",
        "--spin-us",
        "--retain-file",
        "--on-bad-retain",
        "--retain-max-mb",
        "--mqtt",
        "--spin",
        "--batch-dir",
    ],
    "run_virtual": ["--web", "--web-config"],  # real time would serve them: virtual only
    "run_switches": ["--cold", "--no-view", "--standby", "--virtual", "--rt-auto", "--no-rt-auto"],
    "bench run": ["--out"],
    "bench replay": ["--tolerance", "--set", "--seed"],
}


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    head = draw(st.lists(st.sampled_from(["--log-format", "--log-level"]), max_size=1))
    argv: list[str] = []
    for flag in head:
        argv += [flag, draw(st.sampled_from(["json", "console", "info", "bogus", ""]))]
    command = draw(st.sampled_from(["validate", "run", "bench run", "bench replay", "other", ""]))
    argv += command.split() if command != "other" else [draw(st.text(max_size=8))]
    argv += draw(st.lists(st.one_of(paths(), values()), max_size=2))  # positionals
    flags = FLAGS.get(command, []) + (FLAGS["run_virtual"] if command == "run" else [])
    for _ in range(draw(st.integers(0, 4))):
        if command == "run" and draw(st.booleans()):
            argv.append(draw(st.sampled_from(FLAGS["run_switches"])))
        elif flags:
            flag = draw(st.sampled_from(flags))
            argv += [flag, draw(flag_values(flag))] if draw(st.integers(0, 9)) else [flag]
    if command == "run" and "--virtual" not in argv:
        argv.append("--virtual")  # real time in-process would take over the signal handlers
    if command == "run" and draw(st.integers(0, 3)):
        argv += ["--duration", draw(st.sampled_from(["0.05", "0.2", "1e-3"]))]
    return argv


def _example(argv: list[str], *, cli: bool = False) -> None:
    case = Case("cli", argv, " ".join(argv)[:300], may_fail="run" in argv or "bench" in argv)
    if cli:
        check(case, run_cli(argv, 60.0, cwd=_place()["root"]))
    else:
        with no_plots():
            check(case, run_inproc(argv, 30.0))


@settings(settings.get_profile(PROFILE))
@given(argvs())
def _fuzz(argv: list[str]) -> None:
    _example(argv)


def test_cli_argv() -> None:
    cwd = os.getcwd()
    os.chdir(_place()["root"])  # a default report folder (reports/) lands in the sandbox
    try:
        _fuzz()
    finally:
        os.chdir(cwd)
    assert_clean("cli")


@st.composite
def real_time_argvs(draw: st.DrawFn) -> list[str]:
    argv = ["run", _place()["app"], "--no-view", "--duration", "0.3"]
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(st.sampled_from(FLAGS["run"][1:]))
        argv += [flag, draw(flag_values(flag))]
    return argv


@settings(settings.get_profile(PROFILE), max_examples=50 if FUZZ else 4)
@given(real_time_argvs())
def _real_time(argv: list[str]) -> None:
    _example(argv, cli=True)


def test_cli_argv_real_time_through_the_real_cli() -> None:
    _real_time()
    assert_clean("cli")


NEW_RUN_FLAGS = ["--spin", "--spin-us", "--batch-dir", "--web", "--web-config"]


@st.composite
def new_flag_argvs(draw: st.DrawFn) -> list[str]:
    """``vplc run`` of a good app (or the bioreactor, which records batches) with the flags
    added since the kinds above were written, so their checks are reached, not argparse's."""
    app = draw(st.sampled_from([_place()["app"], "bioreactor"]))
    argv = ["run", app, "--virtual", "--duration", draw(st.sampled_from(["0.05", "0.3"]))]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 3)) == 0:
            argv.append(draw(st.sampled_from(["--rt-auto", "--no-rt-auto"])))
        else:
            flag = draw(st.sampled_from(NEW_RUN_FLAGS))
            argv += [flag, draw(flag_values(flag))]
    return argv


@settings(settings.get_profile(PROFILE))
@given(new_flag_argvs())
def _new_flags(argv: list[str]) -> None:
    _example(argv)


def test_cli_run_with_the_newer_flags() -> None:
    cwd = os.getcwd()
    os.chdir(_place()["root"])
    try:
        _new_flags()
    finally:
        os.chdir(cwd)
    assert_clean("cli")
