"""Defect classes another branch of issue 13 is fixing: recognised, counted, not failed on.

Each entry: a name, a reason naming the class and the module where it fails, and a test of
an outcome. ``OPEN`` lists the classes still open on this branch; when the fixing branch is
merged, delete its name from ``OPEN`` and both the fuzz tests and the minimal examples in
test_known.py become strict (the examples lose their xfail).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fuzz._harness import Case, Outcome


@dataclass(frozen=True)
class Known:
    reason: str
    matches: Callable[[Case, Outcome, str], bool]


def _tb(*names: str) -> Callable[[Case, Outcome, str], bool]:
    pattern = re.compile("|".join(re.escape(n) for n in names))
    return lambda case, o, cls: cls == "traceback" and bool(pattern.search(o.error + o.err))


def _manifest(match: Callable[[Case, Outcome, str], bool]) -> Callable[[Case, Outcome, str], bool]:
    return lambda case, o, cls: case.kind == "manifest" and match(case, o, cls)


CLASSES: dict[str, Known] = {
    "manifest-encoding": Known(
        "a non-UTF-8 app.yaml is a UnicodeDecodeError traceback (runtime/core/manifest.py, "
        "load_manifest reads with read_text)",
        _manifest(_tb("UnicodeDecodeError")),
    ),
    "manifest-nesting": Known(
        "deeply nested YAML in app.yaml is a RecursionError traceback (runtime/core/manifest.py, "
        "load_manifest: yaml.safe_load unbounded)",
        _manifest(_tb("RecursionError")),
    ),
    "manifest-numbers": Known(
        "NaN/inf in app.yaml numbers is accepted (parameter min/max, safe, range, "
        "retain.interval_s: runtime/core/manifest.py models) or a traceback (parameter default "
        "NaN: ValueError from runtime/core/_program.py; period_ms inf: OverflowError in "
        "runtime/core/_task.py)",
        _manifest(
            lambda case, o, cls: (
                cls == "invalid_accepted"
                or _tb("NaN is not a value", "OverflowError: cannot convert float infinity")(
                    case, o, cls
                )
            )
        ),
    ),
    "manifest-period": Known(
        "a period_ms far below a sane minimum (1e-9) validates and hangs the virtual run "
        "(runtime/core/manifest.py TaskSpec.period_ms has no minimum)",
        _manifest(lambda case, o, cls: cls == "hang" and "period_ms" in case.what),
    ),
}

OPEN: set[str] = set()  # all fixed: the manifest classes were fixed by the validation work


def known_class(case: Case, o: Outcome, cls: str) -> str | None:
    """The open known class this defect belongs to, or None (a new defect)."""
    for name in sorted(OPEN):
        if CLASSES[name].matches(case, o, cls):
            return name
    return None
