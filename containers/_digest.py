"""The digest of a whole app folder: every file (manifest, logic, scenarios), in sha256sum format.

The listing is ``<sha256>  <relative path>`` per file, sorted by path (bytes), ``__pycache__``
left out (compiled files are derived, and the image compiles its own). Its sha256 is the image
label ``org.vplc.app-sha256``; the image keeps the listing itself (``/opt/vplc/app.sha256``), so
anyone can check an image's app with ``cd /app && sha256sum -c /opt/vplc/app.sha256``, and the
build checks that the copy in the image holds exactly these files (``--check``). Standard
library only: it runs inside the image during the build.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["app_digest", "listing", "main"]

IGNORED_DIRS = frozenset({"__pycache__"})


def _files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.rglob("*") if p.is_file() and not IGNORED_DIRS & set(p.parts)),
        key=lambda p: p.relative_to(folder).as_posix().encode(),
    )


def listing(folder: Path) -> bytes:
    """``sha256sum``-style lines for every file of ``folder`` (paths relative, sorted)."""
    lines = []
    for path in _files(folder):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(folder).as_posix()}\n")
    return "".join(lines).encode()


def app_digest(folder: Path) -> str:
    """sha256 of :func:`listing`: one value that changes when any file of the app changes."""
    return hashlib.sha256(listing(folder)).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m containers._digest", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", type=Path, metavar="LISTING", help="compare with this file")
    args = parser.parse_args(argv)
    found = listing(args.folder)
    if args.check is None:
        print(hashlib.sha256(found).hexdigest())
        return 0
    expected = args.check.read_bytes()
    if found == expected:
        return 0
    have, want = set(found.decode().splitlines()), set(expected.decode().splitlines())
    print(f"{args.folder}: the files differ from {args.check}", file=sys.stderr)
    for line in sorted(want - have):
        print(f"  expected: {line}", file=sys.stderr)
    for line in sorted(have - want):
        print(f"  found:    {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
