"""The containers package: its exports resolve, and importing it does not load the docker SDK."""

from __future__ import annotations

import subprocess
import sys

import containers


def test_exports_resolve() -> None:
    for name in containers.__all__:
        assert getattr(containers, name) is not None, name


def test_health_check_and_cli_plugin_do_not_import_docker() -> None:
    code = (
        "import sys, containers, containers.health, containers.cli; print('docker' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
