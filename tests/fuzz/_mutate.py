"""Hypothesis strategies that mutate a YAML document: values, structure, text and bytes."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

Path_ = tuple[str | int, ...]

# Numbers that break naive code: non-finite, huge, tiny, negative zero, big integers.
SPECIAL_FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    1e300,
    -1e300,
    1e30,
    5e-324,
    1e-9,
    -0.0,
    0.0,
    1e9,
    -1.0,
]
SPECIAL_INTS = [0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 10**100, 2**1000]
DEEP = "\x00DEEP{}\x00"  # placeholder for a nesting too deep to build or dump as Python


class Example:
    """A generated input: the document, the file bytes, and a one-line account of both.

    A plain class, not a dataclass: hypothesis prints a failing example with this repr (the
    account), not field by field (a whole document and its bytes).
    """

    __slots__ = ("data", "doc", "notes")

    def __init__(self, doc: Any, data: bytes, notes: str) -> None:
        self.doc, self.data, self.notes = doc, data, notes

    def __repr__(self) -> str:
        return f"Example({self.notes!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` levels deep, written into the text after dumping."""

    depth: int


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(SPECIAL_FLOATS),
        st.sampled_from(SPECIAL_INTS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.booleans(),
        st.none(),
        st.text(max_size=20),
        st.sampled_from(["", " ", "\x00", "é", "💥", "x" * 5000, "1e999", "nan", "-inf", "0x10"]),
    )


def values() -> st.SearchStrategy[Any]:
    """A replacement value: a scalar, a small container, or a very deep nesting."""
    containers = st.recursive(
        scalars(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    )
    deep = st.integers(min_value=30, max_value=3000).map(Deep)
    return st.one_of(scalars(), containers, deep)


def paths(doc: Any) -> list[Path_]:
    """Every node of a document, as key/index paths (the root is ())."""
    out: list[Path_] = [()]
    stack: list[tuple[Any, Path_]] = [(doc, ())]
    while stack:
        node, at = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            out.append((*at, key))
            stack.append((child, (*at, key)))
    return sorted(out, key=str)


def _parent(doc: Any, at: Path_) -> Any:
    for key in at[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated(
    draw: st.DrawFn,
    base: dict[str, Any],
    *,
    fixed: dict[str, st.SearchStrategy[Any]] | None = None,
) -> tuple[Any, list[str]]:
    """``base`` with 0–3 edits: set a node, delete it, add an unknown key, or swap the root.

    ``fixed``: keys whose new values come from the given strategy instead (e.g. a duration
    kept short enough to run).
    """
    doc: Any = copy.deepcopy(base)
    notes: list[str] = []
    edits = draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3]))  # 0: the input as it was (accepted)
    for _ in range(edits):
        if not isinstance(doc, dict | list):
            break
        at = draw(st.sampled_from(paths(doc)))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "add"])) if at else "set"
        where = ".".join(map(str, at)) or "<root>"
        if op == "set":
            key = at[-1] if at else None
            strategy = (fixed or {}).get(key) if isinstance(key, str) else None
            value = draw(strategy if strategy is not None else values())
            if at:
                _parent(doc, at)[at[-1]] = value
            else:
                doc = value
            notes.append(f"set {where} = {_short(value)}")
        elif op == "delete":
            del _parent(doc, at)[at[-1]]
            notes.append(f"delete {where}")
        else:
            node = _parent(doc, (*at, 0))
            if isinstance(node, dict):
                key = draw(st.text(min_size=1, max_size=12))
                node[key] = draw(scalars())
                notes.append(f"add {where}.{key!r}")
    return doc, notes


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def dump(doc: Any, *, flow: bool = False) -> str:
    """YAML text of a mutated document, deep placeholders expanded to flow sequences.

    ``flow``: all in flow style (``{a: 1, b: [2]}``), as inline YAML on a command line."""
    deeps: list[int] = []

    def swap(node: Any) -> Any:
        if isinstance(node, Deep):
            deeps.append(node.depth)
            return DEEP.format(len(deeps) - 1)
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    text = yaml.safe_dump(
        swap(doc), sort_keys=False, allow_unicode=True, width=10**6, default_flow_style=flow
    )
    for i, depth in enumerate(deeps):
        placeholder = yaml.safe_dump(DEEP.format(i)).strip().removesuffix("...").strip()
        text = text.replace(placeholder, "[" * depth + "1" + "]" * depth)
    return text


BOMB = "bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"bomb{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]\n" for i in range(1, 9)
)


@st.composite
def encoded(draw: st.DrawFn, text: str) -> tuple[bytes, str]:
    """The file bytes: mostly UTF-8 as is, sometimes re-encoded, damaged or a YAML bomb."""
    how = draw(
        st.sampled_from(
            ["utf8"] * 10
            + ["utf16", "latin1", "bom", "flip", "truncate", "bomb", "garbage", "empty"]
        )
    )
    data = text.encode("utf-8")
    if how == "utf16":
        data = text.encode("utf-16")
    elif how == "latin1":
        data = ("# café\n" + text).encode("latin-1", errors="replace")
    elif how == "bom":
        data = b"\xef\xbb\xbf" + data
    elif how == "flip" and data:
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
    elif how == "truncate":
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    elif how == "bomb":
        data = (BOMB + text).encode()
    elif how == "garbage":
        data = draw(st.binary(max_size=200))
    elif how == "empty":
        data = b""
    return data, how


@st.composite
def mutated_file(draw: st.DrawFn, base: Any) -> Example:
    """``base`` mutated and dumped to YAML, then encoded: a config file or manifest example."""
    doc, notes = draw(mutated(base))
    data, how = draw(encoded(dump(doc)))
    return Example(doc, data, f"{how}: {'; '.join(notes)}")


def non_finite(ex: Example) -> str:
    """The property an accepted example breaks when its UTF-8 text holds a NaN/inf (a value
    no setting may take), or "" (where another encoding was drawn the document is not
    what the file says, so nothing can be concluded)."""
    if not ex.notes.startswith("utf8:"):
        return ""
    stack: list[tuple[Any, str]] = [(ex.doc, "")]
    while stack:
        node, at = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return f"non-finite value at {at or '<root>'} accepted"
        if isinstance(node, dict):
            stack.extend((v, f"{at}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(node))
    return ""
