"""node and npm for the interoperability tests (Tahu's Sparkplug codec, node-opcua,
modbus-serial): installed from Debian when missing, pinned npm projects installed with npm ci."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests._apt import apt_install


def node_and_npm(needed_by: str) -> tuple[str, str]:
    """The paths of node and npm (apt-installed first on a fresh machine); fails, never skips."""
    node, npm = shutil.which("node"), shutil.which("npm")
    output = ""
    if not (node and npm):
        output = apt_install("nodejs", "npm")
        node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        raise RuntimeError(f"node and npm are needed for {needed_by}:\n{output}")
    return node, npm


def npm_project(folder: Path, package: str, needed_by: str) -> str:
    """node, with ``folder``'s pinned packages (npm ci from its package-lock.json) installed
    when ``package`` is missing from its node_modules. Returns the path of node."""
    node, npm = node_and_npm(needed_by)
    if not (folder / "node_modules" / package).is_dir():
        res = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            raise RuntimeError(f"npm ci in {folder} failed:\n{res.stderr[-2000:]}")
    return node
