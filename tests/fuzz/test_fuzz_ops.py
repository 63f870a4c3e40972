"""Fuzz the records commands: ``vplc users …``, ``vplc batch list|record``, ``vplc audit …``.

Subcommands, flags and values in any order, over a sandbox with a real user store, access
file, signed audit trail and batch record, and damaged copies of each (garbage, deep
nesting, tampering) next to special files (a FIFO, a folder, /dev/zero, /dev/full).
Passwords come from the environment (never argv), so each example also draws
``VPLC_PASSWORD`` / ``VPLC_NEW_PASSWORD``. Every example starts from a fresh copy of the
sandbox: a user added by one example is not there for the next.

Exit 1 is a legitimate verdict of ``audit`` and ``batch record`` (integrity not verified)
and of ``users`` (the store could not be written); 2 a refusal, which must name something
of the command line.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz._harness import Case, assert_clean
from tests.fuzz._sandbox import NEW, PW, pristine, run_in, sandbox
from tests.fuzz.conftest import PROFILE

# Paths relative to the sandbox ("@" is replaced by its root), and a few absolute ones.
INPUTS = [
    "@/users.json", "@/deep.json", "@/latin1.json", "@/access.yaml", "@/bad_access.yaml",
    "@/trail.jsonl", "@/tampered.jsonl", "@/garbage.jsonl", "@/key.pem", "@/bad_key.pem",
    "@/batches", "@/bad_batches", "@/fifo", "@/zero", "@/folder", "@/file", "@/file/below",
    "@/missing/x", "@/new.json", "", "/dev/null", "@/" + "y" * 300, "@/é💥",
]  # fmt: skip
OUTPUTS = ["@/out.pdf", "@/out.csv", "@/out.json", "/dev/full", "@/folder", "@/missing/x.pdf",
           "@/fifo", "@/file/below", ""]  # fmt: skip
# A refusal that names one of the command's flags says what was expected ("needs --as ID"),
# as does one naming the environment variable a password is read from.
FLAGS = ["--store", "--access", "--audit", "--as", "--name", "--role", "--reason", "--dir",
         "--json", "--pdf", "--csv", "--key", "--head", "--since", "--until",
         "VPLC_PASSWORD", "VPLC_NEW_PASSWORD"]  # fmt: skip
TRAILS = ["@/trail.jsonl", "@/tampered.jsonl", "@/garbage.jsonl", "@/deep.json"]
IDS = ["jadmin", "admin", "op1", "op2", "newbie", "", "x" * 300, "é💥", "../x", "-", "a b"]
TIMES = ["2025-03-01", "2025-03-01T08:00", "2025-03-01T08:00+02:00", "yesterday", "", "9999-99"]


def _text() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "\x00", "x" * 5000, "%s"]))


@st.composite
def _users(draw: st.DrawFn) -> list[str]:
    sub = draw(st.sampled_from(["add", "disable", "enable", "reset", "unlock", "passwd", "list"]))
    argv = ["users", sub]
    if sub != "list" and draw(st.integers(0, 9)):
        argv.append(draw(st.one_of(st.sampled_from(IDS), _text())))
    options = {
        "--store": st.sampled_from(INPUTS[:3] + INPUTS[12:]),
        "--access": st.sampled_from(["@/access.yaml", "@/bad_access.yaml", *INPUTS[12:]]),
        "--audit": st.sampled_from(TRAILS[:3] + INPUTS[12:]),
        "--as": st.one_of(st.sampled_from(IDS), _text()),
    }
    if sub == "add":
        options |= {"--name": _text(), "--role": st.sampled_from(["engineer", "operator", "x"])}
    if sub in ("disable", "enable"):
        options |= {"--reason": _text()}
    if sub == "list":
        options |= {"--json": st.just("")}
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)):
        value = draw(options[flag])
        argv += [flag] if flag == "--json" else [flag, value]
    if sub == "add" and draw(st.integers(0, 3)):  # mostly complete: reach the store
        argv += ["--name", "New Person", "--role", draw(st.sampled_from(["operator", "x"]))]
    if draw(st.integers(0, 3)) and "--store" not in argv:
        argv += ["--store", "@/users.json"]
    return argv


@st.composite
def _batch(draw: st.DrawFn) -> list[str]:
    sub = draw(st.sampled_from(["list", "record", "record", "record"]))
    argv = ["batch", sub]
    options = {
        "--dir": st.sampled_from(["@/batches", "@/bad_batches", *INPUTS[12:]]),
        "--json": st.sampled_from(OUTPUTS) if sub == "record" else st.just(""),
    }
    if sub == "record":
        ids = ["<good>", "<good>", "BR-20250101-001", "BR-20250101-002", "BR-20250101-003",
               "BR-20250101-004", "../batches/x", "BR-1-1"]  # fmt: skip
        argv.append(draw(st.one_of(st.sampled_from(ids), _text())))
        options |= {
            "--pdf": st.sampled_from(OUTPUTS),
            "--audit": st.sampled_from(["@/trail.jsonl", "@/tampered.jsonl", *INPUTS[12:]]),
            "--key": st.sampled_from(["@/key.pem", "@/bad_key.pem", *INPUTS[12:]]),
        }
        argv += [draw(st.sampled_from(["--json", "--pdf"])), draw(st.sampled_from(OUTPUTS))]
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=3)):
        value = draw(options[flag])
        argv += [flag] if value == "" and flag == "--json" and sub == "list" else [flag, value]
    if draw(st.integers(0, 3)) and "--dir" not in argv:
        argv += ["--dir", draw(st.sampled_from(["@/batches", "@/bad_batches"]))]
    return argv


@st.composite
def _audit(draw: st.DrawFn) -> list[str]:
    sub = draw(st.sampled_from(["show", "show", "verify"]))
    argv = ["audit", sub, draw(st.sampled_from(TRAILS + INPUTS[12:]))]
    options = {
        "--key": st.sampled_from(["@/key.pem", "@/bad_key.pem", "@/trail.jsonl", *INPUTS[12:]]),
        "--head": st.sampled_from(["@/trail.jsonl.head", "@/trail.jsonl", *INPUTS[12:]]),
        "--json": st.just(""),
    }
    if sub == "show":
        options |= {
            "--who": st.one_of(st.sampled_from(IDS), _text()),
            "--what": _text(),
            "--since": st.one_of(st.sampled_from(TIMES), _text()),
            "--until": st.one_of(st.sampled_from(TIMES), _text()),
            "--outcome": st.sampled_from(["accepted", "refused", "ok", "", "x"]),
            "--csv": st.sampled_from(OUTPUTS),
            "--pdf": st.sampled_from(OUTPUTS),
        }
    else:
        options |= {"--allow-legacy": st.just("")}
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        value = draw(options[flag])
        argv += [flag] if flag in ("--json", "--allow-legacy") else [flag, value]
    return argv


@st.composite
def argvs(draw: st.DrawFn) -> tuple[list[str], str | None, str | None]:
    argv = draw(st.one_of(_users(), _batch(), _audit()))
    password = draw(st.sampled_from([PW, PW, "wrong-Pass-999", "", None]))
    new = draw(st.sampled_from([NEW, NEW, "short", "", None, "é" * 20, "Aa1!" * 2000]))
    return argv, password, new


def _example(argv: list[str], password: str | None, new: str | None) -> None:
    with sandbox() as root:
        good = next((root / "batches").glob("*.json")).stem
        real = [a.replace("@", str(root), 1).replace("<good>", good) for a in argv]
        # A refusal names something of the command line (a flag, a value, a file) or its
        # subcommand; `vplc users: error: …` alone names only the command.
        given = [a for a in real[2:] if len(a) >= 2] + [repr(a) for a in real[2:]]
        names = (*given, f"vplc {argv[0]} {argv[1]}", *FLAGS)
        env = f" [VPLC_PASSWORD={password!r:.20} VPLC_NEW_PASSWORD={new!r:.20}]"
        case = Case("ops", real, " ".join(argv)[:280] + env, names=names, may_fail=True)
        run_in(root, case, password, new)


@settings(settings.get_profile(PROFILE))
@given(argvs())
def _fuzz(example: tuple[list[str], str | None, str | None]) -> None:
    _example(*example)


def test_records_commands_argv() -> None:
    with contextlib.chdir(pristine()):
        _fuzz()
    assert_clean("ops")
