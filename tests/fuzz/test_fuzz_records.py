"""Fuzz the records' files: a user store, a batch record and an audit trail line, mutated.

Each example damages one file of a fresh copy of the ops sandbox (_sandbox.py): values,
structure, encodings; a batch record is re-sealed half the time (its sha256 recomputed, as
the retain kind keeps a valid checksum) so the checks behind the hash are reached too. Then
the commands that read that file run on it: ``users list|unlock``, ``batch list|record
--json|--pdf``, ``audit show --json|--csv|--pdf`` and ``audit verify``. A damaged file may
be refused (2) or reported as not verified (1), never a traceback.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz._harness import Case, assert_clean
from tests.fuzz._mutate import DEEP, Deep, Example, encoded, mutated
from tests.fuzz._sandbox import NEW, PW, pristine, run_in, sandbox
from tests.fuzz.conftest import PROFILE


def dump_json(doc: Any) -> str:
    """JSON text of a mutated document (NaN as JSON's NaN token, deep nesting expanded)."""
    deeps: list[int] = []

    def swap(node: Any) -> Any:
        if isinstance(node, Deep):
            deeps.append(node.depth)
            return DEEP.format(len(deeps) - 1)
        if isinstance(node, dict):
            return {str(k): swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        if isinstance(node, int) and abs(node) > 10**4000:
            return float("inf")  # beyond what json.dumps writes
        return node

    text = json.dumps(swap(doc), ensure_ascii=False, indent=1)
    for i, depth in enumerate(deeps):
        text = text.replace(json.dumps(DEEP.format(i)), "[" * depth + "1" + "]" * depth)
    return text


@cache
def _docs() -> dict[str, Any]:
    root = pristine()
    record = next((root / "batches").glob("*.json"))
    lines = (root / "trail.jsonl").read_text().splitlines()
    return {
        "store": json.loads((root / "users.json").read_text()),
        "record": json.loads(record.read_text()),
        "record_name": record.name,
        "trail": [json.loads(line) for line in lines],
    }


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, Example, int]:
    """Which file, its damaged form, and (for the trail) which line."""
    which = draw(st.sampled_from(["store", "record", "record", "trail", "trail"]))
    docs = _docs()
    line = 0
    if which == "trail":
        line = draw(st.integers(0, len(docs["trail"]) - 1))
        base = docs["trail"][line]
    else:
        base = docs[which]
    doc, notes = draw(mutated(base))
    reseal = which == "record" and draw(st.booleans())
    if reseal and isinstance(doc, dict):
        from runtime.ops._batch_store import record_hash

        try:
            doc["integrity"] = {"sha256": record_hash(doc)}
            notes.append("re-sealed")
        except (ValueError, TypeError, RecursionError):
            pass  # a value canonical JSON cannot hold: left with the old hash
    text = dump_json(doc)
    if which == "trail":
        text = text.replace("\n", "")  # one line of JSON lines
    data, how = draw(encoded(text))
    return which, Example(doc, data, f"{which} {how}: {'; '.join(notes)}"), line


COMMANDS = {
    "store": [
        ["users", "list", "--store", "@/users.json"],
        ["users", "list", "--json", "--store", "@/users.json"],
        ["users", "unlock", "op1", "--as", "jadmin", "--store", "@/users.json"],
        ["users", "passwd", "op1", "--store", "@/users.json"],
    ],
    "record": [
        ["batch", "list", "--dir", "@/batches"],
        ["batch", "list", "--json", "--dir", "@/batches"],
        ["batch", "record", "<id>", "--dir", "@/batches", "--json", "@/out.json"],
        ["batch", "record", "<id>", "--dir", "@/batches", "--pdf", "@/out.pdf"],
        [
            "batch",
            "record",
            "<id>",
            "--dir",
            "@/batches",
            "--pdf",
            "@/o.pdf",
            "--audit",
            "@/trail.jsonl",
        ],
    ],
    "trail": [
        ["audit", "show", "@/trail.jsonl"],
        ["audit", "show", "@/trail.jsonl", "--json"],
        ["audit", "show", "@/trail.jsonl", "--csv", "@/out.csv", "--who", "jadmin"],
        ["audit", "show", "@/trail.jsonl", "--pdf", "@/out.pdf", "--since", "2020-01-01"],
        ["audit", "verify", "@/trail.jsonl", "--json"],
        ["users", "list", "--store", "@/users.json", "--audit", "@/trail.jsonl"],
    ],
}


def _example(which: str, ex: Example, line: int, command: int) -> None:
    with sandbox() as root:
        name = _docs()["record_name"]
        if which == "store":
            target = root / "users.json"
            target.write_bytes(ex.data)
        elif which == "record":
            target = root / "batches" / name
            target.write_bytes(ex.data)
        else:
            target = root / "trail.jsonl"
            lines = target.read_bytes().split(b"\n")
            lines[line] = ex.data.replace(b"\n", b" ")
            target.write_bytes(b"\n".join(lines))
        argv = COMMANDS[which][command % len(COMMANDS[which])]
        real = [a.replace("@", str(root), 1).replace("<id>", name[:-5]) for a in argv]
        what = f"{ex.notes} (line {line})" if which == "trail" else ex.notes
        names = (str(target), target.name, *(a for a in real[2:] if a.startswith("--")))
        case = Case(which, real, what, names=names, may_fail=True)
        run_in(root, case, PW, NEW)


@settings(settings.get_profile(PROFILE))
@given(damaged(), st.integers(0, 5))
def _fuzz(example: tuple[str, Example, int], command: int) -> None:
    _example(*example, command)


def test_damaged_records_files() -> None:
    with contextlib.chdir(pristine()):
        _fuzz()
    for kind in ("store", "record", "trail"):
        assert_clean(kind)
