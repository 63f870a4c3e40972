"""The CSV trace keeps any STRING value intact: quoted fields, escaped parameter entries."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hal import Direction, IecType, PointSpec, ProcessImage
from runtime.bench._trace_reader import read_trace
from runtime.core._program import Parameter
from runtime.core.manifest import ParameterSpec
from runtime.host._trace import PARAMS_COLUMN, TraceRecorder, param_text, param_value

AWKWARD = ["plain", "a,b", 'say "hi"', "two\nlines", "k=v;w=%3B", "100%", ""]


def _image() -> ProcessImage:
    return ProcessImage(
        [
            PointSpec(
                name="MSG", type=IecType.STRING, direction=Direction.IN, driver="m", channel="a"
            ),
            PointSpec(name="X", type=IecType.REAL, direction=Direction.IN, driver="m", channel="b"),
        ]
    )


def test_string_values_and_parameters_read_back_exactly(tmp_path: Path) -> None:
    image = _image()
    recipe = Parameter(ParameterSpec(name="recipe", type=IecType.STRING, default="std"))
    path = tmp_path / "trace.csv"
    rec = TraceRecorder(path, image, threaded=False, parameters={"recipe": recipe})
    for i, text in enumerate(AWKWARD):
        image["MSG"].value = text
        image["X"].value = i + 0.5
        recipe.value = text or "std"
        rec(None, (i + 1) * 10**9)  # type: ignore[arg-type]
    rec.close()

    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert all(len(r) == len(rows[0]) for r in rows)  # no value split a row
    trace = read_trace(path, image.points, {"recipe": IecType.STRING})
    col = trace.columns.index("MSG")
    assert [row[col] for row in trace.rows] == AWKWARD
    assert [row[trace.columns.index("X")] for row in trace.rows] == [i + 0.5 for i in range(7)]
    written = [c["recipe"] if c else None for c in trace.changes]
    # the first row has "plain" (differs from the default); the last ("" → "std") is the default
    assert written == ["plain", "a,b", 'say "hi"', "two\nlines", "k=v;w=%3B", "100%", "std"]
    assert rows[0][-1] == PARAMS_COLUMN


def test_parameter_text_escaping_round_trips() -> None:
    for text in [*AWKWARD, "%25", "%%3B;", ";;", "%"]:
        escaped = param_text(text)
        assert ";" not in escaped
        assert param_value(escaped) == text


@pytest.mark.parametrize("threaded", [False, True])
def test_a_write_error_is_kept_not_raised_into_the_scan(threaded: bool) -> None:
    image = _image()
    image["X"].value = 1.5
    rec = TraceRecorder("/dev/full", image, threaded=threaded)
    for i in range(2000):  # past the file buffer: the device says ENOSPC on a flush
        rec(None, i * 1_000_000)  # type: ignore[arg-type]
    rec.close()
    assert rec.rows == 2000 and "No space left" in rec.error
    assert 0 < rec.dropped < rec.rows  # rows after the first failed flush are not attempted


def test_a_good_file_has_no_error(tmp_path: Path) -> None:
    rec = TraceRecorder(tmp_path / "t.csv", _image(), threaded=False)
    rec(None, 0)  # type: ignore[arg-type]
    rec.close()
    assert rec.error == "" and rec.dropped == 0
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 2
