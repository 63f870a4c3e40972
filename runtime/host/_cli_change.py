"""`vplc change plan`: the state merge of a version change, shown before the switch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_REFUSED = 0, 2


def add_change_commands(sub: Any) -> None:
    """Register ``vplc change plan``."""
    change = sub.add_parser("change", help="version changes: the state merge before the switch")
    inner = change.add_subparsers(dest="change_command", required=True, metavar="SUBCOMMAND")
    plan = inner.add_parser(
        "plan",
        help="what a new version would do with saved state: kept / new value / conflict / "
        "added / dropped / refused per variable (exit 2: the change would be refused)",
        description="Merge saved state (a retain file, default $VPLC_STATE_DIR/<app>.retain, "
        "as a warm start or a running instance's last checkpoint; or a snapshot) into the "
        "app at APP_DIR and print the plan. Nothing is changed.",
    )
    plan.add_argument("app", metavar="APP_DIR", help="the new version's app folder")
    against = plan.add_mutually_exclusive_group()
    against.add_argument("--against", type=Path, metavar="RETAIN_FILE", help="a retain file")
    against.add_argument(
        "--against-snapshot",
        type=Path,
        metavar="SNAPSHOT.json",
        help="a snapshot (runtime.state.take_snapshot, a blue-green release)",
    )
    plan.add_argument("--prefer", choices=["new", "running"], help="how conflicts are decided")
    plan.add_argument(
        "--strict", action="store_true", help="an unresolved conflict refuses the change"
    )
    plan.add_argument("--changes-only", action="store_true", help="omit unchanged variables")
    plan.add_argument("--json", action="store_true", help="the plan as one JSON document")
    plan.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    from runtime.host._apps import open_app, resolve_app_dir
    from runtime.host._cli_state import default_retain_path

    app = open_app(resolve_app_dir(args.app))
    if args.against_snapshot is not None:
        plan, source = _from_snapshot(app, args)
    else:
        path = args.against or default_retain_path(app)
        plan, source = _from_retain(app, path, args)
    if args.json:
        doc = {
            "source": source,
            "target": {"app": app.name, "version": app.version, "dir": str(app.app_dir)},
            "ok": plan.ok,
            "problems": plan.problems(),
            "decisions": [d.as_dict() for d in plan.decisions],
            "counts": plan.counts(),
        }
        print(json.dumps(doc, indent=1, default=repr))
    else:
        print(
            f"plan: {source['app']} {source['version']} ({source['kind']} {source['path']}) → "
            f"{app.name} {app.version} ({app.app_dir})"
        )
        for line in plan.lines(all_kept=not args.changes_only):
            print("  " + line)
        counts = {k: v for k, v in plan.counts().items() if v}
        print("summary: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
        for note in source.get("notes", []):
            print(f"note: {note}")
    if not plan.ok:
        print(
            f"vplc: change refused: {len(plan.problems())} variable(s) cannot go over: "
            + "; ".join(plan.problems()),
            file=sys.stderr,
        )
        return EXIT_REFUSED
    return EXIT_OK


def _from_retain(app: Any, path: Path, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from runtime.state import RetainError
    from runtime.state._file import latest
    from runtime.state._warm import WarmStartError, plan_warm_start
    from runtime.state.retain import retained_leaves

    chosen, _ = latest(path, app=app.name)
    if chosen is None:
        raise _usage(
            f"{path}: no retain file (nothing to plan against); give --against RETAIN_FILE or "
            "--against-snapshot SNAPSHOT.json"
        )
    if chosen.doc is None:
        raise _usage(f"retain file {chosen.path} cannot be used: {chosen.problem}")
    try:
        warm = plan_warm_start(
            app, retained_leaves(app), chosen.doc, prefer=args.prefer, strict=args.strict
        )
    except (RetainError, WarmStartError) as exc:
        raise _usage(f"{chosen.path}: {exc}") from None
    doc = chosen.doc
    notes = []
    if warm.legacy_initials:
        notes.append("the file records no initial values (older vplc): saved values are kept")
    source = {
        "kind": "retain file",
        "path": str(chosen.path),
        "app": doc["app"],
        "version": doc["app_version"],
        "seq": doc["seq"],
        "saved_at": doc.get("saved_at"),
        "notes": notes,
    }
    return warm.plan, source


def _from_snapshot(app: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from runtime.state.snapshot import SnapshotError, plan_snapshot

    path: Path = args.against_snapshot
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _usage(f"{path}: cannot read a snapshot: {exc}") from None
    if isinstance(snap, dict) and "snapshot" in snap:  # a blue-green release answer
        snap = snap["snapshot"]
    if not isinstance(snap, dict) or snap.get("format") != "vplc-snapshot":
        raise _usage(f"{path}: not a vplc snapshot (no 'format: vplc-snapshot')")
    if snap.get("app") != app.name:
        raise _usage(f"{path}: snapshot of app {snap.get('app')!r}, not {app.name!r}")
    try:
        plan = plan_snapshot(app, snap, prefer=args.prefer, strict=args.strict)
    except (SnapshotError, KeyError, TypeError) as exc:
        raise _usage(f"{path}: {exc}") from None
    source = {"kind": "snapshot", "path": str(path), "app": snap["app"], "version": snap["version"]}
    return plan, source


def _usage(message: str) -> Exception:
    """Invalid input of the command (exit 2), as ``vplc`` reports it."""
    from runtime.host._apps import UsageError

    return UsageError(message)
