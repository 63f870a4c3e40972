"""Fuzz harness: run ``vplc`` in-process or as a subprocess, classify the outcome, count it.

An outcome is one of: accepted (exit 0 with output), refused (exit 2 with a message naming
the input), failed (exit 1 with a message, only where a run can really fail), or a defect:
traceback, hang, silent (no message), unnamed (a refusal that does not name the input),
bad_code (an exit code outside 0/1/2), or invalid_accepted (a property check failed on an
accepted input, e.g. a NaN that validated). Defects of a class another branch is fixing are
"known" (tests/fuzz/_known.py): counted and shown, not failed on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fuzz._known import known_class

FUZZ = bool(os.environ.get("VPLC_FUZZ"))
VPLC = str(Path(sys.executable).with_name("vplc"))
GOOD = ("accepted", "refused", "failed")
DEFECTS = ("traceback", "hang", "silent", "unnamed", "bad_code", "invalid_accepted")


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.MULTILINE)


class _Hang(BaseException):
    """Raised by the alarm in the main thread: the call took longer than its timeout."""


@dataclass
class Outcome:
    code: int | None  # None: did not finish in time
    out: str
    err: str
    error: str = ""  # an exception that escaped main(), formatted
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Case:
    """One example: what was fed (for the report) and what a refusal must name."""

    kind: str
    argv: list[str]
    what: str  # a short description of the mutation
    names: Sequence[str] = ()  # any of these in the message: the input is named
    may_fail: bool = False  # exit 1 is a legitimate result (a run or a scenario can fail)
    violation: str = ""  # a property check on the accepted input failed: why


@dataclass
class _Captured:
    """What one in-process call printed, and when it started."""

    out: io.StringIO = field(default_factory=io.StringIO)
    err: io.StringIO = field(default_factory=io.StringIO)
    t0: float = field(default_factory=time.perf_counter)

    def outcome(self, code: int | None, error: str = "") -> Outcome:
        seconds = time.perf_counter() - self.t0
        return Outcome(code, self.out.getvalue(), self.err.getvalue(), error, seconds)


@contextlib.contextmanager
def _deadline(timeout: float, captured: _Captured) -> Iterator[None]:
    """Output into ``captured``, and ``_Hang`` raised in the body after ``timeout`` seconds.

    The alarm is a signal, so only the main thread can take it; it is off and the previous
    handler back before an exception leaves, so the caller's handlers run without it.
    """

    def alarm(signum: int, frame: object) -> None:
        raise _Hang()

    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(captured.out), contextlib.redirect_stderr(captured.err):
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_inproc(argv: list[str], timeout: float) -> Outcome:
    """``runtime.host.cli.main(argv)``: captured output, an alarm for hangs, nothing escaping."""
    from runtime.core._logging import configure_logging
    from runtime.host.cli import main

    captured = _Captured()
    code: int | None
    error = ""
    try:
        with _deadline(timeout, captured):
            code = main(argv)
    except _Hang:
        code = None
    except SystemExit as exc:  # argparse, --help, or app code calling sys.exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            captured.err.write(exc.code + "\n")
    except BaseException as exc:  # what would be a traceback on a terminal
        code = 1
        error = "".join(traceback.format_exception(exc))
    finally:
        configure_logging("console")  # back to the real stderr for the rest of the session
        for name in [m for m in sys.modules if m.startswith("_vplc_app_")]:
            del sys.modules[name]  # each load imports the app anew: do not keep 10,000 copies
    return captured.outcome(code, error)


def run_call(
    call: Callable[[], str],
    timeout: float,
    refusals: dict[type[BaseException], int],
    prefix: str = "vplc: error: ",
) -> Outcome:
    """A command's loading step called in-process, the way its command reports the result.

    For input a command reads only on a path that cannot run in-process (a config file of a
    real-time run, a deployment file before Docker is asked): ``call`` returns what the
    command prints on success; an exception of a class in ``refusals`` is printed as the
    command prints it (``prefix`` + message) with that exit code; anything else escaping is
    a traceback, a call beyond ``timeout`` a hang.
    """
    captured = _Captured()
    code: int | None = 0
    error = ""
    try:
        with _deadline(timeout, captured):
            captured.out.write(call() + "\n")
    except _Hang:
        code = None
    except BaseException as exc:
        codes = [c for kind, c in refusals.items() if isinstance(exc, kind)]
        if codes:
            code = codes[0]
            captured.err.write(f"{prefix}{exc}\n")
        else:
            code, error = 1, "".join(traceback.format_exception(exc))
    return captured.outcome(code, error)


def run_cli(argv: list[str], timeout: float, **kw: Any) -> Outcome:
    """The real ``vplc`` executable."""
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            [VPLC, *argv], capture_output=True, text=True, timeout=timeout, errors="replace", **kw
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return Outcome(None, out, "", seconds=time.perf_counter() - t0)
    return Outcome(res.returncode, res.stdout, res.stderr, seconds=time.perf_counter() - t0)


def classify(case: Case, o: Outcome) -> str:
    if o.code is None:
        return "hang"
    if o.error or _TRACEBACK.search(o.err):  # printed raw, not inside a JSON log field
        return "traceback"
    if o.code not in (0, 1, 2):
        return "bad_code"
    messages = [
        line
        for line in o.err.splitlines() + o.out.splitlines()
        if "error" in line.lower() or "fault" in line.lower() or "FAIL" in line
    ]
    if o.code == 0:
        if case.violation:
            return "invalid_accepted"
        return "accepted" if o.out.strip() else "silent"
    if not messages:
        return "silent"
    if o.code == 1:
        return "failed" if case.may_fail else "bad_code"
    if case.names and not any(n in o.err for n in case.names):
        return "unnamed"
    return "refused"


_FRAME = re.compile(
    r'File "[^"]*/((?:runtime|hal|sim_hardware|plc_apps|containers)/[^"]+)", '
    r"line (\d+), in (\w+)"
)


def signature(o: Outcome, cls: str) -> str:
    """What kind of defect: the exception and the innermost project frame, or the class."""
    text = o.error or o.err
    if cls == "traceback":
        frames = _FRAME.findall(text)
        last = [x for x in text.strip().splitlines() if x and not x.startswith(" ")]
        exc = last[-1].split(":", 1)[0][:60] if last else "?"
        where = f"{frames[-1][0]}:{frames[-1][2]}" if frames else "?"
        return f"{exc} in {where}"
    return cls


@dataclass
class Tally:
    """Counts per kind and outcome class, plus the first few examples of each defect."""

    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    known: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    signatures: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def record(self, case: Case, o: Outcome, cls: str, known: str | None) -> None:
        self.counts[case.kind]["examples"] += 1
        self.counts[case.kind][cls] += 1
        if known is not None:
            self.known[case.kind][f"{cls}: {known}"] += 1
        if cls in DEFECTS:
            self.signatures[case.kind][f"{signature(o, cls)} [{known or 'new'}]"] += 1
            key = f"{case.kind}/{cls}/{known or 'new'}"
            if len(self.samples[key]) < 3:
                lines = [x.strip()[:200] for x in (o.error or o.err or o.out).splitlines()]
                self.samples[key].append(
                    {
                        "what": case.what[:300],
                        "argv": [a if len(a) <= 80 else a[:77] + "..." for a in case.argv],
                        "code": o.code,
                        "message": [x for x in lines if x][-4:],
                    }
                )

    def unknown_defects(self, kind: str) -> int:
        c = self.counts[kind]
        known = sum(self.known[kind].values())
        return sum(c[d] for d in DEFECTS) - known

    def table(self) -> str:
        cols = ("examples", "accepted", "refused", "failed", *DEFECTS)
        head = f"{'kind':<10}" + "".join(f"{c:>17}" for c in cols)
        rows = [head]
        for kind, c in sorted(self.counts.items()):
            rows.append(f"{kind:<10}" + "".join(f"{c[col]:>17}" for col in cols))
        for kind, k in sorted(self.known.items()):
            for name, n in k.most_common():
                rows.append(f"  {kind}: {n} x known (other branch) {name}")
        return "\n".join(rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": {k: dict(v) for k, v in self.counts.items()},
            "known": {k: dict(v) for k, v in self.known.items()},
            "signatures": {k: dict(v.most_common()) for k, v in self.signatures.items()},
            "samples": dict(self.samples),
        }


TALLY = Tally()


def check(case: Case, o: Outcome) -> str:
    """Classify and count; outside ``make fuzz`` an unknown defect fails the example."""
    cls = classify(case, o)
    known = known_class(case, o, cls) if cls in DEFECTS else None
    TALLY.record(case, o, cls, known)
    if cls in DEFECTS and known is None and not FUZZ:
        raise AssertionError(
            f"{case.kind} example gave {cls} (exit {o.code}): {case.what[:300]}\n"
            f"argv: {case.argv}\n--- stderr/traceback ---\n{(o.error or o.err)[-3000:]}\n"
            f"--- stdout ---\n{o.out[-1000:]}"
        )
    return cls


def assert_clean(kind: str) -> None:
    """End of a fuzz test: no defect outside the known classes (make fuzz counts them all)."""
    bad = TALLY.unknown_defects(kind)
    samples = {k: v for k, v in TALLY.samples.items() if k.startswith(kind) and k.endswith("/new")}
    assert bad == 0, f"{bad} new defect(s) in {kind}: " + json.dumps(samples, indent=1)[:6000]


@contextlib.contextmanager
def no_plots() -> Iterator[None]:
    """Bench reports without the PNG trends: plotting is not what is fuzzed, and is slow."""
    from runtime.bench import _report

    real: Callable[..., list[str]] = _report._plots
    _report._plots = lambda result, folder: []
    try:
        yield
    finally:
        _report._plots = real
