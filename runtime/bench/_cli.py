"""``vplc bench run`` and ``vplc bench replay``: the test-bench subcommands of the CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runtime.bench._cli_campaign import add_campaign_command, run_campaign
from runtime.bench._replay import ReplayError, replay
from runtime.bench._runner import run_scenario
from runtime.bench._schema import ScenarioError, load_scenario
from runtime.core.manifest import ManifestError
from runtime.host._apps import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, UsageError, resolve_app_dir
from runtime.host._outpaths import OutputPathError, check_output_dir

__all__ = ["add_bench_commands", "run_bench"]


def add_bench_commands(sub: Any) -> None:
    """Register ``bench run`` / ``bench replay`` on the CLI's subparsers."""
    bench = sub.add_parser("bench", help="test benches: run scenarios, replay traces")
    bench.set_defaults(func=run_bench)
    cmds = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    run = cmds.add_parser("run", help="run scenario files in virtual time and write reports")
    run.add_argument(
        "scenarios",
        nargs="+",
        metavar="SCENARIO",
        help="a scenario .yaml, or an app folder (runs its scenarios/*.yaml)",
    )
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="report folder (default reports/<scenario>/; with several scenarios DIR/<scenario>/)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    add_campaign_command(cmds)
    rep = cmds.add_parser("replay", help="feed a trace's inputs to an app, compare its outputs")
    rep.add_argument("trace", type=Path, metavar="TRACE.csv")
    rep.add_argument("app", metavar="APP_DIR")
    rep.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        metavar="X",
        help="numeric outputs may differ by up to X (default: exact)",
    )
    rep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter before the replay (as the recorded run had it)",
    )
    rep.add_argument("--seed", type=int, default=0)


def run_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "replay":
        return _replay(args)
    if args.bench_command == "campaign":
        return run_campaign(args)
    files: list[Path] = []
    for ref in args.scenarios:
        path = Path(ref)
        try:
            is_dir = path.is_dir()
        except OSError as exc:  # e.g. a name longer than the OS allows
            print(f"vplc: error: {ref[:200]}: {exc.strerror}", file=sys.stderr)
            return EXIT_INVALID
        if is_dir:
            found = sorted((path / "scenarios").glob("*.yaml"))
            if not found:
                print(f"vplc: error: {path}: no scenarios/*.yaml in this folder", file=sys.stderr)
                return EXIT_INVALID
            files += found
        else:
            files.append(path)
    try:  # every file is validated, and every report folder proven, before the first run
        scenarios = [load_scenario(f) for f in files]
        outs = [_report_dir(args.out, sc.title, len(scenarios)) for sc in scenarios]
        for out in outs:
            check_output_dir("--out" if args.out is not None else "report folder", out)
    except (ScenarioError, OutputPathError) as exc:
        print(f"vplc: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    worst = EXIT_OK
    for sc, out in zip(scenarios, outs, strict=True):
        try:
            result = run_scenario(sc, out=out, progress=None if args.quiet else sys.stderr)
        except ScenarioError as exc:
            print(f"vplc: error: {exc}", file=sys.stderr)
            worst = EXIT_INVALID
            continue
        worst = max(worst, _show(result, sc.title, out))
    return worst


def _report_dir(out: Path | None, title: str, count: int) -> Path:
    if out is None:
        return Path("reports") / title
    return out / title if count > 1 else out


def _show(result: Any, title: str, out: Path) -> int:
    """Print the verdict and failures; the exit code this result asks for."""
    errors = result.expression_errors
    verdict = "ERROR" if errors else "PASS" if result.passed else "FAIL"
    print(
        f"{verdict} {title}: {len(result.assertions)} assertion(s), {result.sim_s:g} s "
        f"simulated in {result.wall_s:.1f} s ({result.speed:,.0f}x real time); report: {out}"
    )
    for failure in result.failures:
        print(f"  - {failure}")
    for line in result.output_errors:
        print(f"vplc: error: {line}", file=sys.stderr)
    if errors:  # a condition that cannot be evaluated is a wrong scenario (invalid input)
        for line in errors:
            print(f"vplc: error: {line}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK if result.passed and not result.output_errors else EXIT_FAILURE


def _replay(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    for item in args.set:
        name, sep, text = item.partition("=")
        if not sep:
            print(f"vplc: error: --set {item!r}: expected NAME=VALUE", file=sys.stderr)
            return EXIT_INVALID
        params[name.strip()] = _value(text.strip())

    try:
        app_dir = resolve_app_dir(args.app)
        result = replay(
            args.trace, app_dir, tolerance=args.tolerance, parameters=params, seed=args.seed
        )
    except (ReplayError, ManifestError, UsageError) as exc:
        print(f"vplc: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.trace} on {args.app}: {result.summary()}")
    for name, stats in result.signals.items():
        print(f"  {name}: first differs at t={stats['first_t']:g} s, in {stats['cycles']} cycle(s)")
    return EXIT_OK if result.identical else EXIT_FAILURE


def _value(text: str) -> bool | int | float | str:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text
