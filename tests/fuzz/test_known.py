"""The smallest example of each defect class the fuzzers know (tests/fuzz/_known.py).

A class still open on this branch is xfail(strict=False): another branch of issue 13 fixes
it. Once that branch is merged, delete the class from ``_known.OPEN``: its example here must
then pass, and the fuzzers stop tolerating the class.
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import COPY_LOGIC, memory_manifest
from tests.fuzz._harness import Case, classify, run_inproc
from tests.fuzz._known import CLASSES, OPEN


def _app(edit: Callable[[dict[str, Any]], None] | None = None, raw: bytes | None = None) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vplc-known-"))
    doc = memory_manifest()
    if edit is not None:
        edit(doc)
    (folder / "app.yaml").write_bytes(raw if raw is not None else yaml.safe_dump(doc).encode())
    (folder / "logic.py").write_text(textwrap.dedent(COPY_LOGIC))
    return folder


def _param(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["parameters"][0].__setitem__(key, value)


def _output(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["points"][1].__setitem__(key, value)


def _task(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["tasks"][0].__setitem__("period_ms", value)


NAN, INF = float("nan"), float("inf")
EXAMPLES: list[tuple[str, str, Callable[[], Path]]] = [
    (
        "manifest-encoding",
        "latin-1 app.yaml",
        lambda: _app(raw="# café\nname: x\n".encode("latin-1")),
    ),
    (
        "manifest-nesting",
        "name: [[[…3000…]]]",
        lambda: _app(raw=b"name: " + b"[" * 3000 + b"]" * 3000),
    ),
    ("manifest-numbers", "parameter max: .nan", lambda: _app(_param("max", NAN))),
    ("manifest-numbers", "parameter default: .nan", lambda: _app(_param("default", NAN))),
    ("manifest-numbers", "output safe: .nan", lambda: _app(_output("safe", NAN))),
    (
        "manifest-numbers",
        "output safe -1 outside range [0, 100]",
        lambda: _app(_output("range", [0, 100])),
    ),
    ("manifest-numbers", "output range: [0, .inf]", lambda: _app(_output("range", [0, INF]))),
    (
        "manifest-numbers",
        "retain.interval_s: .inf",
        lambda: _app(lambda m: m.__setitem__("retain", {"interval_s": INF})),
    ),
    ("manifest-numbers", "period_ms: .inf", lambda: _app(_task(INF))),
    ("manifest-period", "period_ms: 1e-9", lambda: _app(_task(1e-9))),
]


def _marks(name: str) -> list[pytest.MarkDecorator]:
    if name not in OPEN:
        return []
    return [pytest.mark.xfail(strict=False, reason=f"{name}: {CLASSES[name].reason}")]


@pytest.mark.parametrize(
    ("name", "make"),
    [pytest.param(n, m, id=f"{n}: {what}", marks=_marks(n)) for n, what, m in EXAMPLES],
)
def test_minimal_example_is_refused_cleanly(name: str, make: Callable[[], Path]) -> None:
    folder = make()
    names = (str(folder / "app.yaml"),)
    validate = Case("manifest", ["validate", str(folder)], name, names)
    got = classify(validate, run_inproc(validate.argv, 20.0))
    assert got == "refused", f"{name}: validate gave {got}"


def test_every_known_class_has_a_minimal_example() -> None:
    assert {n for n, _, _ in EXAMPLES} == set(CLASSES)
