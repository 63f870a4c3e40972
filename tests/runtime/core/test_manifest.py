"""Bad manifests are refused before RUN, naming the file, the YAML path and what was expected."""

from __future__ import annotations

import copy
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


@pytest.mark.parametrize("period", [0, -5, 1e-9, 0.049, 3_600_001, 1e300])
def test_period_has_a_sane_minimum_and_maximum(make_app: MakeApp, period: float) -> None:
    m = memory_manifest()
    m["tasks"][0]["period_ms"] = period
    msg = _error(make_app, m)
    assert "at tasks.0.period_ms: a task period must be 0.05 ms (50 µs) to 3600000 ms" in msg


@pytest.mark.parametrize("period", [0.05, 3_600_000])
def test_period_limits_are_inclusive(make_app: MakeApp, period: float) -> None:
    m = memory_manifest()
    m["tasks"][0]["period_ms"] = period
    assert load_app(make_app(m)).manifest.tasks[0].period_ms == period


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


def _point(m: dict[str, Any], i: int, **fields: Any) -> dict[str, Any]:
    m["points"][i].update(fields)
    return m


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"safe": 1e30, "range": [0, 100]}, "'safe' 1e+30 is outside the range [0.0, 100.0]"),
        ({"safe": -1, "range": [0, 100]}, "'safe' -1.0 is outside the range"),
        ({"type": "INT", "safe": 40000}, "40000 is outside the INT range -32768..32767"),
        ({"type": "REAL", "safe": 1e39}, "is outside the REAL range"),
        ({"type": "INT", "safe": 0.5}, "expected INT integer"),
        ({"type": "BOOL", "safe": 0.7}, "expected BOOL"),
        ({"type": "BOOL", "safe": False, "range": [0, 1]}, "range needs a numeric type"),
        ({"type": "INT", "range": [0, 1e9]}, "exceeds what INT holds"),
        ({"range": [5, 1]}, "range low 5.0 is above high 1.0"),
        ({"scaling": {"raw": [0, 10], "eng": [3, 3]}}, "eng low and high must differ"),
        ({"scaling": {"raw": [4, 4], "eng": [0, 1]}}, "raw low and high must differ"),
        ({"on_invalid": "explode"}, "at points.1.on_invalid"),
    ],
)
def test_output_values_and_limits(make_app: MakeApp, fields: dict[str, Any], expected: str) -> None:
    msg = _error(make_app, _point(memory_manifest(), 1, **fields))
    assert "points.1" in msg and expected in msg


def test_on_invalid_is_for_outputs_only(make_app: MakeApp) -> None:
    msg = _error(make_app, _point(memory_manifest(), 0, on_invalid="hold"))
    assert "at points.0: 'on_invalid' applies to outputs only" in msg


def test_initial_must_be_inside_the_range(make_app: MakeApp) -> None:
    msg = _error(make_app, _point(memory_manifest(), 0, range=[0, 10], initial=11))
    assert "at points.0: 'initial' 11.0 is outside the range [0.0, 10.0]" in msg


def test_parameter_default_beyond_its_type_is_refused_not_clamped(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["parameters"][0].update(type="INT", default=70000, min=None, max=None)
    msg = _error(make_app, m)
    assert "parameters.0" in msg and "outside the INT range" in msg


def test_operator_value_must_be_finite(make_app: MakeApp) -> None:
    spec = load_app(make_app()).manifest.parameter("gain")
    for bad in (float("nan"), float("inf"), 10**400):
        with pytest.raises(ValueError, match="parameter 'gain'"):
            spec.check(bad)
    assert spec.check(3) == 3.0


def test_watchdog_and_retain_interval_have_limits(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["tasks"][0]["watchdog_ms"] = 1e-6
    assert "at tasks.0.watchdog_ms: a watchdog time must be 0.05 ms" in _error(make_app, m)
    m = memory_manifest(retain={"interval_s": 1e-3})  # below 10 ms
    assert "at retain.interval_s" in _error(make_app, m)


def test_driver_option_error_is_one_line_at_its_key(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["drivers"]["mem"]["options"]["chanels"] = {}
    msg = _error(make_app, m)
    assert "at drivers.mem.options.chanels: unknown key (not part of the schema)" in msg
    assert "\n" not in msg and "pydantic" not in msg
    m["drivers"]["mem"]["options"] = {"channels": {"x": "sideways"}}
    msg = _error(make_app, m)
    assert "at drivers.mem.options.channels.x: Input should be 'in', 'out' or 'inout'" in msg


def test_unknown_driver_type_is_at_its_type_key(make_app: MakeApp) -> None:
    m = memory_manifest(drivers={"mem": {"type": "profibus", "options": {}}})
    assert "at drivers.mem.type: unknown driver type 'profibus'" in _error(make_app, m)


def test_each_driver_declares_its_options_model() -> None:
    from hal import MemoryDriver, get_driver_factory

    for kind in ("memory", "sim", "mqtt"):
        options = getattr(get_driver_factory(kind), "Options", None)
        assert options is not None and options.model_config.get("extra") == "forbid", kind
    assert MemoryDriver.Options.model_config.get("allow_inf_nan") is False


SIM_MANIFEST = {
    "drivers": {"sim": {"type": "sim", "options": {"plant": "bioreactor"}}},
    "points": [
        {
            "name": "X",
            "type": "LREAL",
            "direction": "in",
            "driver": "sim",
            "channel": "temperature",
        },
        {
            "name": "Y",
            "type": "REAL",
            "direction": "out",
            "driver": "sim",
            "channel": "heating_valve",
            "safe": 0.0,
        },
    ],
}


def test_sim_options_and_plant_parameters_are_checked_at_their_path(make_app: MakeApp) -> None:
    m = memory_manifest(**copy.deepcopy(SIM_MANIFEST))
    m["drivers"]["sim"]["options"]["nosie"] = True
    assert "at drivers.sim.options.nosie: unknown key" in _error(make_app, m)
    m = memory_manifest(**copy.deepcopy(SIM_MANIFEST))
    m["drivers"]["sim"]["options"]["params"] = {"tme_scale": 2}
    msg = _error(make_app, m)
    assert "at drivers.sim.options.params.tme_scale: bioreactor has no such parameter" in msg
    m = memory_manifest(**copy.deepcopy(SIM_MANIFEST))
    m["drivers"]["sim"]["options"]["max_step_s"] = 1e-9
    assert "at drivers.sim.options.max_step_s" in _error(make_app, m)


def test_safe_value_outside_the_channel_range_is_refused(make_app: MakeApp) -> None:
    m = memory_manifest(**copy.deepcopy(SIM_MANIFEST))
    m["points"][1]["safe"] = 1e30
    msg = _error(make_app, m)
    assert "at points.1.safe (Y): 1e+30 is outside the range 0..100 of channel" in msg
