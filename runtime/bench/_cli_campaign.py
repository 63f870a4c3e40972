"""``vplc bench campaign``: a matrix of scenarios × seeds × fault timings, one summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from runtime.bench._campaign import run_matrix
from runtime.bench._campaign_report import at_text, summarise, write_summary
from runtime.bench._campaign_spec import (
    CampaignError,
    build_matrix,
    parse_faults,
    scenario_files,
)
from runtime.core.manifest import ManifestError
from runtime.host._apps import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, UsageError, resolve_app_dir
from runtime.host._outpaths import OutputPathError, check_output_dir

__all__ = ["add_campaign_command"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"expected 1 to 100000, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most 86400 s, got {text}")
    return value


def add_campaign_command(cmds: Any) -> None:
    """Register ``bench campaign`` on the ``bench`` subparsers."""
    camp = cmds.add_parser(
        "campaign", help="run scenarios × seeds × fault timings in parallel, one summary"
    )
    camp.add_argument("app", metavar="APP", help="app folder or installed app name")
    camp.add_argument(
        "--scenarios",
        nargs="+",
        default=[],
        metavar="DIR|FILE",
        help="scenario files or folders of *.yaml (default: APP/scenarios)",
    )
    camp.add_argument("--seeds", type=_positive, default=1, metavar="N", help="seeds 0..N-1")
    camp.add_argument(
        "--faults",
        action="append",
        default=[],
        metavar="SPEC",
        help="a fault at several times, inline YAML '{kind: pump_failed, channel: feed_pump, "
        "at: [600, 1200]}' or a YAML file of such mappings; each time is a column of the matrix",
    )
    camp.add_argument("--workers", type=_positive, default=2, metavar="K")
    camp.add_argument(
        "--timeout", type=_seconds, default=600.0, metavar="S", help="limit per run (killed after)"
    )
    camp.add_argument("--engine", choices=["local", "dask"], default="local")
    camp.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    )
    camp.add_argument("--out", type=Path, default=Path("reports/campaign"), metavar="DIR")
    camp.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_campaign(args: argparse.Namespace) -> int:
    try:
        if args.scheduler and args.engine != "dask":
            raise CampaignError("--scheduler needs --engine dask")
        if args.engine == "dask":
            _need_dask()
        app_dir = resolve_app_dir(args.app)
        faults = parse_faults(args.faults)
        runs = build_matrix(app_dir, scenario_files(app_dir, args.scenarios), args.seeds, faults)
        check_output_dir("--out", args.out)
    except (CampaignError, UsageError, ManifestError, OutputPathError) as exc:
        print(f"vplc: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    done = [0]

    def progress(o: dict[str, Any]) -> None:
        done[0] += 1
        if not args.quiet:
            print(
                f"[{done[0]}/{len(runs)}] {o['status'].upper()} {o['scenario']} seed {o['seed']} "
                f"{o['fault']}{at_text(o['at_s'])} ({o['wall_s']:.1f} s)",
                file=sys.stderr,
            )

    t0 = time.perf_counter()
    outcomes = run_matrix(
        runs,
        workers=args.workers,
        timeout_s=args.timeout,
        engine=args.engine,
        scheduler=args.scheduler,
        progress=progress,
        log_format=args.log_format,
    )
    meta = {
        "app": app_dir.name,
        "engine": args.engine if not args.scheduler else f"dask {args.scheduler}",
        "workers": args.workers,
        "seeds": args.seeds,
        "timeout_s": args.timeout,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    summary = summarise(outcomes, meta)
    write_summary(summary, args.out)
    print(
        f"{summary['runs']} runs, pass rate {summary['pass_rate']:.1%} "
        f"({', '.join(f'{k} {v}' for k, v in summary['counts'].items())}) in "
        f"{meta['wall_s']:.1f} s; summary: {args.out / 'campaign.md'}"
    )
    for w in summary["worst"]:
        print(
            f"  - {w['status'].upper()} {w['scenario']} seed {w['seed']} {w['fault']}: {w['why']}"
        )
    return EXIT_OK if summary["pass_rate"] == 1.0 else EXIT_FAILURE


def _need_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise CampaignError(
            "--engine dask: the Dask distributed package is not installed; "
            "pip install 'vplc[dask]' (on every worker too)"
        ) from None
