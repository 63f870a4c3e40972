"""Installing a Debian package a test needs (a real broker, a real foreign stack) when missing."""

from __future__ import annotations

import os
import shutil
import subprocess


def apt_install(*packages: str) -> str:
    """``apt-get install -y`` ``packages``, with ``apt-get update`` first if that fails (a fresh
    machine has no package lists). Returns apt's output; the caller checks what it needs."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [apt, "install", "-y", "--no-install-recommends", *packages]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=900)
    if res.returncode != 0:
        subprocess.run([apt, "update"], capture_output=True, env=env, check=False, timeout=600)
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=900)
    return res.stdout[-2000:] + res.stderr[-2000:]
