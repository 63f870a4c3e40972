"""Crash-test helper: resume from the retain files, then write checkpoints until killed.

Run as ``python _crash_writer.py FILE``. It loads runtime/state/_file.py by path (standard
library only) so each start takes milliseconds, not the whole runtime's import time.
Prints ``start N`` once the files are judged and ``ok N`` after each completed write.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

APP = "crashapp"
BLOB = 1500


def payload(n: int) -> dict[str, object]:
    """What checkpoint ``n`` holds: fully determined by n, so a torn mix is detectable."""
    return {"n": n, "blob": [n * 1_000_003 + k for k in range(BLOB)], "tail": f"end-{n}"}


def main() -> int:
    here = Path(__file__).resolve()
    spec = importlib.util.spec_from_file_location(
        "_vplc_file", here.parents[3] / "runtime" / "state" / "_file.py"
    )
    assert spec is not None and spec.loader is not None
    file = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = file  # dataclasses look their module up while being defined
    spec.loader.exec_module(file)
    path = Path(sys.argv[1])
    chosen, _ = file.latest(path, app=APP)
    if chosen is not None and not chosen.ok:
        print(f"bad {chosen.path}: {chosen.problem}", flush=True)
        return 3
    n = chosen.doc["data"]["n"] if chosen is not None else 0
    print(f"start {n}", flush=True)
    while True:
        n += 1
        doc = {"app": APP, "app_version": "1.0.0", "seq": n, "data": payload(n)}
        file.write(path, doc)
        print(f"ok {n}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
