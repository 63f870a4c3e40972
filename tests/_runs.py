"""`vplc run` as a real-time subprocess for the server tests (web HMI, OPC UA): start it with
its state under a test folder, wait until its server listens, stop it and read its log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VPLC = str(Path(sys.executable).with_name("vplc"))


@dataclass
class VplcRun:
    """A `vplc run` subprocess serving on ``port``, with where it keeps its files."""

    proc: subprocess.Popen[str]
    port: int
    folder: Path
    log: Path

    def audit(self) -> list[dict[str, Any]]:
        path = self.folder / "audit.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]


def server_config(port: int, more: dict[str, Any]) -> dict[str, Any]:
    """A front-end server's config file as the tests write it (access.yaml, audit.jsonl and
    50 ms sampling in the run's folder), ``more`` added or overriding."""
    base = {"host": "127.0.0.1", "port": port, "access_file": "access.yaml"}
    return base | {"audit_file": "audit.jsonl", "sample_ms": 50} | more


def spawn(folder: Path, args: list[str]) -> tuple[subprocess.Popen[str], Path]:
    """`vplc run *args` with its state dir under ``folder`` and its output in folder/run.log."""
    log = folder / "run.log"
    env = {**os.environ, "VPLC_STATE_DIR": str(folder / "state")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [VPLC, "run", *args], stdout=out, stderr=subprocess.STDOUT, text=True, env=env
        )
    return proc, log


def wait_listening(run: VplcRun, what: str, timeout: float = 60) -> None:
    """Until the run accepts TCP on its port; its log in the error if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise RuntimeError(f"vplc run exited {run.proc.returncode}:\n{run.log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", run.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no {what} on port {run.port}:\n{run.log.read_text()}")


def stop_run(run: VplcRun) -> str:
    """SIGTERM (SIGKILL after 30 s); returns the run's log."""
    run.proc.terminate()
    try:
        run.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.wait()
    return run.log.read_text()
