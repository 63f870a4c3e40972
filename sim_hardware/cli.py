"""The ``vplc sim serve`` command (a ``vplc.commands`` entry point), also run standalone."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hal import DriverError

if TYPE_CHECKING:
    from hal.mqtt import BrokerOptions
    from sim_hardware.serve import ServeOptions

EXIT_OK, EXIT_INVALID = 0, 2


def register(subparsers: Any) -> None:
    """Add ``sim serve`` to the ``vplc`` command line (a ``vplc.commands`` entry point)."""
    sim = subparsers.add_parser("sim", help="simulated plant hardware")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    serve = sim_sub.add_parser(
        "serve", help="serve a simulated plant over MQTT or Modbus TCP in real time"
    )
    add_serve_arguments(serve)
    serve.set_defaults(func=run_serve)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plant", default="bioreactor", help="plant model (bioreactor, tank)")
    parser.add_argument(
        "--protocol",
        choices=["mqtt", "modbus", "opcua"],
        default="mqtt",
        help="mqtt: a client of the broker at --host/--port; modbus: a Modbus TCP device "
        "listening on --host (default 127.0.0.1) and --port (default 5020); opcua: an OPC UA "
        "server on --host (default 127.0.0.1) and --port (default 4841)",
    )
    parser.add_argument(
        "--security-policy",
        action="append",
        choices=["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "None"],
        help="opcua: an endpoint's policy (repeatable; default Basic256Sha256, SignAndEncrypt)",
    )
    parser.add_argument("--seed", type=int, default=0, help="measurement-noise seed")
    parser.add_argument(
        "--broker",
        type=Path,
        metavar="FILE.yaml",
        help="broker connection (host, port, username, password_file/env, tls, "
        "allow_insecure, ...: the connection keys of the bridge's mqtt.yaml)",
    )
    parser.add_argument("--host", help="MQTT broker host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="MQTT broker port (default 1883)")
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
    parser.add_argument("--ca-file", type=Path, help="TLS: CA of the broker's certificate")
    parser.add_argument("--cert-file", type=Path, help="TLS: client certificate")
    parser.add_argument("--key-file", type=Path, help="TLS: client certificate's key")
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow a login over plain TCP (a warning is logged at every start)",
    )
    parser.add_argument(
        "--allow-unclaimed",
        action="store_true",
        help="apply untagged actuator writes while nobody claimed ownership (default: refuse)",
    )


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
        noise=not args.no_noise, broker=_broker(args), prefix=args.prefix,
        rate_hz=args.rate_hz, speed=args.speed, stats_s=args.stats_s,
        actuator_timeout_s=args.actuator_timeout, require_claim=not args.allow_unclaimed,
    )  # fmt: skip


_FLAGS = ("host", "port", "username", "ca_file", "cert_file", "key_file")


def _broker(args: argparse.Namespace) -> BrokerOptions:
    """The broker connection from ``--broker FILE`` or from the flags (not both)."""
    # imported here, like serve: registering the command must not load aiomqtt for every call
    from hal.mqtt import BrokerOptions, load_broker_options

    given = [f"--{f.replace('_', '-')}" for f in _FLAGS if getattr(args, f) is not None]
    if args.broker is not None:
        if given or args.allow_insecure:
            also = ", ".join(given) or "--allow-insecure"
            raise ValueError(f"--broker {args.broker}: give the connection there, not also {also}")
        return load_broker_options(args.broker)
    broker: dict[str, Any] = {"allow_insecure": args.allow_insecure}
    for key in ("host", "port", "username"):
        if getattr(args, key) is not None:
            broker[key] = getattr(args, key)
    if args.username is not None and "VPLC_SIM_PASSWORD" in os.environ:
        broker["password_env"] = "VPLC_SIM_PASSWORD"
    if args.ca_file is not None:
        broker["tls"] = {"ca_file": args.ca_file, "cert_file": args.cert_file,
                         "key_file": args.key_file}  # fmt: skip
    elif args.cert_file is not None or args.key_file is not None:
        raise ValueError("--cert-file/--key-file need --ca-file (a client certificate is TLS)")
    return BrokerOptions.model_validate(broker)


def run_serve(args: argparse.Namespace) -> int:
    if args.protocol == "modbus":
        return _run_modbus(args)
    if args.protocol == "opcua":
        return _run_opcua(args)
    if args.security_policy:
        print("vplc sim serve: error: --security-policy: only with --protocol opcua",
              file=sys.stderr)  # fmt: skip
        return EXIT_INVALID
    from sim_hardware.serve import PlantServer, run

    try:
        opts = _options(args)
        PlantServer(opts)  # refuse a bad plant, parameter or initial value before serving
    except (ValueError, ValidationError, DriverError) as exc:
        print(f"vplc sim serve: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"sim serve: {opts.plant} on {opts.broker.endpoint} at {opts.prefix}", flush=True)
    return run(opts)


_MQTT_ONLY = ("broker", "prefix", "username", "ca_file", "cert_file", "key_file")


def _device_endpoint(args: argparse.Namespace, default_port: int) -> tuple[str, int]:
    """--host/--port of a server `sim serve` runs itself; MQTT-only flags refused."""
    given = [f"--{f.replace('_', '-')}" for f in _MQTT_ONLY if getattr(args, f) not in
             (None, "vplc/sim/plant")]  # fmt: skip
    if given or args.allow_insecure or args.allow_unclaimed:
        raise ValueError(f"{', '.join(given) or 'the --allow-* flags'}: MQTT options, "
                         f"not used with --protocol {args.protocol}")  # fmt: skip
    port = default_port if args.port is None else args.port
    if not 1 <= port <= 65535:
        raise ValueError(f"--port {port}: expected 1..65535")
    return args.host or "127.0.0.1", port


def _run_opcua(args: argparse.Namespace) -> int:
    from sim_hardware._opcua_serve import OpcuaPlant, run_opcua

    try:
        host, port = _device_endpoint(args, 4841)
        if args.actuator_timeout is not None:
            raise ValueError(
                "--actuator-timeout: not offered with --protocol opcua (writes come on "
                "change only, so silence is no sign of a lost master)"
            )
        opts = _options(args)
        plant = OpcuaPlant(
            plant=opts.plant, host=host, port=port, seed=opts.seed, params=opts.params,
            initial=opts.initial, noise=opts.noise,
            policies=args.security_policy or ["Basic256Sha256"],
        )  # fmt: skip
    except (ValueError, ValidationError, DriverError) as exc:
        print(f"vplc sim serve: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"sim serve: {opts.plant} on {plant.server.endpoint} "
          f"(policies {', '.join(plant.server.policies)}); nodes:", flush=True)  # fmt: skip
    for channel, node in plant.nodes.items():
        print(f"  {channel}: {node}", flush=True)
    return run_opcua(plant, rate_hz=opts.rate_hz, speed=opts.speed)


def _run_modbus(args: argparse.Namespace) -> int:
    from hal.modbus import ModbusTcpServer
    from sim_hardware._modbus_serve import ModbusPlant, run_modbus

    try:
        if args.security_policy:
            raise ValueError("--security-policy: only with --protocol opcua")
        host, port = _device_endpoint(args, 5020)
        opts = _options(args)  # the plant's options (and their checks) as for MQTT
        plant = ModbusPlant(
            plant=opts.plant, seed=opts.seed, params=opts.params, initial=opts.initial,
            noise=opts.noise, actuator_timeout_s=opts.actuator_timeout_s,
        )  # fmt: skip
    except (ValueError, ValidationError, DriverError) as exc:
        print(f"vplc sim serve: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    server = ModbusTcpServer(plant, host=host, port=port)
    print(f"sim serve: {opts.plant} on modbus {host}:{port} (unit 1); register map:", flush=True)
    for channel, where in plant.map.items():
        print(f"  {channel}: {where}", flush=True)
    return run_modbus(plant, server, rate_hz=opts.rate_hz, speed=opts.speed)


def main(argv: Sequence[str] | None = None, *, prog: str = "vplc-sim-serve") -> int:
    # Standalone (not under vplc's logging set-up): connection events as plain lines.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog=prog, description="serve a simulated plant over MQTT")
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
