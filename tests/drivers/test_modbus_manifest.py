"""A broken `modbus` binding in app.yaml is invalid input: `vplc validate` exits 2 naming the
YAML path (the driver's options, or the point's channel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COPY_LOGIC, memory_manifest, write_app

VPLC = str(Path(sys.executable).with_name("vplc"))


def manifest(options: dict[str, Any], x_channel: str = "x") -> dict[str, Any]:
    m = memory_manifest()
    m["drivers"] = {"plc": {"type": "modbus", "options": {"host": "127.0.0.1", **options}}}
    for p in m["points"]:
        p["driver"] = "plc"
    m["points"][0]["channel"] = x_channel
    return m


GOOD = {"x": "input:0:float32", "y": "holding:0:float32"}


@pytest.mark.parametrize(
    ("options", "x_channel", "expected"),
    [
        ({"channels": GOOD | {"x": "input:0:float128"}}, "x",
         "at drivers.plc.options.channels.x.type"),
        ({"channels": GOOD | {"x": "coil:0:float32"}}, "x",
         "at drivers.plc.options.channels.x: a coil holds bool, not float32"),
        ({"channels": GOOD | {"x": "input:65535:float64"}}, "x",
         "at drivers.plc.options.channels.x: float64 at 65535 needs 4 registers"),
        ({"channels": GOOD | {"x": "input:-1"}}, "x", "at drivers.plc.options.channels.x"),
        ({"channels": GOOD, "poll_ms": 0}, "x", "at drivers.plc.options.poll_ms"),
        ({"channels": GOOD, "colour": 1}, "x", "at drivers.plc.options.colour: unknown key"),
        ({"channels": GOOD | {"x": {"table": "input", "address": 0, "group": "fast"}}}, "x",
         "at drivers.plc.options.channels.x.group: no poll group 'fast'"),
        ({"channels": GOOD}, "nope", "at points.0.channel (X): driver 'plc' has no channel 'nope'"),
        ({"channels": GOOD | {"y": "input:2:float32"}}, "x",
         "at points.1.channel (Y): point direction is 'out' but channel 'y'"),
    ],
)  # fmt: skip
def test_validate_exits_2_naming_the_path(
    tmp_path: Path, options: dict[str, Any], x_channel: str, expected: str
) -> None:
    app = write_app(tmp_path / "app", manifest(options, x_channel), COPY_LOGIC)
    out = subprocess.run([VPLC, "validate", str(app)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert expected in out.stderr, out.stderr
    assert "app.yaml" in out.stderr


def test_a_valid_binding_validates(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", manifest({"channels": GOOD}), COPY_LOGIC)
    out = subprocess.run([VPLC, "validate", str(app)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
