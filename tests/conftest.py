"""Shared fixtures: throwaway apps (manifest + logic) in a temporary folder, and the token
users of the front-ends' access files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

MakeApp = Callable[..., Path]


def write_app(folder: Path, manifest: dict[str, Any], logic: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "logic.py").write_text(textwrap.dedent(logic))
    return folder


def memory_manifest(**overrides: Any) -> dict[str, Any]:
    """A small valid app on the memory driver: one input, one output, one task."""
    manifest: dict[str, Any] = {
        "name": "testapp",
        "version": "1.0.0",
        "drivers": {"mem": {"type": "memory", "options": {"channels": {"x": "in", "y": "out"}}}},
        "programs": [{"name": "main", "entry": "logic:Main"}],
        "tasks": [{"name": "fast", "period_ms": 10, "programs": ["main"]}],
        "points": [
            {"name": "X", "type": "LREAL", "direction": "in", "driver": "mem", "channel": "x"},
            {
                "name": "Y",
                "type": "LREAL",
                "direction": "out",
                "driver": "mem",
                "channel": "y",
                "safe": -1.0,
            },
        ],
        "parameters": [{"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10}],
    }
    manifest.update(overrides)
    return manifest


COPY_LOGIC = """
from runtime import Program

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.y = app.point("Y")
        self.gain = app.param("gain")

    def execute(self, ctx):
        self.count += 1
        self.y.value = self.x.value * self.gain.value
"""


# The front-ends' test users (MQTT, Sparkplug, OPC UA): token logins of an access file.
TOKENS = {"olga": "op-secret", "erik": "eng-secret", "vera": "view-secret"}
ROLES = {"olga": "operator", "erik": "engineer", "vera": "viewer"}


def token_users(names: Iterable[str] = TOKENS) -> dict[str, dict[str, str]]:
    """An access file's ``users:``: each of ``names`` with its role and its token's hash."""
    from runtime.ops._access import hash_token

    return {u: {"role": ROLES[u], "token_sha256": hash_token(TOKENS[u])} for u in names}


def write_access(folder: Path, names: Iterable[str] = TOKENS, **body: Any) -> Path:
    """``folder/access.yaml`` with the token users ``names`` and the further keys ``body``."""
    path = folder / "access.yaml"
    path.write_text(yaml.safe_dump({"users": token_users(names), **body}))
    return path


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """main() points structlog at this test's captured stdout; later tests must not log there.

    A module whose tests call ``runtime.host.cli.main`` in-process takes it for every test:
    ``pytestmark = pytest.mark.usefixtures("logging_restored")``."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    counter = iter(range(1000))

    def _make(manifest: dict[str, Any] | None = None, logic: str = COPY_LOGIC) -> Path:
        return write_app(tmp_path / f"app{next(counter)}", manifest or memory_manifest(), logic)

    return _make
