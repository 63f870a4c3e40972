"""The web process's questions the shared frame cannot answer, served in the scan process.

Block internals (a PID's OUT and MODE, any instance's variables), the instance tree and the
task histograms are not in the frame: the web process asks by pipe, a few times a second at
most, and the values are read between two cycles (``engine.submit``) so they are one cycle's.
"""

from __future__ import annotations

import math
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from runtime.core._fb import FunctionBlock
from runtime.core._stats import _lower_bound

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["MAX_WATCH", "answer_query"]

MAX_WATCH = 64  # instances per watch request: a browser cannot make the scan process crawl
_LOOP_VARS = ("OUT", "MODE", "SP_W", "ERR", "LIMITED", "OUT_MIN", "OUT_MAX")


def answer_query(engine: ScanEngine, body: Any, *, timeout_s: float) -> dict[str, Any]:
    """The answer to one query (``{"error": why}`` for a bad one); never raises."""
    try:
        what = body.get("what") if isinstance(body, dict) else None
        if what == "tree":
            return {"tree": _tree(engine)}
        if what == "histograms":
            return {"tasks": _histograms(engine)}
        if what == "watch":
            paths = body.get("paths")
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                return {"error": "paths: expected a list of instance paths"}
            if len(paths) > MAX_WATCH:
                return {"error": f"paths: at most {MAX_WATCH} instances per request"}
            loops = bool(body.get("loops"))
            return _between_cycles(engine, lambda e: _watch(e, paths, loops), timeout_s)
        return {"error": f"unknown query {what!r}"}
    except Exception as exc:  # a query must never take the link thread down
        return {"error": f"internal error: {type(exc).__name__}: {exc}"}


def _between_cycles(engine: ScanEngine, read: Any, timeout_s: float) -> dict[str, Any]:
    if not engine.running:  # no scan thread: nothing runs concurrently, read now
        return dict(read(engine))
    try:
        return dict(engine.submit(read).result(timeout=timeout_s))
    except FutureTimeout:
        return {"error": f"the scan did not answer within {timeout_s} s"}


def _tree(engine: ScanEngine) -> list[dict[str, Any]]:
    tree = engine.app.tree
    out: list[dict[str, Any]] = [
        {"path": name, "type": type(prog).__name__, "kind": "program"}
        for name, prog in tree.programs.items()
    ]
    out += [
        {"path": path, "type": type(block).__name__, "kind": "block"}
        for path, block in tree.blocks().items()
    ]
    return sorted(out, key=lambda row: str(row["path"]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, FunctionBlock):
        return f"<{type(value).__name__}>"
    return repr(value)[:200]


def _watch(engine: ScanEngine, paths: list[str], loops: bool) -> dict[str, Any]:
    tree = engine.app.tree
    found: dict[str, Any] = {}
    for path in paths:
        inst = tree.find(path)
        if inst is None:
            found[path] = None
            continue
        if loops:
            found[path] = {v: _jsonable(getattr(inst, v, None)) for v in _LOOP_VARS}
            continue
        names = list(getattr(inst, "_VARS", ())) or list(getattr(inst, "VARS", ()))
        found[path] = {v: _jsonable(getattr(inst, v, None)) for v in names}
    return {"values": found, "now_ns": engine.now_ns}


def _histograms(engine: ScanEngine) -> dict[str, Any]:
    """Per task, the wake-latency and execution-time histograms in bins of powers of two µs."""
    out: dict[str, Any] = {}
    for task in engine.tasks:
        stats = task.stats
        out[task.name] = {
            "latency": _bins(list(stats.latency_hist.counts)),
            "exec": _bins(list(stats.exec_hist.counts)),
        }
    return out


def _bins(counts: list[int]) -> list[list[float]]:
    """[[upper µs, count], ...] for the non-empty power-of-two bins (1 µs, 2 µs, 4 µs, ...)."""
    bins: dict[int, int] = {}
    for i, n in enumerate(counts):
        if n:
            us = max(_lower_bound(i), 1) / 1000
            edge = 0 if us <= 1 else math.ceil(math.log2(us))
            bins[edge] = bins.get(edge, 0) + n
    return [[float(2**edge), float(n)] for edge, n in sorted(bins.items())]
