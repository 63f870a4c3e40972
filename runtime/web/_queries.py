"""The web process's questions the shared frame cannot answer, served in the scan process.

Block internals (a PID's OUT and MODE, any instance's variables), the instance tree and the
task histograms are not in the frame: the web process asks by pipe (each distinct question at
most every ``runtime.web._shared.SHARE_S``, however many browsers ask). Watched values are
read between two cycles (``engine.submit``) so they are one cycle's; everything else — finding
the instances by path, listing the tree, formatting — happens on the link thread, so the scan
thread pays only for reading the attributes (tens of µs) and never for walking the tree.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from runtime.core._fb import FunctionBlock
from runtime.core._stats import _lower_bound

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["MAX_WATCH", "QueryAnswers"]

MAX_WATCH = 64  # instances per watch request: a browser cannot make the scan process crawl
_LOOP_VARS = ("OUT", "MODE", "SP_W", "ERR", "LIMITED", "OUT_MIN", "OUT_MAX")
_TREE_MAX_AGE_S = 10.0  # the tree is listed again after this, or at once after an online change

# What the scan thread reads for one watch: (path, instance or None, variable names).
Resolved = list[tuple[str, Any, tuple[str, ...]]]


class QueryAnswers:
    """Answers the web process's queries for one engine (on the FrontEnd's link thread)."""

    def __init__(self, engine: ScanEngine, *, timeout_s: float) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self._tree: tuple[Any, float, list[dict[str, Any]]] | None = None  # app, when, rows

    def answer(self, body: Any) -> dict[str, Any]:
        """The answer to one query (``{"error": why}`` for a bad one); never raises."""
        try:
            what = body.get("what") if isinstance(body, dict) else None
            if what == "tree":
                return {"tree": self._listed_tree()}
            if what == "histograms":
                return {"tasks": _histograms(self.engine)}
            if what == "watch":
                paths = body.get("paths")
                if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                    return {"error": "paths: expected a list of instance paths"}
                if len(paths) > MAX_WATCH:
                    return {"error": f"paths: at most {MAX_WATCH} instances per request"}
                return self._watch(paths, bool(body.get("loops")))
            return {"error": f"unknown query {what!r}"}
        except Exception as exc:  # a query must never take the link thread down
            return {"error": f"internal error: {type(exc).__name__}: {exc}"}

    def _listed_tree(self) -> list[dict[str, Any]]:
        app, now = self.engine.app, time.monotonic()
        cached = self._tree
        if cached is None or cached[0] is not app or now - cached[1] > _TREE_MAX_AGE_S:
            cached = self._tree = (app, now, _tree(app.tree))
        return cached[2]

    def _watch(self, paths: list[str], loops: bool) -> dict[str, Any]:
        # Found here, on the link thread (walking a program's blocks costs ~25 µs a path);
        # the scan thread only reads the variables, and finds again only if an online change
        # swapped the app in between.
        app = self.engine.app
        resolved = _resolve(app.tree, paths, loops)

        def read(engine: ScanEngine) -> dict[str, Any]:
            now = resolved if engine.app is app else _resolve(engine.app.tree, paths, loops)
            return _read(now, engine.now_ns)

        engine = self.engine
        if not engine.running:  # no scan thread: nothing runs concurrently, read now
            values = read(engine)
        else:
            try:
                values = dict(engine.submit(read).result(timeout=self.timeout_s))
            except FutureTimeout:
                return {"error": f"the scan did not answer within {self.timeout_s} s"}
        return values


def _resolve(tree: Any, paths: list[str], loops: bool) -> Resolved:
    out: Resolved = []
    for path in paths:
        inst = tree.find(path)
        if inst is None:
            out.append((path, None, ()))
        elif loops:
            out.append((path, inst, _LOOP_VARS))
        else:
            names = list(getattr(inst, "_VARS", ())) or list(getattr(inst, "VARS", ()))
            out.append((path, inst, tuple(names)))
    return out


def _read(resolved: Resolved, now_ns: int) -> dict[str, Any]:
    """On the scan thread, between two cycles: one cycle's values, as JSON values."""
    values: dict[str, Any] = {}
    for path, inst, names in resolved:
        values[path] = (
            None if inst is None else {v: _jsonable(getattr(inst, v, None)) for v in names}
        )
    return {"values": values, "now_ns": now_ns}


def _tree(tree: Any) -> list[dict[str, Any]]:
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
