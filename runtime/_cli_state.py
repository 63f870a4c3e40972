"""`vplc run` glue for state that survives: retain files (warm/cold start) and online change."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import Any

import structlog

from runtime._engine import ScanEngine
from runtime._loader import LoadedApp

log = structlog.get_logger("vplc.cli")


def add_state_arguments(run: argparse.ArgumentParser) -> None:
    """Retain flags of ``vplc run``."""
    run.add_argument(
        "--retain-file",
        type=Path,
        metavar="FILE",
        help="retain checkpoint file (default $VPLC_STATE_DIR/<app>.retain in real time; "
        "virtual runs keep retain only when this is given)",
    )
    run.add_argument(
        "--cold", action="store_true", help="cold start: initial values, ignore retained ones"
    )
    run.add_argument(
        "--on-bad-retain",
        choices=["refuse", "cold"],
        default="refuse",
        help="a corrupt/foreign retain file: refuse to start (default) or move it aside and "
        "start cold",
    )


def default_retain_path(app: LoadedApp) -> Path:
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / f"{app.name}.retain"


def _declares_retain(app: LoadedApp) -> bool:
    m = app.manifest
    return bool(m.retain.variables) or any(p.retain for p in m.parameters)


def attach_retain(engine: ScanEngine, app: LoadedApp, args: argparse.Namespace) -> Any:
    """Load retained values before RUN and checkpoint while running; None if not wanted.

    Raises ``runtime.state.RetainError`` (invalid input, exit 2) for a file that must not
    be loaded; nothing is written before the file was read and judged.
    """
    path = args.retain_file
    if path is None:
        if args.virtual or not _declares_retain(app):
            return None
        path = default_retain_path(app)
    from runtime.state import RetainStore

    path.parent.mkdir(parents=True, exist_ok=True)
    store = RetainStore(path, app)
    store.load(mode="cold" if args.cold else "warm", on_bad=args.on_bad_retain)  # logs itself
    store.attach(engine)
    return store


def install_online_change(engine: ScanEngine, app_dir: Path) -> None:
    """SIGHUP loads the app folder again as an online change, prepared off the scan thread."""
    import signal

    from runtime.state import OnlineChangeError, change_online

    def worker() -> None:
        try:
            report = change_online(engine, app_dir)
            report.wait(30.0)
            log.info("online_change", **report.as_dict())
        except OnlineChangeError as exc:
            log.warning("online_change_refused", reason=str(exc))
        except Exception as exc:  # an operator's request must never take the runtime down
            log.error("online_change_failed", error=repr(exc))

    def on_hup(signum: int, frame: object) -> None:
        threading.Thread(target=worker, name="online-change", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
