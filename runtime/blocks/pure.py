"""The pure-Python standard blocks, whatever ``runtime.blocks`` selected (for parity tests).

Found, not listed: every block class of the modules of runtime/blocks, by name.
"""

from typing import Any

from runtime.blocks._cy import python_blocks

globals().update(python_blocks())
__all__ = sorted(python_blocks())


def __getattr__(name: str) -> Any:  # the blocks are set above; this only explains a typo
    raise AttributeError(f"runtime.blocks has no block {name!r} (blocks: {', '.join(__all__)})")
