"""`vplc batch list|record`: the electronic batch records, exported with their integrity verdict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runtime.host._apps import path_arg
from runtime.host._outpaths import OutputPathError, check_output_file
from runtime.host._pdf import PdfUnavailableError
from runtime.ops._audit_key import AuditKeyError, load_verify_key
from runtime.ops._batch_store import (
    RecordCheck,
    UnknownBatchError,
    check_record,
    default_batch_dir,
    list_records,
    load_record,
)

__all__ = ["add_batch_commands"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_batch_commands(sub: Any) -> None:
    """Register ``vplc batch list`` and ``vplc batch record``."""
    batch = sub.add_parser("batch", help="electronic batch records: list, export (JSON/PDF)")
    inner = batch.add_subparsers(dest="batch_command", required=True, metavar="SUBCOMMAND")
    lst = inner.add_parser("list", help="the batch records in a directory")
    _dir(lst)
    lst.add_argument("--json", action="store_true", help="the list as JSON")
    lst.set_defaults(func=_list)
    rec = inner.add_parser(
        "record",
        help="export one batch record with its integrity verdict (exit 1 when not verified)",
    )
    rec.add_argument("batch_id", metavar="ID", help="e.g. BR-20250301-001 (see `vplc batch list`)")
    _dir(rec)
    out = rec.add_mutually_exclusive_group(required=True)
    out.add_argument("--json", type=path_arg, metavar="OUT", help="the record and verdict as JSON")
    out.add_argument(
        "--pdf", type=path_arg, metavar="OUT", help="the record as a PDF for QA review"
    )
    rec.add_argument(
        "--audit", type=path_arg, metavar="TRAIL", help="the audit trail (default: the one named)"
    )
    rec.add_argument(
        "--key",
        type=path_arg,
        metavar="K",
        help="trusted public key of the trail (default $VPLC_AUDIT_KEY or the state dir's)",
    )
    rec.set_defaults(func=_record)


def _dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=path_arg,
        default=None,
        metavar="DIR",
        help="where the records are (default $VPLC_STATE_DIR/batches)",
    )


def _list(args: argparse.Namespace) -> int:
    directory = args.dir or default_batch_dir()
    if args.dir is not None and not directory.is_dir():
        print(f"vplc batch: error: --dir {directory}: no such directory", file=sys.stderr)
        return EXIT_INVALID
    rows = list_records(directory)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{directory}: {len(rows)} batch record(s)")
    print(f"{'batch id':<20}  {'start (UTC)':<19}  {'status':<10}  {'dev':>3}  product")
    for r in rows:
        start = str(r.get("start") or "")[:19].replace("T", " ")
        print(
            f"{r['batch_id']:<20}  {start:<19}  {str(r['status'])[:10]:<10}  "
            f"{r.get('deviations', '-')!s:>3}  {r.get('product', '')}"
        )
    return EXIT_OK


def _record(args: argparse.Namespace) -> int:
    out: Path = args.json or args.pdf
    try:  # before anything is read: a FIFO without a reader or a folder would fail at the end
        check_output_file("--json" if args.json is not None else "--pdf", out)
    except OutputPathError as exc:
        print(f"vplc batch: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    directory = args.dir or default_batch_dir()
    try:
        record = load_record(directory, args.batch_id)
    except UnknownBatchError as exc:
        print(f"vplc batch: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    key = None
    if args.key is not None:
        try:
            key = load_verify_key(args.key)
        except AuditKeyError as exc:
            print(f"vplc batch: error: --key: {exc}", file=sys.stderr)
            return EXIT_INVALID
    if args.audit is not None and not args.audit.is_file():
        print(f"vplc batch: error: --audit {args.audit}: no such file", file=sys.stderr)
        return EXIT_INVALID
    check = check_record(record, trail=args.audit, key=key)
    try:
        if args.json is not None:
            doc = {"verification": {"ok": check.ok, "lines": check.lines}, "record": record}
            out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        else:
            from runtime.host._pdf import batch_pdf  # fpdf2 only when a PDF is asked for

            batch_pdf(record, check.ok, check.lines, out)
    except PdfUnavailableError as exc:
        print(f"vplc batch: error: --pdf: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        # The PDF lays out every section (and is written only at the end, so nothing
        # half-written is left); a record edited out of shape cannot fill them.
        what = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
        print(
            f"vplc batch: error: --pdf: the record {args.batch_id} in {directory} is not in "
            f"the shape of a batch record ({type(exc).__name__}: {what}); {check.summary()}; "
            "--json exports it as it is",
            file=sys.stderr,
        )
        return EXIT_INVALID
    except OSError as exc:
        print(f"vplc batch: error: {out}: cannot write: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    _report(args.batch_id, out, check)
    return EXIT_OK if check.ok else EXIT_FAILED


def _report(batch_id: str, out: Path, check: RecordCheck) -> None:
    print(f"batch {batch_id} to {out}")
    print(check.summary())
    if not check.ok:
        print(
            "vplc batch: integrity check FAILED: the export says INTEGRITY NOT VERIFIED and "
            "why; do not release the batch on it before the break above is investigated",
            file=sys.stderr,
        )
