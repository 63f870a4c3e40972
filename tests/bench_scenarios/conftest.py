"""A tiny, fast app for bench tests: Y = t * gain + X on the memory driver, and a PHASE."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import memory_manifest

RAMP_LOGIC = """
from runtime import Program
from runtime.blocks import PHASE


class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.y = app.point("Y")
        self.gain = app.param("gain")
        self.phase = PHASE()

    def execute(self, ctx):
        self.count += 1
        self.phase(ctx, AUTO_COMPLETE_ACTING=True)
        self.y.value = ctx.now * self.gain.value + self.x.value
"""


@pytest.fixture
def ramp_app(tmp_path: Path) -> Path:
    folder = tmp_path / "ramp"
    folder.mkdir()
    manifest = memory_manifest(
        tasks=[{"name": "fast", "period_ms": 100, "programs": ["main"]}],
        parameters=[{"name": "gain", "type": "LREAL", "default": 1.0, "min": 0, "max": 10}],
    )
    (folder / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "logic.py").write_text(textwrap.dedent(RAMP_LOGIC))
    (folder / "scenarios").mkdir()
    return folder


def write_scenario(app: Path, name: str, data: dict[str, Any]) -> Path:
    path = app / "scenarios" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
