"""The server process dies: the scan runs on, the supervisor restarts it, clients reconnect."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.opcua.conftest import node, ns, start_run, stop_run, ua_client

Cert = tuple[Path, Path]


def _server_pid(vplc_pid: int) -> int:
    kids = subprocess.run(["pgrep", "-P", str(vplc_pid)], capture_output=True, text=True)
    for pid in kids.stdout.split():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            return int(pid)
    raise AssertionError(f"no server process under {vplc_pid}: {kids.stdout!r}")


def test_killed_server_process_is_restarted(tmp_path: Path, client_cert: Cert) -> None:
    run = start_run(tmp_path, duration=90, trust=(client_cert[0],))
    try:

        async def cycles() -> int:
            async with ua_client(run, client_cert, "vera") as client:
                return int(
                    await node(client, await ns(client), "Tasks.control.Cycles").read_value()
                )

        before = asyncio.run(cycles())
        first = _server_pid(run.proc.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        after = None
        while time.monotonic() < deadline and after is None:
            time.sleep(0.5)
            try:
                after = asyncio.run(cycles())
            except (OSError, TimeoutError):
                continue
        assert after is not None, "no server after 20 s"
        assert _server_pid(run.proc.pid) != first
        assert run.proc.poll() is None  # the scan process never stopped
    finally:
        log = stop_run(run)
    assert after > before  # counted on through the restart
    assert "opcua_child_died" in log and "opcua_child_restarted" in log
    assert run.proc.returncode == 0, log
