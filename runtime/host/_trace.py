"""CSV trace of the process image: one row per cycle of the fastest task, byte-reproducible."""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from hal import Point, ProcessImage, Quality
from runtime.core._program import Parameter
from runtime.core._task import Task

# Two columns after the points (point names have no dot, so no point can take their names):
# the inputs whose quality is not GOOD, as NAME=QUALITY;... (empty when all are GOOD), and the
# parameters written since the previous row, as NAME=VALUE;... (empty when none changed; the
# first row lists those that differ from the manifest's defaults). In a VALUE, '%' and ';'
# are written %25 and %3B (``param_text``/``param_value``), so a STRING cannot split an entry.
QUALITY_COLUMN = "inputs.quality"
PARAMS_COLUMN = "parameters.changed"
_GOOD = Quality.GOOD


def _text(value: object) -> str:
    # repr() of a float is the shortest string that round-trips: identical on every IEEE-754
    # machine, which is what makes two traces comparable byte for byte.
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def param_text(value: object) -> str:
    """A parameter value inside the PARAMS_COLUMN cell ('%' and ';' escaped)."""
    return _text(value).replace("%", "%25").replace(";", "%3B")


def param_value(text: str) -> str:
    """The inverse of ``param_text`` (before parsing the value by its type)."""
    return text.replace("%3B", ";").replace("%25", "%")


def quality_cell(inputs: list[Point]) -> str:
    """The QUALITY_COLUMN cell for these input points."""
    return ";".join([f"{p.name}={p.quality.name}" for p in inputs if p.quality is not _GOOD])


class TraceRecorder:
    """Cycle hook writing ``t`` (seconds), every point's value, the non-GOOD inputs and the
    parameter changes: what a replay needs to feed a later version the same inputs.

    In real time the rows go through a queue to a writer thread so the scan never touches the
    disk; in virtual time they are written directly (nothing there is waiting on the clock).
    A write error (full disk, /dev/full) never reaches the scan: the first one is kept in
    ``error``, later rows are counted in ``dropped``, and the caller reports it after close.
    """

    def __init__(
        self,
        path: Path | str,
        image: ProcessImage,
        *,
        threaded: bool,
        parameters: Mapping[str, Parameter] | None = None,
    ) -> None:
        self.path = Path(path)
        self.rebind(image, parameters)
        self._file: IO[str] = self.path.open("w", encoding="utf-8", newline="")
        # csv quotes a field only when it needs it (a STRING with a comma, quote or newline),
        # so plain rows are the same bytes as a join, and csv.reader reads every value back.
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(["t", *(p.name for p in self._points), QUALITY_COLUMN, PARAMS_COLUMN])
        self.rows = 0
        self.dropped = 0
        self.error = ""  # the first write error ("" while every row was handed to the file)
        self._queue: queue.SimpleQueue[list[str] | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._drain, name="trace-writer", daemon=True)
            self._thread.start()

    def rebind(self, image: ProcessImage, parameters: Mapping[str, Parameter] | None) -> None:
        """Record this image and these parameters from now on (same names, e.g. a restart)."""
        self._points = list(image.points)
        self._inputs = list(image.inputs)
        self._params = list((parameters or {}).values())
        # against the manifest's defaults: the first row records what the run set before
        # starting (scenario parameters, retained values), later rows what was written since
        self._last = [p.spec.check(p.spec.default) for p in self._params]

    def _changed(self) -> str:
        last, out = self._last, []
        for i, p in enumerate(self._params):
            if p.value != last[i]:
                last[i] = p.value
                out.append(f"{p.name}={param_text(p.value)}")
        return ";".join(out)

    def __call__(self, task: Task, now_ns: int) -> None:
        row = [repr(now_ns / 1e9), *[_text(p.value) for p in self._points]]
        row += (quality_cell(self._inputs), self._changed())
        self.rows += 1
        if self._queue is not None:
            self._queue.put(row)
        else:
            self._write(row)

    def _write(self, row: list[str]) -> None:
        if self.error:
            self.dropped += 1
            return
        try:
            self._csv.writerow(row)
        except OSError as exc:
            self._failed(exc)
            self.dropped += 1

    def _failed(self, exc: OSError) -> None:
        if not self.error:
            self.error = exc.strerror or str(exc) or type(exc).__name__

    def _drain(self) -> None:
        assert self._queue is not None
        while (row := self._queue.get()) is not None:
            self._write(row)

    def close(self) -> None:
        """Flush and close; a failure is kept in ``error`` (never raised: the run is over and
        its summary must still be printed)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        try:
            self._file.close()  # closed even when the final flush fails
        except OSError as exc:
            self._failed(exc)
