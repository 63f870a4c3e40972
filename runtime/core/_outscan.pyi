"""Type stub of the compiled runtime/core/_outscan.pyx."""

from collections.abc import Iterable
from typing import Any

from hal import Point

class OutputScan:
    def __init__(self, entries: Iterable[tuple[Point, type, Any, Any]]) -> None: ...
    def scan(self) -> list[Point] | None: ...
