"""The compiled output scan (runtime/core/_outscan.pyx) against its Python reference."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

import runtime.core._outputs as outputs_module
from hal import Point, PointSpec

OutputScan = pytest.importorskip("runtime.core._outscan").OutputScan


def test_compiled_scan_matches_the_python_reference() -> None:
    rng = random.Random(7)
    kinds = [
        {"type": "BOOL", "safe": False},
        {"type": "INT", "safe": 0, "range": (0, 100)},
        {"type": "DINT", "safe": 0},
        {"type": "REAL", "safe": 0.0, "range": (-10.0, 10.0)},
        {"type": "LREAL", "safe": 0.0},
        {"type": "STRING", "safe": ""},
    ]
    pool: list[Any] = [True, False, 0, 1, 7, -3, 100, 101, 2**40, 2**70, -(2**70), 0.5, -0.0,
                       9.99, 10.0, 10.01, 1e300, math.nan, math.inf, -math.inf, "x", "", None,
                       [1], 3 + 0j]  # fmt: skip

    def points() -> list[Point]:
        return [
            Point(PointSpec(name=f"P{i}", direction="out", driver="m", channel="c", **kind))
            for i, kind in enumerate(kinds * 4)
        ]

    py_points, c_points = points(), points()
    py_scan = outputs_module.PyOutputScan([outputs_module.scan_entry(p) for p in py_points])
    c_scan = OutputScan([outputs_module.scan_entry(p) for p in c_points])
    for _ in range(3000):
        for p, q in zip(py_points, c_points, strict=True):
            p.value = q.value = rng.choice(pool)
        py_bad, c_bad = py_scan.scan(), c_scan.scan()
        assert sorted(p.name for p in py_bad or []) == sorted(p.name for p in c_bad or [])
        assert [repr(p.good) for p in py_points] == [repr(q.good) for q in c_points]


def test_compiled_scan_accepts_only_hal_points() -> None:
    class NotAPoint:
        value = 1.0

    with pytest.raises(TypeError, match=r"hal\.Point"):
        OutputScan([(NotAPoint(), float, 0.0, 1.0)])
