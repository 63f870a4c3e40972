"""The harness's own outcome classes: a hang, a traceback, a silent exit and a refusal are
told apart for a command run in-process (``run_inproc``) and for a loading step (``run_call``);
and where a NaN sits in an accepted document (``non_finite``).
"""

from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.fuzz._harness import Case, classify, run_call, run_inproc
from tests.fuzz._mutate import Example, non_finite

CASE = Case("self", ["x"], "harness self-test", names=("x.yaml",))


def _sleep() -> int:
    time.sleep(30)
    return 0


def _raise() -> int:
    raise ValueError("boom")


def _silent() -> int:
    return 0


def _refuse() -> int:
    print("vplc: error: x.yaml: expected a mapping", file=sys.stderr)
    return 2


def _accept() -> int:
    print("ok")
    return 0


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        (_sleep, "hang"),
        (_raise, "traceback"),
        (_silent, "silent"),
        (_refuse, "refused"),
        (_accept, "accepted"),
    ],
)
def test_run_inproc_classes(monkeypatch: pytest.MonkeyPatch, main: object, expected: str) -> None:
    monkeypatch.setattr("runtime.host.cli.main", lambda argv: main())  # type: ignore[operator]
    before = signal.getsignal(signal.SIGALRM)
    outcome = run_inproc(["x"], 0.3)
    assert classify(CASE, outcome) == expected, outcome
    assert signal.getsignal(signal.SIGALRM) is before  # the alarm handler is put back
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # and the alarm is off


def test_run_inproc_sys_exit_message_is_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def main(argv: list[str]) -> int:
        sys.exit("vplc: error: x.yaml: bad")

    monkeypatch.setattr("runtime.host.cli.main", main)
    outcome = run_inproc(["x"], 5.0)
    assert (outcome.code, outcome.err) == (1, "vplc: error: x.yaml: bad\n")


class _RefusedError(Exception):
    """Stands for a loading step's refusal (a UsageError, an InvalidInputError)."""


def _refuse_call() -> str:
    raise _RefusedError("x.yaml: expected a mapping")


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: str(_sleep()), "hang"),
        (lambda: str(_raise()), "traceback"),
        (lambda: "", "silent"),
        (_refuse_call, "refused"),
        (lambda: "config OK", "accepted"),
    ],
)
def test_run_call_classes(call: object, expected: str) -> None:
    before = signal.getsignal(signal.SIGALRM)
    outcome = run_call(call, 0.3, {_RefusedError: 2})  # type: ignore[arg-type]
    assert classify(CASE, outcome) == expected, outcome
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_non_finite_names_where_a_nan_sits_in_utf8_text_only() -> None:
    doc = {"a": [1.0, {"b": float("nan")}], "c": 2}
    assert (
        non_finite(Example(doc, b"", "utf8: set a[1].b")) == "non-finite value at .a[1].b accepted"
    )
    assert (
        non_finite(Example(float("inf"), b"", "utf8: root"))
        == "non-finite value at <root> accepted"
    )
    assert non_finite(Example(doc, b"", "latin1: set a[1].b")) == ""  # the file is not the doc
    assert non_finite(Example({"a": [1.0, 1e300]}, b"", "utf8: x")) == ""
