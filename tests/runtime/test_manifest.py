"""Bad manifests are refused before RUN, naming the file, the YAML path and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime import ManifestError, load_app
from tests.conftest import COPY_LOGIC, MakeApp, memory_manifest


def _error(make_app: MakeApp, manifest: dict[str, Any], logic: str = COPY_LOGIC) -> str:
    with pytest.raises(ManifestError) as info:
        load_app(make_app(manifest, logic))
    message = str(info.value)
    assert "app.yaml" in message
    return message


def test_valid_manifest_loads(make_app: MakeApp) -> None:
    app = load_app(make_app())
    assert app.name == "testapp" and list(app.programs) == ["main"]
    assert app.image["Y"].safe_value == -1.0


def test_unknown_key_is_named_with_its_path(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["tasks"][0]["priorty"] = 3
    msg = _error(make_app, m)
    assert "tasks.0.priorty" in msg and "unknown key" in msg


def test_unknown_top_level_key(make_app: MakeApp) -> None:
    msg = _error(make_app, memory_manifest(retian={}))
    assert "at retian: unknown key" in msg


def test_wrong_type(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["tasks"][0]["period_ms"] = "fast"
    msg = _error(make_app, m)
    assert "tasks.0.period_ms" in msg and "'fast'" in msg


@pytest.mark.parametrize("period", [0, -5])
def test_period_must_be_positive(make_app: MakeApp, period: float) -> None:
    m = memory_manifest()
    m["tasks"][0]["period_ms"] = period
    msg = _error(make_app, m)
    assert "tasks.0.period_ms" in msg and "greater than 0" in msg


def test_output_bound_to_input_only_channel(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["points"][1]["channel"] = "x"
    msg = _error(make_app, m)
    assert "points.1.channel (Y)" in msg and "in-only" in msg


def test_unknown_channel(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["points"][0]["channel"] = "nope"
    msg = _error(make_app, m)
    assert "points.0.channel (X)" in msg and "no channel 'nope'" in msg


def test_output_without_safe_value(make_app: MakeApp) -> None:
    m = memory_manifest()
    del m["points"][1]["safe"]
    msg = _error(make_app, m)
    assert "points.1" in msg and "safe value" in msg


def test_duplicate_point_name(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["points"][1]["name"] = "X"
    msg = _error(make_app, m)
    assert "points.1.name" in msg and "duplicate name 'X'" in msg


def test_task_names_undeclared_program(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["tasks"][0]["programs"] = ["main", "ghost"]
    msg = _error(make_app, m)
    assert "tasks.0.programs.1" in msg and "'ghost'" in msg


def test_program_module_missing(make_app: MakeApp) -> None:
    m = memory_manifest(programs=[{"name": "main", "entry": "nologic:Main"}])
    msg = _error(make_app, m)
    assert "programs.0.entry" in msg and "module 'nologic' not found" in msg


def test_program_class_missing(make_app: MakeApp) -> None:
    m = memory_manifest(programs=[{"name": "main", "entry": "logic:Ghost"}])
    msg = _error(make_app, m)
    assert "programs.0.entry" in msg and "no class 'Ghost'" in msg


def test_program_uses_undeclared_point(make_app: MakeApp) -> None:
    msg = _error(make_app, memory_manifest(), COPY_LOGIC.replace('"Y"', '"Z"'))
    assert "programs.0 (main)" in msg and "point 'Z'" in msg


def test_unknown_driver_type(make_app: MakeApp) -> None:
    m = memory_manifest(drivers={"mem": {"type": "profibus", "options": {}}})
    msg = _error(make_app, m)
    assert "drivers.mem" in msg and "unknown driver type 'profibus'" in msg


def test_parameter_default_out_of_range(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["parameters"][0]["default"] = 11
    msg = _error(make_app, m)
    assert "parameters.0" in msg and "above max" in msg


def test_yaml_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("name: x\ntasks: [\n")
    with pytest.raises(ManifestError) as info:
        load_app(tmp_path)
    assert "YAML syntax error" in str(info.value) and "line" in str(info.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="file not found"):
        load_app(tmp_path)
