"""Fuzz the front-ends' config files and the container deployment file.

web.yaml (``--web-config``, with ``--web``), the Modbus server's register map (``--modbus``),
mqtt.yaml with its ``sparkplug:`` section (``--mqtt``), and a deployment file's ``serve:`` and
``ports:`` (``vplc deploy``). Each is read only on a path that cannot run in-process (a
real-time run; a deploy asks Docker next), so each example calls the command's own loading
step, the one ``vplc run`` / ``vplc deploy`` call before anything starts, and the outcome is
what the command would print (UsageError / InvalidInputError: exit 2).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import textwrap
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import COPY_LOGIC, memory_manifest
from tests.fuzz._harness import Case, assert_clean, check, run_call
from tests.fuzz._mutate import Example, mutated_file, non_finite
from tests.fuzz.conftest import PROFILE


@cache
def _place() -> Path:
    """An app (for the Modbus map and the overview's points) and the files configs name."""
    root = Path(tempfile.mkdtemp(prefix="vplc-fuzz-configs-"))
    app = root / "app"
    app.mkdir()
    doc = memory_manifest()
    doc["points"][1]["range"] = [-100.0, 100.0]
    doc["points"].append(
        {"name": "N", "type": "DINT", "direction": "in", "driver": "mem", "channel": "x"}
    )
    doc["points"].append(
        {"name": "B", "type": "BOOL", "direction": "in", "driver": "mem", "channel": "x"}
    )
    (app / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (app / "logic.py").write_text(textwrap.dedent(COPY_LOGIC))
    (root / "access.yaml").write_text("users: {}\n")
    (root / "t.csv").write_text("t,X,Y\n0.0,1.0,2.0\n")
    (root / "config").mkdir()
    for name in ("web.yaml", "opcua.yaml", "modbus.yaml", "mqtt.yaml"):
        (root / "config" / name).write_text("{}\n")
    return root


@cache
def _app() -> Any:
    from runtime import load_app

    return load_app(_place() / "app")


@cache
def _engine() -> Any:
    from runtime import ScanEngine, VirtualClock

    return ScanEngine(_app(), clock=VirtualClock())


def _example(
    kind: str,
    ex: Example,
    name: str,
    load: Callable[[Path], str],
    refusals: dict[Any, int],
    names: tuple[str, ...] = (),
) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"vplc-fuzz-{kind}-", dir=_place()))
    path = folder / name
    path.write_bytes(ex.data)
    case = Case(kind, [str(path)], ex.notes, (str(path), *names), violation=non_finite(ex))
    check(case, run_call(lambda: load(path), 20.0, refusals))
    shutil.rmtree(folder, ignore_errors=True)


def _usage() -> dict[Any, int]:
    from runtime.host._apps import UsageError

    return {UsageError: 2}


# ------------------------------------------------------------------------------ web.yaml
WEB: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "access_file": "../access.yaml",
    "audit_file": "audit.jsonl",
    "session_idle_s": 900.0,
    "session_max": 200,
    "login_failures": 5,
    "login_lockout_s": 60.0,
    "sample_ms": 100.0,
    "stats_s": 1.0,
    "command_timeout_s": 2.0,
    "trend_s": 3600.0,
    "trend_period_s": 1.0,
    "trend_max_mb": 64.0,
    "trace_files": ["../t.csv"],
    "max_clients": 50,
    "overview": {"Vessel": ["X", "Y"], "Other": ["N"]},
}
LISTEN = [None, None, None, ":0", "0", "127.0.0.1:0", "[::1]:0", ":99999", "x", "", ":", "a:b:c"]


def _load_web(path: Path, listen: str | None) -> str:
    """What ``vplc run --web-config FILE [--web L]`` does before the runtime is built, then
    the HMI's own checks before it starts (runtime.web.attach_web's first step)."""
    from runtime.host.cli import _load_web_config
    from runtime.web import _check

    config = _load_web_config(argparse.Namespace(web=listen, web_config=path))
    try:
        _check(_engine(), config)
    except (OSError, ValueError) as exc:  # as Runtime reports it (AssemblyError "web")
        from runtime.host._apps import UsageError

        raise UsageError(f"--web-config {path}: cannot start the web HMI: {exc}") from None
    return f"web config OK: {config.url}"


@settings(settings.get_profile(PROFILE))
@given(mutated_file(WEB), st.sampled_from(LISTEN))
def _fuzz_web(example: Example, listen: str | None) -> None:
    example.notes += f" (--web {listen})" if listen is not None else ""
    flag = () if listen is None else (f"--web {listen}",)
    _example("web", example, "web.yaml", lambda p: _load_web(p, listen), _usage(), flag)


def test_web_config_mutations() -> None:
    _fuzz_web()
    assert_clean("web")


# ------------------------------------------------------------------------ Modbus map
MODBUS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "unit": 1,
    "max_connections": 16,
    "idle_timeout_s": 60.0,
    "command_timeout_s": 2.0,
    "sample_ms": 20.0,
    "stats_s": 5.0,
    "writes": {"enabled": True, "allow": ["127.0.0.1", "10.0.0.0/8"], "audit_file": "a.jsonl"},
    "map": [
        {"point": "X", "table": "input", "address": 0, "type": "float32"},
        {"point": "Y", "table": "input", "address": 2, "type": "int32", "scale": 10.0},
        {"point": "N", "table": "input", "address": 4, "type": "int32"},
        {"point": "B", "table": "discrete_input", "address": 0},
        {"parameter": "gain", "table": "holding", "address": 0, "type": "float64"},
    ],
}


def _load_modbus(path: Path) -> str:
    from runtime.host.cli import _load_modbus_config

    config = _load_modbus_config(path, _app())
    return f"modbus config OK: {len(config.map)} entries"


@settings(settings.get_profile(PROFILE))
@given(mutated_file(MODBUS))
def _fuzz_modbus(example: Example) -> None:
    _example("modbus", example, "modbus.yaml", _load_modbus, _usage())


def test_modbus_map_mutations() -> None:
    _fuzz_modbus()
    assert_clean("modbus")


# ------------------------------------------------------------- mqtt.yaml with sparkplug:
SPARKPLUG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 1883,
    "username": "edge7",
    "password_env": "VPLC_FUZZ_NO_SUCH_ENV",
    "allow_insecure": True,
    "sample_ms": 10,
    "publish_ms": 100,
    "deadband_percent": 0.1,
    "deadband": {"X": 0.5},
    "access_file": "../access.yaml",
    "audit_file": "audit.jsonl",
    "sparkplug": {
        "group_id": "plant1",
        "edge_node_id": "edge7",
        "device_id": "dev",
        "primary_host_id": "scada1",
        "command_user": "scada",
        "bdseq_file": "bdseq",
    },
}


def _load_sparkplug(path: Path) -> str:
    from runtime.host.cli import _load_mqtt_config

    config = _load_mqtt_config(path)
    return f"mqtt config OK: sparkplug {config.sparkplug is not None}"


@settings(settings.get_profile(PROFILE))
@given(mutated_file(SPARKPLUG))
def _fuzz_sparkplug(example: Example) -> None:
    _example("sparkplug", example, "mqtt.yaml", _load_sparkplug, _usage())


def test_sparkplug_config_mutations() -> None:
    _fuzz_sparkplug()
    assert_clean("sparkplug")


# ----------------------------------------------------------- deployment serve: / ports:
DEPLOY: dict[str, Any] = {
    "name": "fuzz-app",
    "image": "vplc-testapp:1.0.0",
    "resources": {"memory": "256m", "cpus": 1.0, "cpuset": "0-1"},
    "restart": "unless-stopped",
    "environment": {"TZ": "UTC"},
    "network_mode": "bridge",
    "health_timeout_s": 60.0,
    "probation_s": 10.0,
    "keep_releases": 5,
    "target": "container",
    "strategy": "recreate",
    "config_dir": "../config",
    "serve": {"web": "web.yaml", "opcua": "opcua.yaml", "modbus": "modbus.yaml"},
    "ports": {8080: 18080, 4840: 14840, 5020: 15020},
}


def _load_deployment(path: Path) -> str:
    """What ``vplc deploy FILE`` checks of the file before it asks the Docker engine."""
    from containers._spec import load_deployment

    spec = load_deployment(path).relative_to(path.parent, source=path)
    return f"deployment OK: {spec.name}: serve {spec.serve.files()}, ports {spec.ports}"


@settings(settings.get_profile(PROFILE))
@given(mutated_file(DEPLOY))
def _fuzz_deploy(example: Example) -> None:
    from containers._errors import InvalidInputError

    _example("deploy", example, "deployment.yaml", _load_deployment, {InvalidInputError: 2})


def test_deployment_file_mutations() -> None:
    _fuzz_deploy()
    assert_clean("deploy")
