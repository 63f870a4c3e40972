"""Reads a vplc CSV trace back: times, point values, input qualities and parameter writes."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hal import Direction, IecType, Point, Quality, Value
from runtime.host._trace import PARAMS_COLUMN, QUALITY_COLUMN, param_value

__all__ = ["RecordedTrace", "ReplayError", "read_trace"]


class ReplayError(Exception):
    """The trace cannot be replayed on this app (columns, values or times do not fit)."""


def _parser(kind: IecType) -> Any:
    if kind is IecType.BOOL:
        return lambda s: s.strip().lower() in ("1", "true")
    if kind.is_integer:
        return int
    if kind is IecType.STRING:
        return str
    return float


@dataclass
class RecordedTrace:
    """A trace read back: row times, values by column, non-GOOD inputs, parameter writes."""

    times_ns: list[int]
    rows: list[list[Value]]
    columns: list[str]
    qualities: list[dict[str, Quality] | None]
    changes: list[dict[str, Value] | None]


def _qualities(cell: str, inputs: set[str], where: str) -> dict[str, Quality] | None:
    """'AT301=BAD;TT101=UNCERTAIN' → {name: quality}; an empty cell (all GOOD) → None."""
    if not cell:
        return None
    out: dict[str, Quality] = {}
    for item in cell.split(";"):
        name, _, quality = item.partition("=")
        if name not in inputs or quality not in Quality.__members__:
            raise ReplayError(
                f"{where}: {QUALITY_COLUMN} entry {item!r} is not INPUT=QUALITY with an input "
                f"point of the app and one of {', '.join(Quality.__members__)}"
            )
        out[name] = Quality[quality]
    return out


def _changes(cell: str, kinds: Mapping[str, IecType], where: str) -> dict[str, Value] | None:
    """'temp_sp=37.5;auto_start=0' → {name: value}; an empty cell (nothing written) → None."""
    if not cell:
        return None
    out: dict[str, Value] = {}
    for item in cell.split(";"):
        name, _, text = item.partition("=")
        if name not in kinds:
            raise ReplayError(
                f"{where}: {PARAMS_COLUMN} entry {item!r}: the app has no parameter {name!r} "
                f"(parameters: {', '.join(kinds) or 'none'})"
            )
        try:
            out[name] = _parser(kinds[name])(param_value(text))
        except ValueError:
            raise ReplayError(
                f"{where}: {PARAMS_COLUMN} entry {item!r}: not a {kinds[name].value}"
            ) from None
    return out


def _open_regular(path: Path) -> IO[str]:
    """A text stream on a regular file; never blocks on a FIFO, never reads a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ReplayError(f"{path}: not a regular file (a folder, FIFO or device)")
    os.set_blocking(fd, True)
    return os.fdopen(fd, encoding="utf-8", newline="")


def read_trace(path: Path, points: Sequence[Point], params: Mapping[str, IecType]) -> RecordedTrace:
    line = 0  # the last line read whole (the header is line 1)
    try:
        with _open_regular(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "t":
                raise ReplayError(f"{path}: not a vplc trace (first column must be 't')")
            # Traces from older versions end before one or both of these columns.
            extra_cols = [c for c in header[-2:] if c in (QUALITY_COLUMN, PARAMS_COLUMN)]
            n_extra = len(extra_cols)
            q_at = header.index(QUALITY_COLUMN) if QUALITY_COLUMN in extra_cols else None
            c_at = header.index(PARAMS_COLUMN) if PARAMS_COLUMN in extra_cols else None
            columns = header[1 : len(header) - n_extra]
            names = {p.name for p in points}
            missing, extra = sorted(names - set(columns)), sorted(set(columns) - names)
            if missing or extra:
                raise ReplayError(
                    f"{path}: trace columns do not match the app's points: "
                    f"missing {missing or 'none'}, unknown {extra or 'none'}"
                )
            by_name = {p.name: p for p in points}
            inputs = {p.name for p in points if p.direction is Direction.IN}
            parsers = [_parser(by_name[c].type) for c in columns]
            trace = RecordedTrace([], [], columns, [], [])
            for line, rec in enumerate(reader, start=2):
                if len(rec) != len(header):
                    raise ReplayError(f"{path}:{line}: {len(rec)} fields, header has {len(header)}")
                values = rec[1 : len(rec) - n_extra]
                try:
                    t_ns = round(float(rec[0]) * 1e9)
                    trace.rows.append([f(v) for f, v in zip(parsers, values, strict=True)])
                except (ValueError, OverflowError) as exc:  # nan, inf, text in a number
                    raise ReplayError(f"{path}:{line}: {exc}") from None
                where = f"{path}:{line}"
                trace.qualities.append(_qualities(rec[q_at] if q_at else "", inputs, where))
                trace.changes.append(_changes(rec[c_at] if c_at else "", params, where))
                if trace.times_ns and t_ns < trace.times_ns[-1]:
                    raise ReplayError(f"{path}:{line}: time goes backwards")
                trace.times_ns.append(t_ns)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReplayError(f"{path}: not UTF-8 text: not a vplc trace") from None
    except csv.Error as exc:  # a NUL byte, a field over csv's size limit
        raise ReplayError(f"{path}:{line + 1}: not a CSV trace: {exc}") from None
    if not trace.rows:
        raise ReplayError(f"{path}: the trace has no rows")
    return trace
