"""The app.yaml file itself: encoding, size, nesting, aliases and non-finite numbers are refused."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from runtime import ManifestError, load_app
from runtime.core._yaml import MAX_DEPTH, YamlError, parse_yaml
from tests.conftest import MakeApp, memory_manifest


def _refused(folder: Path) -> str:
    with pytest.raises(ManifestError) as info:
        load_app(folder)
    message = str(info.value)
    assert str(folder / "app.yaml") in message and "\n" not in message
    return message


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "app.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return tmp_path


def test_non_utf8_file_is_refused_with_offset(tmp_path: Path) -> None:
    msg = _refused(_write(tmp_path, b"name: caf\xe9\nversion: 1.0.0\n"))
    assert "not UTF-8 text: byte 0xe9 at offset 9 (line 1)" in msg


def test_byte_order_mark_is_accepted(make_app: MakeApp) -> None:
    folder = make_app()
    path = folder / "app.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_app(folder).name == "testapp"


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    for depth in (MAX_DEPTH + 1, 5000, 200_000):
        msg = _refused(_write(tmp_path, "name: " + "[" * depth + "]" * depth + "\n"))
        assert "nest" in msg and "line 1" in msg


def test_billion_laughs_is_refused_fast(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    t0 = time.perf_counter()
    msg = _refused(_write(tmp_path, "\n".join(lines) + "\n"))
    assert time.perf_counter() - t0 < 5  # generous: expanding would take hours
    assert "nodes once aliases are expanded" in msg


def test_merge_key_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["m0: &m0 {k0: 1, k1: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], x{i}: 1}}" for i in range(1, 40)]
    msg = _refused(_write(tmp_path, "\n".join(lines) + "\n"))
    assert "aliases" in msg


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    msg = _refused(_write(tmp_path, "name: &a [1, *a]\n"))
    assert "recursive structure" in msg


def test_ordinary_aliases_still_work(make_app: MakeApp) -> None:
    folder = make_app()
    text = (folder / "app.yaml").read_text()
    text = "description: &d shared text\n" + text.replace(
        "- name: gain\n", "- name: gain\n  unit: *d\n"
    )
    (folder / "app.yaml").write_text(text)
    app = load_app(folder)
    assert app.manifest.description == app.manifest.parameters[0].unit == "shared text"


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    msg = _refused(_write(tmp_path, "name: !!python/object/apply:os.system [echo hi]\n"))
    assert "could not determine a constructor" in msg


def test_two_documents_are_refused(tmp_path: Path) -> None:
    msg = _refused(_write(tmp_path, "name: a\n---\nname: b\n"))
    assert "expected a single document" in msg


def test_fifo_as_manifest_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "app.yaml")
    assert "not a regular file" in _refused(tmp_path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("tasks", 0, "period_ms"), ".inf"),
        (("tasks", 0, "watchdog_ms"), ".nan"),
        (("points", 1, "safe"), ".nan"),
        (("points", 1, "safe"), "-.inf"),
        (("points", 0, "range"), "[0, .inf]"),
        (("parameters", 0, "default"), ".nan"),
        (("parameters", 0, "min"), "-.inf"),
        (("parameters", 0, "max"), ".inf"),
        (("drivers", "mem", "options", "initial"), "{x: .nan}"),
        (("retain", "interval_s"), "1.0e+400"),
    ],
)
def test_every_float_must_be_finite(
    make_app: MakeApp, path: tuple[str | int, ...], value: str
) -> None:
    m = memory_manifest(retain={"interval_s": 1.0})
    target = m
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "PLACEHOLDER"
    folder = make_app(m)
    text = (folder / "app.yaml").read_text().replace("PLACEHOLDER", value)
    (folder / "app.yaml").write_text(text)
    msg = _refused(folder)
    dotted = ".".join(str(p) for p in path)
    assert f"at {dotted}" in msg and "finite number" in msg


def test_parse_yaml_reports_syntax_position() -> None:
    with pytest.raises(YamlError, match=r"line 2, column 4: YAML syntax error"):
        parse_yaml("a: 1\nb: ]\n")
    assert parse_yaml("a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}
    assert math.isnan(parse_yaml("x: .nan", finite=False)["x"])  # only where asked
