"""The ``vplc sim serve`` command (a ``vplc.commands`` entry point), also run standalone."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hal import DriverError

if TYPE_CHECKING:
    from sim_hardware.serve import ServeOptions

EXIT_OK, EXIT_INVALID = 0, 2


def register(subparsers: Any) -> None:
    """Add ``sim serve`` to the ``vplc`` command line (a ``vplc.commands`` entry point)."""
    sim = subparsers.add_parser("sim", help="simulated plant hardware")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    serve = sim_sub.add_parser("serve", help="serve a simulated plant over MQTT in real time")
    add_serve_arguments(serve)
    serve.set_defaults(func=run_serve)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plant", default="bioreactor", help="plant model (bioreactor, tank)")
    parser.add_argument("--seed", type=int, default=0, help="measurement-noise seed")
    parser.add_argument("--host", default="127.0.0.1", help="MQTT broker host")
    parser.add_argument("--port", type=int, default=1883, help="MQTT broker port")
    parser.add_argument("--prefix", default="vplc/sim/plant", help="topic prefix")
    parser.add_argument("--params", type=Path, metavar="FILE.json", help="plant parameters")
    parser.add_argument(
        "--initial",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="initial plant state, e.g. temperature=37 (repeatable)",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="plant s per wall s")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="steps per wall second")
    parser.add_argument("--stats-s", type=float, default=1.0, help="stats period (s)")
    parser.add_argument("--no-noise", action="store_true", help="exact measurements")
    parser.add_argument(
        "--actuator-timeout",
        type=float,
        metavar="SECONDS",
        help="de-energise actuators after this long without an applied write",
    )
    parser.add_argument("--username", help="broker user (password from $VPLC_SIM_PASSWORD)")


def _options(args: argparse.Namespace) -> ServeOptions:
    # imported here: registering the command must not load aiomqtt for every vplc call
    from sim_hardware.serve import ServeOptions

    params: dict[str, Any] = {}
    if args.params is not None:
        try:
            params = json.loads(args.params.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--params {args.params}: {exc}") from None
        if not isinstance(params, dict):
            raise ValueError(f"--params {args.params}: expected a JSON object")
    initial: dict[str, float] = {}
    for item in args.initial:
        key, sep, value = item.partition("=")
        try:
            initial[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--initial {item!r}: expected NAME=NUMBER")
    return ServeOptions(
        plant=args.plant, seed=args.seed, params=params, initial=initial,
        noise=not args.no_noise, host=args.host, port=args.port, prefix=args.prefix,
        rate_hz=args.rate_hz, speed=args.speed, stats_s=args.stats_s,
        actuator_timeout_s=args.actuator_timeout, username=args.username,
        password=os.environ.get("VPLC_SIM_PASSWORD"),
    )  # fmt: skip


def run_serve(args: argparse.Namespace) -> int:
    from sim_hardware.serve import PlantServer, run

    try:
        opts = _options(args)
        PlantServer(opts)  # refuse a bad plant, parameter or initial value before serving
    except (ValueError, ValidationError, DriverError) as exc:
        print(f"vplc sim serve: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"sim serve: {opts.plant} on {opts.host}:{opts.port} at {opts.prefix}", flush=True)
    return run(opts)


def main(argv: Sequence[str] | None = None, *, prog: str = "vplc-sim-serve") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="serve a simulated plant over MQTT")
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
