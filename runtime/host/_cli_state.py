"""`vplc run` glue for state that survives: retain files (warm/cold start) and online change."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import Any

import structlog

from runtime.core._engine import ScanEngine
from runtime.core._loader import LoadedApp
from runtime.ops._audit import AuditLog

log = structlog.get_logger("vplc.cli")


def add_state_arguments(run: argparse.ArgumentParser) -> None:
    """Retain and version-change flags of ``vplc run``."""
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
    run.add_argument(
        "--prefer",
        choices=["new", "running"],
        help="version changes (warm start on another version, online change on SIGHUP): a "
        "variable changed both at run time and by the new version's initial value keeps the "
        "running value (default, reported as an unresolved conflict), or takes one side",
    )
    run.add_argument(
        "--strict-change",
        action="store_true",
        help="refuse a warm start or online change whose state merge leaves a conflict "
        "unresolved (without --prefer)",
    )
    run.add_argument(
        "--retain-max-mb",
        type=_megabytes,
        metavar="MB",
        help="largest retain file loaded or written (default: 1 MiB + 64 KiB per retained "
        "value); a larger file is refused before it is read",
    )


def _megabytes(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MiB, got {text!r}") from None
    if not 0.001 <= value <= 65536:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected 0.001..65536 MiB, got {text!r}")
    return round(value * (1 << 20))


def default_retain_path(app: LoadedApp) -> Path:
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / f"{app.name}.retain"


def _declares_retain(app: LoadedApp) -> bool:
    m = app.manifest
    return bool(m.retain.variables) or any(p.retain for p in m.parameters)


def load_retain(app: LoadedApp, args: argparse.Namespace) -> Any:
    """The retain store with the retained values loaded before RUN; None if not wanted.

    ``Runtime`` attaches it (checkpoints while running).

    Raises ``runtime.state.RetainError`` (invalid input, exit 2) for a file that must not
    be loaded, or one another runtime holds; nothing is written before the file was read
    and judged.
    """
    path = args.retain_file
    if path is None:
        if args.virtual or not _declares_retain(app):
            return None
        path = default_retain_path(app)
    from runtime.state import RetainStore, claim_retain_file

    prepare_retain_path(path)
    claim_retain_file(path)  # held until this process ends: one runtime per retain file
    store = RetainStore(path, app, max_bytes=args.retain_max_mb)
    store.load(  # logs itself, with the merge plan
        mode="cold" if args.cold else "warm",
        on_bad=args.on_bad_retain,
        prefer=args.prefer,
        strict=args.strict_change,
    )
    return store


def audit_trail(bridge: Any) -> AuditLog | None:
    """The runtime's audit trail: the MQTT bridge's audit file, if one is configured.

    The in-process bridge holds an ``AuditLog``, the out-of-process one the file's path (its
    child writes commands there); AuditLog locks the file, so both writers keep one chain.
    """
    if bridge is None:
        return None
    held = getattr(bridge, "audit", None)
    if isinstance(held, AuditLog):
        return held
    path = getattr(bridge, "audit_file", None)
    return AuditLog(path) if path is not None else None


def audit_warm_start(audit: AuditLog | None, store: Any) -> None:
    """Record a warm start's merge plan in the audit trail (it restored plant state)."""
    report = getattr(store, "last_load", None)
    if audit is None or report is None or report.started != "warm":
        return
    audit.append(
        "warm_start",
        app=store.app.name,
        version=store.app.version,
        saved_version=report.saved_version,
        retain_seq=report.seq,  # not "seq": that key is the audit chain's own
        retain_file=report.source,
        notes=report.notes,
        plan=report.plan,
    )


def prepare_retain_path(path: Path) -> None:
    """Create the retain folder if needed and prove a checkpoint can be written there.

    Raises RetainError (exit 2) naming the path: a file where the folder should be, a folder
    that cannot be created or written, a FIFO/device at the temporary file's name. Run before
    the retain file is judged, so a refusal leaves every file as it was.
    """
    from runtime.state import RetainError
    from runtime.state._file import PathError, check_writable

    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RetainError(
            f"retain path {path}: {folder} exists and is not a folder; give another "
            "--retain-file or VPLC_STATE_DIR"
        ) from None
    except OSError as exc:
        raise RetainError(
            f"retain path {path}: cannot create the folder {exc.filename or folder}: "
            f"{exc.strerror or exc}; give another --retain-file or VPLC_STATE_DIR"
        ) from None
    try:
        check_writable(path)
    except PathError as exc:
        raise RetainError(
            f"retain path {path}: {exc}; checkpoints could not be saved, so nothing was "
            "started. Give another --retain-file or VPLC_STATE_DIR, or fix the folder's rights"
        ) from None


def retain_summary(stats: dict[str, Any]) -> str:
    """The summary line of a run with retain: where, how many checkpoints, and any failure."""
    line = (
        f"retain: {stats['path']}: {stats['written']} checkpoint(s) written, on disk seq "
        f"{stats['on_disk_seq']}"
    )
    if stats["errors"]:
        state = "still failing" if stats["failing"] else "recovered"
        line += (
            f"; {stats['errors']} checkpoint write(s) FAILED ({state}; last: "
            f"{stats['last_error']}): retained progress was not saved"
        )
    return line


def install_online_change(
    engine: ScanEngine,
    app_dir: Path,
    *,
    prefer: Any = None,
    strict: bool = False,
    audit: AuditLog | None = None,
) -> None:
    """SIGHUP loads the app folder again as an online change, prepared off the scan thread.

    The outcome (committed, fell back or refused) and its merge plan are logged and, when the
    runtime has an audit trail, appended to it; without one the log is the only record.
    """
    import signal

    from runtime.state import OnlineChangeError, change_online
    from runtime.state._merge import brief

    def record(report: Any) -> None:
        log.info("online_change", **(report.as_dict() | {"plan": brief(report.plan)}))
        if audit is None:
            return
        try:
            audit.append(
                "online_change",
                app=report.app,
                old_version=report.old_version,
                new_version=report.new_version,
                status=report.status,
                reason=report.reason,
                source="SIGHUP",
                plan=report.plan,
            )
        except Exception as exc:  # the change happened (or not): say so, shout about the log
            log.error("audit_write_failed", error=repr(exc), event="online_change")

    def worker() -> None:
        try:
            report = change_online(engine, app_dir, prefer=prefer, strict=strict)
            report.wait(30.0)
            record(report)
        except OnlineChangeError as exc:
            log.warning("online_change_refused", reason=str(exc))
            record(exc.report)
        except Exception as exc:  # an operator's request must never take the runtime down
            log.error("online_change_failed", error=repr(exc))

    def on_hup(signum: int, frame: object) -> None:
        threading.Thread(target=worker, name="online-change", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
