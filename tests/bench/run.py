"""``make bench``: run every tests/bench/bench_*.py module's ``run()`` and write JSON results."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--only", nargs="*", help="bench module names, e.g. bench_core")
    # what each module's own interpreter runs (see _run_isolated)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child)
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
        result = _run_isolated(name, args.out)
        failed += "error" in result
        result["bench_wall_s"] = round(time.perf_counter() - t0, 1)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        summary["results"][name] = result
        print(json.dumps(result, indent=2), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results in {args.out}/")
    return 1 if failed else 0


def _child(name: str, result_file: str) -> int:
    """Run ``tests.bench.<name>.run()`` here and write its result (or the error) as JSON."""
    try:
        result = importlib.import_module(f"tests.bench.{name}").run()
    except Exception:
        result = {"error": traceback.format_exc()}
        print(result["error"], file=sys.stderr)
    Path(result_file).write_text(json.dumps(result), encoding="utf-8")
    return 0


def _run_isolated(name: str, out: Path) -> dict[str, Any]:
    """``tests.bench.<name>.run()`` in a child process; its result, or {"error": ...}.

    Each module runs in a fresh interpreter: threads, CPU affinity, scheduling policy or a
    heap left behind by one benchmark must not slow the next one down.
    """
    result_file = out / f".{name}.partial.json"
    result_file.unlink(missing_ok=True)
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "tests.bench.run", "--child", name, str(result_file)]
    proc = subprocess.run(cmd, cwd=root)
    try:
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {"error": f"the benchmark process exited with {proc.returncode} (see above)"}
        print(result["error"], file=sys.stderr)
    result_file.unlink(missing_ok=True)
    return result


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
