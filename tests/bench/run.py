"""``make bench``: run every tests/bench/bench_*.py module's ``run()`` and write JSON results."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--only", nargs="*", help="bench module names, e.g. bench_core")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    if args.only:
        names = [n for n in names if n in args.only]
    failed = 0
    summary: dict[str, Any] = {"machine": _machine(), "results": {}}
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            result = importlib.import_module(f"tests.bench.{name}").run()
        except Exception:
            failed += 1
            result = {"error": traceback.format_exc()}
            print(result["error"], file=sys.stderr)
        result["bench_wall_s"] = round(time.perf_counter() - t0, 1)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        summary["results"][name] = result
        print(json.dumps(result, indent=2), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results in {args.out}/")
    return 1 if failed else 0


def _machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    sys.exit(main())
