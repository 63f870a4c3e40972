"""`vplc audit verify|show`: check a trail against its key and head; review it by who/what/when."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.host._apps import path_arg
from runtime.host._outpaths import OutputPathError, check_output_file
from runtime.ops._audit_key import AuditKeyError, load_verify_key
from runtime.ops._audit_verify import AuditVerification, verify_audit_log

__all__ = ["add_audit_commands", "review_row"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_audit_commands(sub: Any) -> None:
    """Register ``vplc audit verify`` and ``vplc audit show``."""
    audit = sub.add_parser("audit", help="the audit trail: verify it, review it")
    inner = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = inner.add_parser(
        "verify",
        help="check chain, signatures and head (exit 0 intact, 1 not; names the first bad record)",
    )
    _common(verify)
    verify.add_argument(
        "--allow-legacy",
        action="store_true",
        help="accept a trail of the older unkeyed formats whose chain is intact (exit 0)",
    )
    verify.add_argument("--json", action="store_true", help="the verdict as JSON")
    verify.set_defaults(func=_verify)

    show = inner.add_parser("show", help="records filtered by who/what/when, for a review")
    _common(show)
    show.add_argument("--who", action="append", metavar="USER", help="only these users (repeat)")
    show.add_argument("--what", metavar="TEXT", help="event, command or target containing TEXT")
    show.add_argument("--since", type=_when, metavar="TIME", help="ISO date/time (UTC if no zone)")
    show.add_argument("--until", type=_when, metavar="TIME", help="ISO date/time (UTC if no zone)")
    show.add_argument("--outcome", metavar="OUTCOME", help="e.g. accepted, refused, ok, failed")
    show.add_argument("--json", action="store_true", help="verdict and records as one JSON doc")
    show.add_argument(
        "--csv",
        type=path_arg,
        metavar="OUT",
        help="export the rows for a reviewer, verdict included",
    )
    show.add_argument(
        "--pdf", type=path_arg, metavar="OUT", help="export the rows as a PDF, verdict on top"
    )
    show.set_defaults(func=_show)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=path_arg, metavar="FILE", help="the trail (JSON lines)")
    parser.add_argument(
        "--key",
        type=path_arg,
        metavar="K",
        help="trusted public key (PEM; default $VPLC_AUDIT_KEY, the state dir's key, or "
        "keys/ next to FILE)",
    )
    parser.add_argument(
        "--head", type=path_arg, metavar="H", help="signed head (default FILE.head)"
    )


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date or date-time like 2025-03-01 or 2025-03-01T08:00, got {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check(args: argparse.Namespace) -> AuditVerification | int:
    key = None
    if args.key is not None:
        try:
            key = load_verify_key(args.key)
        except AuditKeyError as exc:
            print(f"vplc audit: error: --key: {exc}", file=sys.stderr)
            return EXIT_INVALID
    return verify_audit_log(
        args.file, key=key, head=args.head, allow_legacy=getattr(args, "allow_legacy", False)
    )


def _verify(args: argparse.Namespace) -> int:
    result = _check(args)
    if isinstance(result, int):
        return result
    if args.json:
        print(json.dumps(_verdict(result), indent=2))
    else:
        print(f"{args.file}: {result.summary()}")
        for note in result.notes:
            print(f"  note: {note}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _verdict(result: AuditVerification) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "records": result.records,
        "first_bad_record": result.line or None,
        "error": result.error or None,
        "key": result.key or None,
        "head_seq": result.head_seq,
        "legacy_records": result.legacy,
        "notes": list(result.notes),
        "summary": result.summary(),
    }


def review_row(record: dict[str, Any]) -> dict[str, Any]:
    """One record as a reviewer reads it: seq, when, who, what, outcome, detail.

    Runtime commands name ``user``/``cmd``/``target``; container operations ``who``/``what``/
    ``deployment``; other events (warm start, online change, refusal summaries) their event.
    """
    event = record.get("event") or ("container" if "what" in record else "")
    who = record.get("who") or record.get("user")
    if event == "command":
        what = f"{record.get('cmd')} {record.get('target') or ''}".strip()
    elif "subject" in record:  # user administration: who changed which user
        what = f"{event} {record.get('subject')}"
    elif "what" in record:
        what = f"{record.get('what')} {record.get('deployment') or ''}".strip()
    else:
        what = event
    detail = record.get("reason") or record.get("why") or ""
    if event == "command_refusals":
        who = who or "(unauthenticated)"
        detail = json.dumps(record.get("counts"), sort_keys=True)
    return {
        "seq": record.get("seq"),
        "when": record.get("ts") or record.get("when"),
        "event": event,
        "who": who,
        "what": what,
        "outcome": record.get("status") or record.get("outcome"),
        "detail": detail,
    }


def _matches(row: dict[str, Any], args: argparse.Namespace) -> bool:
    if args.who and row["who"] not in args.who:
        return False
    if args.what and args.what.lower() not in f"{row['event']} {row['what']}".lower():
        return False
    if args.outcome and row["outcome"] != args.outcome:
        return False
    if args.since or args.until:
        try:
            when = _when(str(row["when"]).replace("Z", "+00:00"))
        except argparse.ArgumentTypeError:
            return False
        if (args.since and when < args.since) or (args.until and when > args.until):
            return False
    return True


def _rows(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                unreadable = {"seq": lineno, "event": "(unreadable line)", "who": None, "what": ""}
                yield unreadable | {"record": {"unreadable_line": lineno}}
                continue
            if isinstance(record, dict):
                row = review_row(record)
                row["seq"] = row["seq"] or lineno
                if _matches(row, args):
                    yield row | {"record": record}


_CSV_COLUMNS = ("seq", "when", "event", "who", "what", "outcome", "detail", "signatures")


def _export_csv(
    args: argparse.Namespace, rows: list[dict[str, Any]], result: AuditVerification
) -> int:
    """The rows as CSV; the verifier's verdict is the first line, so no copy goes without it."""
    import csv

    try:
        with args.csv.open("w", newline="", encoding="utf-8") as fh:
            fh.write(f"# audit trail {args.file}: verify: {result.summary()}\n")
            writer = csv.writer(fh)
            writer.writerow(_CSV_COLUMNS)
            for r in rows:
                sigs = r["record"].get("signatures") or []
                signed = "; ".join(
                    f"{s.get('printed_name')} ({s.get('user_id')}) {s.get('meaning')} "
                    f"{s.get('signed_at')}"
                    for s in sigs
                    if isinstance(s, dict)
                )
                writer.writerow([*(r.get(c) or "" for c in _CSV_COLUMNS[:-1]), signed])
    except OSError as exc:
        print(f"vplc audit: error: --csv {args.csv}: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{len(rows)} record(s) to {args.csv}; verify: {result.summary()}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _export_pdf(
    args: argparse.Namespace, rows: list[dict[str, Any]], result: AuditVerification
) -> int:
    """The rows as a PDF for a reviewer, the verifier's verdict at the top of the first page."""
    from runtime.host._pdf import PdfUnavailableError, audit_pdf

    try:
        audit_pdf(f"Audit trail {args.file.name}", result.ok, result.summary(), rows, args.pdf)
    except PdfUnavailableError as exc:
        print(f"vplc audit: error: --pdf: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"vplc audit: error: --pdf {args.pdf}: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{len(rows)} record(s) to {args.pdf}; verify: {result.summary()}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _show(args: argparse.Namespace) -> int:
    for flag, out in (("--csv", args.csv), ("--pdf", args.pdf)):
        if out is not None:  # before the trail is read: a typo costs nothing
            try:
                check_output_file(flag, out)
            except OutputPathError as exc:
                print(f"vplc audit: error: {exc}", file=sys.stderr)
                return EXIT_INVALID
    result = _check(args)
    if isinstance(result, int):
        return result
    if not args.file.is_file():
        print(f"vplc audit: error: {args.file}: no such file", file=sys.stderr)
        return EXIT_INVALID
    rows = list(_rows(args.file, args))
    if args.csv is not None:
        return _export_csv(args, rows, result)
    if args.pdf is not None:
        return _export_pdf(args, rows, result)
    if args.json:
        doc = {"verification": _verdict(result), "records": [r["record"] for r in rows]}
        print(json.dumps(doc, indent=2, default=str))
        return EXIT_OK
    print(f"{args.file}: verify: {result.summary()}")
    header = f"{'seq':>6}  {'when (UTC)':<19}  {'who':<12}  {'what':<28}  {'outcome':<9}  detail"
    print(header)
    for r in rows:
        when = str(r.get("when") or "")[:19].replace("T", " ")
        detail = str(r.get("detail") or "").replace("\n", " ")
        print(
            f"{r['seq']!s:>6}  {when:<19}  {str(r['who'] or '-')[:12]:<12}  "
            f"{str(r['what'])[:28]:<28}  {str(r.get('outcome') or '-')[:9]:<9}  {detail[:70]}"
        )
    print(f"{len(rows)} record(s)")
    return EXIT_OK
