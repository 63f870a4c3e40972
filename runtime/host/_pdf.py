"""PDF exports for a reviewer: a batch record and audit trail rows, each with its verdict.

fpdf2 (pure Python, no system libraries) is imported only here and only when a PDF is asked
for. Its built-in fonts are Latin-1; ``_text`` spells the few other characters we use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpdf import FPDF

__all__ = ["PdfUnavailableError", "audit_pdf", "batch_pdf"]


class PdfUnavailableError(Exception):
    """fpdf2 is not installed (it is the ``pdf`` extra)."""


_SPELL = {"→": "->", "…": "...", "±": "+/-", "—": "-", "–": "-", "µ": "u", "≥": ">=", "≤": "<="}


# Characters of a table cell per mm of its width: at 7 pt about 0.7 characters a mm and 4 mm
# a line, 10 per mm fill some 60 mm (of W: 120 mm) of the A4 landscape page; taller is refused.
CELL_CHARS_PER_MM = 10


def _cell(value: Any, width_mm: float) -> str:
    """A table cell's text, cut so the row fits a page; the full text is in --json/--csv."""
    text, most = _text(value), int(width_mm * CELL_CHARS_PER_MM)
    if len(text) <= most:
        return text
    return f"{text[:most]}... ({len(text) - most} more characters: see --json)"


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    for char, spelled in _SPELL.items():
        text = text.replace(char, spelled)
    return text.encode("latin-1", "replace").decode("latin-1")


class _Doc:
    def __init__(self, title: str, footer: str) -> None:
        try:
            from fpdf import FPDF
        except ImportError:
            raise PdfUnavailableError(
                "PDF export needs fpdf2, which is not installed: pip install 'vplc[pdf]' (or "
                "pip install fpdf2), or export with --json / --csv instead"
            ) from None

        class Pdf(FPDF):
            def footer(self) -> None:
                self.set_y(-12)
                self.set_font("Helvetica", size=7)
                self.cell(0, 8, _text(f"{footer}   page {self.page_no()}/{{nb}}"), align="C")

        self.pdf: FPDF = Pdf(orientation="L", format="A4")
        self.pdf.set_title(_text(title))
        self.pdf.set_creator("vplc")
        self.pdf.alias_nb_pages()
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.add_page()
        self.pdf.set_font("Helvetica", "B", 15)
        self.pdf.cell(0, 10, _text(title), new_x="LMARGIN", new_y="NEXT")

    def verdict(self, ok: bool, lines: Sequence[str]) -> None:
        pdf = self.pdf
        pdf.set_fill_color(*((210, 240, 210) if ok else (250, 205, 205)))
        pdf.set_font("Helvetica", "B", 10)
        head = "INTEGRITY VERIFIED" if ok else "INTEGRITY NOT VERIFIED"
        pdf.multi_cell(0, 6, _text(head), fill=True, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=8)
        for line in lines:
            pdf.multi_cell(0, 4.5, _text(line), fill=True, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)

    def section(self, title: str) -> None:
        self.pdf.set_font("Helvetica", "B", 11)
        self.pdf.ln(2)
        self.pdf.cell(0, 7, _text(title), new_x="LMARGIN", new_y="NEXT")

    def note(self, text: str) -> None:
        self.pdf.set_font("Helvetica", "I", 8)
        self.pdf.multi_cell(0, 4.5, _text(text), new_x="LMARGIN", new_y="NEXT")

    def table(
        self, headings: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[int]
    ) -> None:
        if not rows:
            self.note("none")
            return
        self.pdf.set_font("Helvetica", size=7)
        with self.pdf.table(col_widths=tuple(widths), text_align="LEFT", line_height=4) as table:
            table.row([_text(h) for h in headings])
            for row in rows:
                table.row(
                    ["" if v is None else _cell(v, w) for v, w in zip(row, widths, strict=True)]
                )

    def save(self, out: Path) -> None:
        self.pdf.output(str(out))


def _when(stamp: dict[str, Any] | None) -> str:
    if not stamp:
        return ""
    return f"{str(stamp.get('at', ''))[:23].replace('T', ' ')} (t={stamp.get('t_s')} s)"


def _signers(signatures: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{s.get('printed_name')} ({s.get('user_id')}, {s.get('meaning')}, {s.get('signed_at')})"
        for s in signatures
    )


def batch_pdf(record: dict[str, Any], ok: bool, verdict: Sequence[str], out: Path) -> None:
    """The batch record as a PDF; the integrity verdict first, so no copy goes without it."""
    h, summary = record["header"], record["summary"]
    doc = _Doc(f"Electronic batch record {h['batch_id']}", f"batch {h['batch_id']} - vplc")
    doc.verdict(ok, verdict)
    doc.section("Header")
    rows = [
        ("Batch id", h["batch_id"]),
        ("Product", h["product"]),
        ("App / version", f"{h['app']} {h['version']}"),
        ("App folder sha256", h.get("app_sha256")),
        ("Image", h.get("image")),
        ("Host", h.get("host")),
        ("Clock", h.get("clock")),
        ("Start", _when(h.get("start"))),
        ("End", _when(h.get("end"))),
        ("Status", summary["status"]),
        ("Operators", ", ".join(h.get("operators") or []) or "none"),
    ]
    doc.table(("Field", "Value"), rows, (40, 230))
    doc.section("Summary")
    doc.table(("Item", "Value"), [(k, v) for k, v in summary.items()], (50, 220))
    doc.section("Phase and step timeline")
    doc.table(
        ("When (UTC)", "Kind", "From", "To", "By"),
        [
            (_when(e), e["kind"], e["from"], e["to"], (e.get("by") or {}).get("user"))
            for e in record["timeline"]
        ],
        (70, 25, 50, 50, 75),
    )
    params = record["parameters"]
    doc.section("Parameters at start")
    doc.table(("Parameter", "Value"), list(params["at_start"].items()), (80, 190))
    doc.section("Parameter changes")
    doc.table(
        ("When (UTC)", "Parameter", "Old -> new", "Who", "Why", "Signatures"),
        [
            (
                _when(c),
                c["name"],
                f"{c['old']} -> {c['new']}",
                c["user"],
                c["why"],
                _signers(c["signatures"]),
            )
            for c in params["changes"]
        ],
        (50, 30, 30, 20, 50, 90),
    )
    doc.section("Alarms")
    doc.table(
        ("Alarm", "Limits", "Activated", "Acknowledged (who, comment)", "Cleared"),
        [
            (
                f"{a['alarm']}: {a['text']}",
                ",".join(a["limits"]),
                _when(a["activated"]),
                _ack(a["acknowledged"]),
                _when(a["cleared"]) or "not cleared",
            )
            for a in record["alarms"]
        ],
        (65, 20, 55, 75, 55),
    )
    doc.section("Deviations (from gmp.specifications)")
    doc.table(
        ("Specification", "Limits", "Start", "End", "Duration s", "Extreme"),
        [
            (
                f"{d['spec']} ({d['signal']})",
                f"{d['low']} .. {d['high']} {d['unit']}",
                _when(d["start"]),
                _when(d["end"]) + (" (open at end)" if d["ongoing_at_end"] else ""),
                d["duration_s"],
                f"{d['extreme']:.3f} {d['unit']} at {_when(d['extreme_at'])}",
            )
            for d in record["deviations"]
        ],
        (40, 35, 50, 55, 20, 70),
    )
    doc.section("Operator actions and electronic signatures")
    doc.table(
        ("When (UTC)", "Who", "Action", "Old -> new", "Why", "Signatures"),
        [
            (
                _when(a),
                a["user"],
                f"{a['cmd']} {a['target'] or ''} {a.get('command') or ''}",
                f"{a['old']} -> {a['new']}",
                a["why"],
                _signers(a["signatures"]),
            )
            for a in record["operator_actions"]
        ],
        (50, 20, 45, 40, 40, 75),
    )
    doc.section("Integrity")
    link = record.get("audit_link") or {}
    rows = [("Record sha256", (record.get("integrity") or {}).get("sha256"))]
    rows += [(k, v) for k, v in link.items()]
    doc.table(("Item", "Value"), rows, (50, 220))
    doc.save(out)


def _ack(ack: dict[str, Any] | None) -> str:
    if not ack:
        return "not acknowledged"
    by = ack.get("by") or {}
    who = by.get("user") or "ACK input"
    return f"{_when(ack)} by {who}: {ack.get('comment') or ''}"


def audit_pdf(
    title: str, verdict_ok: bool, verdict: str, rows: list[dict[str, Any]], out: Path
) -> None:
    """Audit trail rows for a review, the verifier's verdict at the top."""
    doc = _Doc(title, title)
    doc.verdict(verdict_ok, [f"verify: {verdict}"])
    doc.table(
        ("Seq", "When (UTC)", "Event", "Who", "What", "Outcome", "Detail", "Signatures"),
        [
            (
                r.get("seq"),
                str(r.get("when") or "")[:23].replace("T", " "),
                r.get("event"),
                r.get("who"),
                r.get("what"),
                r.get("outcome"),
                r.get("detail"),
                _signers([s for s in r["record"].get("signatures") or [] if isinstance(s, dict)]),
            )
            for r in rows
        ],
        (12, 38, 25, 20, 45, 18, 50, 62),
    )
    doc.section(f"{len(rows)} record(s)")
    doc.save(out)
