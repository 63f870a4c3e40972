"""Defensive YAML input (runtime/core/_yaml.py): special files, size, encoding, nesting, bombs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runtime.bench import ScenarioError, load_scenario
from runtime.core._yaml import MAX_DEPTH, YamlError, parse_yaml, read_yaml_file


def _bomb(levels: int) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "[" * 5000, "nested more than|maximum nesting depth"),
        ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "nested more than"),
        (_bomb(9), "once aliases are expanded"),
        ("a: " + "1" * 5000, "a value YAML cannot convert"),
        ("a: 2001-13-45", "month must be in 1..12"),
        ("a: [1, 2", "YAML syntax error"),
    ],
)
def test_bad_yaml_is_one_error(text: str, message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(YamlError, match=message):
        parse_yaml(text)
    assert time.perf_counter() - t0 < 2.0


def test_good_yaml_with_aliases_and_moderate_nesting_loads() -> None:
    assert parse_yaml(_bomb(3))["l2"][9][9][9] == "x"  # 1,110 values: fine
    nested = "a: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)
    assert parse_yaml(nested) is not None


@pytest.mark.parametrize("kind", ["fifo", "dir", "device", "latin1", "big", "missing"])
def test_files_that_are_not_yaml_text_are_refused_without_blocking(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "in.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "latin1":
        path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    elif kind == "big":
        with path.open("wb") as f:
            f.truncate(1 << 30)
    errors: list[Exception] = []

    def load() -> None:
        try:
            read_yaml_file(path)
        except YamlError as exc:
            errors.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive() and errors
    expected = {
        "fifo": "not a regular file",
        "dir": "is a folder",
        "device": "not a regular file",
        "latin1": "not UTF-8 text: byte 0xe9 at offset 9",
        "big": "1,073,741,824 bytes is more than",
        "missing": "file not found",
    }[kind]
    assert expected in str(errors[0])


def test_a_scenario_file_that_is_a_fifo_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    os.mkfifo(path)
    with pytest.raises(ScenarioError, match=r"s\.yaml: invalid scenario: not a regular file"):
        load_scenario(path)
