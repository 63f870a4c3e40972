"""Container health check: ``python -m containers.health FILE`` exits 0 while the scan runs.

Reads the heartbeat JSON that ``vplc run --heartbeat FILE`` rewrites every second and is
healthy only when the file was written by this container (host name), recently (``--max-age``),
by a live engine in RUN that has completed cycles. Standard library only: it runs every few
seconds next to the scan, so it must start fast and allocate little.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["check", "main"]


def check(beat: dict[str, Any], *, max_age_s: float, now: float, host: str) -> str | None:
    """Return why the heartbeat is unhealthy, or None when it proves a running scan."""
    if beat.get("host") != host:
        return f"heartbeat is from host {beat.get('host')!r}, not this container ({host!r})"
    age = now - float(beat.get("written_at", 0.0))
    if age > max_age_s:
        return f"heartbeat is {age:.1f} s old (limit {max_age_s:g} s): the scan is not running"
    if beat.get("stopped"):
        return "the engine has stopped"
    if beat.get("state") != "RUN":
        return f"engine state {beat.get('state')}: {beat.get('fault_reason', '')}".rstrip(": ")
    if not sum(beat.get("cycles", {}).values()):
        return "no cycle completed yet"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vplc-health", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-age", type=float, default=5.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    try:
        beat = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"unhealthy: cannot read heartbeat {args.file}: {exc}")
        return 1
    problem = check(beat, max_age_s=args.max_age, now=time.time(), host=socket.gethostname())
    if problem:
        print(f"unhealthy: {problem}")
        return 1
    print(f"healthy: {beat['state']}, cycles {beat['cycles']}, app time {beat['app_time_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
