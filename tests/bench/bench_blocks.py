"""Per-block cost: ns per call of each standard block, pure Python vs Cython, two call styles.

``kw``: ``blk(ctx, IN=...)``, the IEC-style call every app uses. ``fast``: the fastest path
of each implementation: ``blk.call(ctx, IN=...)`` for Cython (a vectorcall method, no
keyword dict), setting the input attributes and calling ``blk.execute(ctx)`` for Python.
Timing: timeit, the minimum of several repeats, divided by the number of calls.
"""

from __future__ import annotations

import timeit
from typing import Any

from runtime.blocks._cy import python_blocks
from runtime.core._fb import CycleContext

# Block → the inputs of a typical call (a timer timing, a PID in auto with I and D action).
# Every block is measured; one not listed here with its initial values and no inputs.
CALLS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (constructor inputs, per-call inputs)
    "TON": ({"PT": 5.0}, {"IN": True}),
    "TOF": ({"PT": 5.0}, {"IN": False}),
    "TP": ({"PT": 5.0}, {"IN": True}),
    "CTU": ({"PV": 10}, {"CU": True}),
    "CTD": ({"PV": 10}, {"CD": True}),
    "CTUD": ({"PV": 10}, {"CU": True, "CD": False}),
    "R_TRIG": ({}, {"CLK": True}),
    "F_TRIG": ({}, {"CLK": False}),
    "SR": ({}, {"S1": False, "R": False}),
    "RS": ({}, {"S": False, "R1": False}),
    "RAMP": ({"RATE_UP": 1.0, "RATE_DOWN": 1.0}, {"IN": 50.0}),
    "HYSTERESIS": ({"HIGH": 60.0, "LOW": 40.0}, {"IN": 50.0}),
    "LIMIT": ({"MN": 0.0, "MX": 100.0}, {"IN": 50.0}),
    "SCALE": ({"IN_MAX": 27648.0, "OUT_MAX": 100.0}, {"IN": 13824.0}),
    "PID": ({"KC": 2.0, "TI": 30.0, "TD": 1.0}, {"SP": 37.0, "PV": 36.5}),
    "ALARM": ({"H": 80.0, "H_EN": True, "L": 20.0, "L_EN": True}, {"IN": 50.0}),
    "PHASE": ({"AUTO_COMPLETE_ACTING": True}, {"DONE": False}),
}


def _ns(stmt: str, env: dict[str, Any], number: int, repeat: int) -> float:
    best = min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat))
    return round(best / number * 1e9, 1)


def _args(inputs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in inputs.items())


def _sets(inputs: dict[str, Any]) -> str:
    return "; ".join(f"b.{k} = {v!r}" for k, v in inputs.items())


def measure(name: str, *, number: int = 100_000, repeat: int = 7) -> dict[str, Any]:
    from runtime.blocks._cy import load

    cy = load()
    init, inputs = CALLS.get(name, ({}, {}))
    ctx = CycleContext("bench")
    ctx.advance(0)
    ctx.advance(10_000_000)  # dt = 10 ms, not the first scan
    py_env = {"b": python_blocks()[name](**init), "ctx": ctx}
    cy_env = {"b": cy[name](**init), "ctx": ctx}
    kw = f"b(ctx, {_args(inputs)})"
    row = {
        "py_kw_ns": _ns(kw, py_env, number, repeat),
        "cy_kw_ns": _ns(kw, cy_env, number, repeat),
        "py_fast_ns": _ns(f"{_sets(inputs) or 'pass'}; b.execute(ctx)", py_env, number, repeat),
        "cy_fast_ns": _ns(f"b.call(ctx, {_args(inputs)})", cy_env, number, repeat),
    }
    row["kw_ratio"] = round(row["py_kw_ns"] / row["cy_kw_ns"], 1)
    row["fast_ratio"] = round(row["py_fast_ns"] / row["cy_fast_ns"], 1)
    return row


def run() -> dict[str, Any]:
    """ns per call for every block; {'error': ...} when the Cython blocks are not built."""
    try:
        from runtime.blocks._cy import load

        load()
    except ImportError as exc:
        return {"error": f"Cython blocks not built: {exc}"}
    names = [*CALLS, *sorted(set(python_blocks()) - set(CALLS))]
    return {"unit": "ns per call", "blocks": {name: measure(name) for name in names}}


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = [
        "| block | Python kw | Cython kw | ratio | Python fast | Cython fast | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result["blocks"].items():
        lines.append(
            f"| {name} | {r['py_kw_ns']} | {r['cy_kw_ns']} | {r['kw_ratio']}x | "
            f"{r['py_fast_ns']} | {r['cy_fast_ns']} | {r['fast_ratio']}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
