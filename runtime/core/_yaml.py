"""Reading YAML people write: bounded size, nesting and alias expansion; UTF-8; finite floats."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from runtime.core._files import UnusableFileError, read_regular

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlError",
    "parse_yaml",
    "read_yaml",
    "read_yaml_file",
]

MAX_BYTES = 32 * 1024 * 1024  # plant10's 2,610 points take 0.4 MiB
MAX_DEPTH = 64  # an app manifest nests about 6 deep; the C composer recurses per level
# Nodes after alias expansion (plant10: ~50k). Aliases are shared when parsed, but validation
# walks every use: a "billion laughs" file of a few lines would expand to 10^9 nodes.
MAX_NODES = 2_000_000

# libyaml parses ~25x faster than the pure-Python parser; both give the same documents.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(Exception):
    """A YAML file that cannot be used; ``str()`` says why and where, without the file name."""


def read_yaml(path: Path, *, finite: bool = True, max_bytes: int = MAX_BYTES) -> Any:
    """Read and parse one YAML document from a regular file.

    Raises FileNotFoundError for a missing file (callers say what was expected there),
    YamlError for anything else that is wrong with it.
    """
    raw = _read_regular(path, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} (line {line}); "
            "save the file as UTF-8"
        ) from None
    return parse_yaml(text, finite=finite)


def read_yaml_file(path: Path, *, finite: bool = True, max_bytes: int = MAX_BYTES) -> Any:
    """``read_yaml`` for files that must exist: a missing file is a YamlError too."""
    try:
        return read_yaml(path, finite=finite, max_bytes=max_bytes)
    except FileNotFoundError:
        raise YamlError("file not found") from None


def _read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (runtime.core._files)."""
    try:
        return read_regular(path, max_bytes)
    except FileNotFoundError:
        raise
    except UnusableFileError as exc:
        raise YamlError(exc.strerror) from None
    except OSError as exc:
        raise YamlError(f"cannot read: {exc.strerror or exc}") from None


def parse_yaml(text: str, *, finite: bool = True) -> Any:
    """Parse one YAML document (safe tags only); with ``finite``, NaN and ±inf are refused."""
    try:
        _check_depth(text)
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            return None
        _check_expansion(node)
        data = yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{_at(mark)}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.composer.ComposerError) and exc.context:
            problem = f"{exc.context} {problem}"  # "expected a single document … but found"
        kind = "error" if isinstance(exc, yaml.constructor.ConstructorError) else "syntax error"
        raise YamlError(f"{where}YAML {kind}: {problem}") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        # e.g. a 5000-digit integer, a date like 2001-13-45, a key that cannot be hashed
        raise YamlError(f"a value YAML cannot convert: {exc}") from None
    if finite:
        bad = _non_finite(data)
        if bad is not None:
            path, value = bad
            raise YamlError(f"at {path or '(top level)'}: expected a finite number (got {value!r})")
    return data


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlError(
                    f"{_at(event.start_mark)}: nested more than {MAX_DEPTH} levels deep"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes the document has once every alias is expanded, without expanding."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise YamlError(
                    f"{_at(node.start_mark)}: more than {MAX_NODES} nodes once aliases are expanded"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlError(
                f"{_at(node.start_mark)}: an alias refers to a node that contains it "
                "(a recursive structure)"
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _non_finite(data: Any) -> tuple[str, float] | None:
    """The YAML path and value of the first NaN or ±inf, if any (shared nodes visited once)."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return path, value
        elif isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = [(f"{path}.{k}" if path else str(k), v) for k, v in items]
            stack.extend(reversed(children))  # report the first one in document order
    return None
