"""The ``vplc`` command line: validate and run apps (real or virtual time)."""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from hal import DriverError
from runtime.core._clock import RealClock, VirtualClock
from runtime.core._engine import RuntimeState, ScanEngine
from runtime.core._loader import LoadedApp
from runtime.core._logging import configure_logging
from runtime.core._spin import SpinMode
from runtime.core.manifest import ManifestError
from runtime.host._apps import (
    EXIT_FAILURE,
    EXIT_INVALID,
    EXIT_OK,
    UsageError,
    open_app,
    resolve_app_dir,
)
from runtime.host._cli_audit import add_audit_commands
from runtime.host._cli_batch import add_batch_commands
from runtime.host._cli_change import add_change_commands
from runtime.host._cli_state import (
    add_state_arguments,
    install_online_change,
    load_retain,
    retain_summary,
)
from runtime.host._cli_users import add_users_commands
from runtime.host._connections import connection_lines, mqtt_connections
from runtime.host._heartbeat import Heartbeat
from runtime.host._outpaths import OutputPathError, check_output_file, describe_os_error
from runtime.host._runtime import AssemblyError, Realtime, Runtime
from runtime.host._trace import TraceRecorder
from runtime.ops._audit import AuditError, AuditKeyError
from runtime.state import RetainError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vplc", description="vplc — a virtual PLC runtime")
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    val = sub.add_parser("validate", help="check an app without running it")
    val.add_argument("app", metavar="APP_DIR")

    run = sub.add_parser("run", help="run an app (real time with a live view, or --virtual)")
    run.add_argument("app", metavar="APP_DIR")
    run.add_argument(
        "--virtual",
        action="store_true",
        help="virtual time: run releases back to back as fast as possible",
    )
    run.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this much app time (required with --virtual)",
    )
    run.add_argument(
        "--trace",
        type=Path,
        metavar="FILE.csv",
        help="write one CSV row per cycle of the fastest task",
    )
    run.add_argument("--seed", type=int, default=0, help="seed for the app's random sources")
    run.add_argument("--no-view", action="store_true", help="no live terminal view")
    run.add_argument(
        "--mqtt",
        type=Path,
        metavar="CONFIG.yaml",
        help="publish telemetry and take commands over MQTT (real time only)",
    )
    run.add_argument(
        "--opcua",
        type=Path,
        metavar="CONFIG.yaml",
        help="serve the app over OPC UA: a secured server in its own process (real time only)",
    )
    run.add_argument(
        "--modbus",
        type=Path,
        metavar="CONFIG.yaml",
        help="serve points and parameters as Modbus TCP registers (real time only)",
    )
    run.add_argument(
        "--web",
        metavar="[HOST]:PORT",
        help="serve the web HMI, e.g. :8080 (localhost) or 0.0.0.0:8080 (real time only)",
    )
    run.add_argument(
        "--web-config",
        type=Path,
        metavar="CONFIG.yaml",
        help="the web HMI's options: access file, audit trail, TLS, trends (implies --web)",
    )
    run.add_argument(
        "--stats-json", type=Path, metavar="FILE", help="write the final task statistics as JSON"
    )
    run.add_argument(
        "--heartbeat",
        type=Path,
        metavar="FILE",
        help="write statistics JSON every second (read by the container health check)",
    )
    # Real-time knobs per machine, over the manifest's `realtime` section (DESIGN.md §3).
    run.add_argument(
        "--rt-priority",
        type=_int_range(0, 99),
        metavar="N",
        help="SCHED_FIFO priority of the scan thread, 1–99 (0: normal scheduling)",
    )
    run.add_argument(
        "--cpus", type=_cpu_list, metavar="LIST", help="pin the scan thread, e.g. 1 or 2,3"
    )
    run.add_argument(
        "--spin-us",
        type=_int_range(0, 5000),
        metavar="US",
        help="bound of the spin before each release; alone: a fixed spin of this many µs "
        "(costs CPU); with --spin adaptive: the most the learnt margin may reach",
    )
    run.add_argument(
        "--spin",
        choices=[m.value for m in SpinMode],
        help="adaptive (default without --spin-us): spin a learnt p99.9 of the sleep "
        "lateness; fixed: always --spin-us (or the task's spin_us); off: plain sleep",
    )
    run.add_argument(
        "--rt-auto",
        action=argparse.BooleanOptionalAction,
        default=None,  # None: not given, on in real time (a virtual run refuses it given)
        help="(default on) fill the real-time settings nobody set (SCHED_FIFO 80, pinning to "
        "the last CPU, mlockall) where the OS permits them; one log line says what was applied",
    )
    run.add_argument(
        "--standby",
        action="store_true",
        help="blue-green standby: read inputs, never write outputs until a handover_claim "
        "command over --mqtt (the app needs a driver with output ownership, type mqtt)",
    )
    run.add_argument(
        "--batch-dir",
        type=Path,
        metavar="DIR",
        help="electronic batch records of an app with gmp.batch go here (default "
        "$VPLC_STATE_DIR/batches in real time; a virtual run records only when this is given)",
    )
    add_state_arguments(run)
    add_change_commands(sub)  # `vplc change plan`
    add_audit_commands(sub)  # `vplc audit verify|show`
    add_users_commands(sub)  # `vplc users add|disable|reset|list|...`
    add_batch_commands(sub)  # `vplc batch list|record`
    # Subcommands of other packages (`vplc bench` from runtime.bench, `vplc image`/`deploy` from
    # containers, `vplc sim` from sim_hardware) are found by name, so the host never imports
    # them: each is `register(subparsers) -> None`.
    for ep in entry_points(group="vplc.commands"):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plugin must not take `vplc run` down with it
            print(f"vplc: warning: command plugin {ep.name!r} not loaded: {exc}", file=sys.stderr)
    return parser


MAX_DURATION_S = 1e9  # ~31.7 years: far beyond any run, small enough for integer nanoseconds


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    if value > MAX_DURATION_S:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_DURATION_S:g} seconds (about 31 years), got {text!r}"
        )
    return value


def _nul_argument(argv: Sequence[str]) -> str:
    """Which argument holds a NUL byte, as the message names it ("" when none does)."""
    for i, arg in enumerate(argv):
        if "\x00" in arg:
            flag = argv[i - 1] if i and argv[i - 1].startswith("--") else ""
            return f"argument {i + 1} ({arg!r})" + (f", the value of {flag}," if flag else "")
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    # An OS command line cannot hold a NUL byte; a caller of main() can, and no path may.
    nul = _nul_argument(argv or ())
    if nul:
        print(f"vplc: error: {nul} contains a NUL byte, which no path or name can hold",
              file=sys.stderr)  # fmt: skip
        return EXIT_INVALID
    args = _parser().parse_args(argv)
    configure_logging(args.log_format, level=args.log_level)
    try:
        if getattr(args, "func", None) is not None:
            return int(args.func(args))
        if args.command == "validate":
            return _validate(args)
        return _run(args)
    except (ManifestError, UsageError, DriverError, RetainError, OutputPathError) as exc:
        print(f"vplc: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (AuditError, AuditKeyError) as exc:  # no record, no action: refuse to run
        print(f"vplc: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # Ctrl-C in a virtual run: outputs went safe on the way out
        print("vplc: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # A path the OS refuses to even look up (a name over NAME_MAX) is the caller's typo,
        # wherever a command first touches it (Path.exists()/is_file() raise it).
        if exc.errno != errno.ENAMETOOLONG:
            raise
        print(f"vplc: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID


def check_before_run(app: LoadedApp) -> None:
    """What ``vplc run`` checks of an app beyond ``load_app``, so ``validate`` refuses it too."""
    from runtime.state.retain import retained_leaves

    retained_leaves(app)  # retain paths resolve only against the built programs


def _validate(args: argparse.Namespace) -> int:
    app = open_app(resolve_app_dir(args.app))
    check_before_run(app)
    m = app.manifest
    print(
        f"{app.app_dir / 'app.yaml'}: OK — {m.name} {m.version}: {len(m.tasks)} task(s), "
        f"{len(m.programs)} program(s), {len(m.points)} point(s), "
        f"{len(m.parameters)} parameter(s), drivers: {', '.join(m.drivers)}"
    )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if args.virtual and args.duration is None:
        raise UsageError("--virtual needs --duration SECONDS (virtual time has no Ctrl-C)")
    if args.virtual and args.mqtt:
        raise UsageError("--mqtt needs real time: a virtual run has no wall-clock telemetry")
    if args.virtual and args.modbus:
        raise UsageError("--modbus needs real time: a virtual run has no wall clock to serve in")
    if args.virtual and args.opcua:
        raise UsageError("--opcua needs real time: a virtual run is too fast for a client")
    if args.virtual and (args.web or args.web_config):
        raise UsageError("--web needs real time: a virtual run is too fast for a browser")
    if args.virtual and _realtime_flags(args):
        raise UsageError(
            f"{', '.join(_realtime_flags(args))}: real-time scheduling of the scan thread; a "
            "virtual run has no scan thread and would ignore them (drop them, or run without "
            "--virtual)"
        )
    app = open_app(resolve_app_dir(args.app), seed=args.seed)
    check_before_run(app)  # also where no retain file is used (a virtual run)
    gmp = app.manifest.gmp
    if args.batch_dir is not None and (gmp is None or gmp.batch is None):
        raise UsageError(
            f"--batch-dir {args.batch_dir}: {app.app_dir / 'app.yaml'} has no gmp.batch "
            "section, so the run keeps no batch records to write there"
        )
    modbus_config = _load_modbus_config(args.modbus, app) if args.modbus else None
    _check_outputs(args)  # before anything is opened or started: a typo costs no run
    mqtt_config = _load_mqtt_config(args.mqtt) if args.mqtt else None  # before any state
    opcua_config = _load_opcua_config(args.opcua) if args.opcua else None
    web_config = _load_web_config(args) if args.web or args.web_config else None
    trace = None
    if args.trace is not None:
        try:
            trace = TraceRecorder(
                args.trace, app.image, threaded=not args.virtual, parameters=app.parameters
            )
        except OSError as exc:
            raise UsageError(f"--trace {args.trace}: cannot write: {exc.strerror}") from None
    retain = load_retain(app, args)  # a bad retain file stops here, nothing started
    if args.standby and not args.mqtt:
        raise UsageError("--standby needs --mqtt: the handover commands arrive over MQTT")
    if args.standby and getattr(mqtt_config, "sparkplug", None) is not None:
        raise UsageError(
            f"--standby needs the JSON bridge: {args.mqtt} has sparkplug:, and the handover "
            "commands are not Sparkplug metrics"
        )
    try:
        runtime = Runtime(
            app,
            clock=VirtualClock() if args.virtual else RealClock(),
            trace=trace,
            retain=retain,
            standby=args.standby,
            mqtt=mqtt_config,
            opcua=opcua_config,
            log_format=args.log_format,
            heartbeat=args.heartbeat,
            realtime=Realtime(
                fifo_priority=args.rt_priority,
                cpus=args.cpus,
                spin_us=args.spin_us,
                spin_mode=SpinMode(args.spin) if args.spin else None,
                auto=args.rt_auto is not False,
            ),
            modbus=modbus_config,
            batch_dir=_batch_dir(args, app),
            web=web_config,
        )
    except AssemblyError as exc:
        flag = {
            "mqtt": "--mqtt: ",
            "opcua": "--opcua: ",
            "modbus": f"--modbus {args.modbus}: ",
            "web": f"--web-config {args.web_config}: " if args.web_config else "--web: ",
            "batch": f"{app.app_dir / 'app.yaml'}: gmp.batch: ",
        }
        raise UsageError(f"{flag.get(exc.part, '')}{exc}") from None
    engine, heartbeat = runtime.engine, runtime.heartbeat
    runtime.start()
    if runtime.web is not None:
        _announce_web(runtime.web)
    wall0 = time.perf_counter()
    try:
        if args.virtual:
            runtime.run_until(round(args.duration * 1e9))
        else:
            _run_realtime(engine, app, args, runtime.audit)
    finally:
        runtime.close()
    wall = time.perf_counter() - wall0
    stats = engine.statistics()
    stats["wall_s"] = round(wall, 3)
    stats["mqtt"] = mqtt_connections()
    if args.virtual:
        cycles = sum(t["cycles"] for t in stats["tasks"].values())
        stats["virtual_speedup"] = round(stats["app_time_s"] / wall, 1) if wall else None
        stats["cycles_per_wall_s"] = round(cycles / wall) if wall else None
    errors = _output_errors(args, trace, heartbeat, stats)
    if runtime.batches is not None:
        errors += [f"batch record not written: {e}" for e in runtime.batches.errors]
    _print_summary(stats, trace)
    if runtime.batches is not None:
        for path in runtime.batches.written:
            print(f"batch record: {path}")
    for line in errors:
        print(f"vplc: error: {line}", file=sys.stderr)
    failed = stats["fault_reason"] or engine.state is RuntimeState.FAULT
    # Lost durability is a failed run too: the retained values on disk are behind.
    lost = retain is not None and stats["retain"]["errors"] > 0
    return EXIT_FAILURE if failed or lost or errors else EXIT_OK


def _realtime_flags(args: argparse.Namespace) -> list[str]:
    """The real-time knobs given (they apply to the scan thread of a real-time run only)."""
    given = {
        "--rt-priority": args.rt_priority,
        "--cpus": args.cpus,
        "--spin-us": args.spin_us,
        "--spin": args.spin,
        "--rt-auto": args.rt_auto or None,  # only when given: real time turns it on anyway
    }
    return [flag for flag, value in given.items() if value is not None]


def _batch_dir(args: argparse.Namespace, app: LoadedApp) -> Path | None:
    """Where batch records go: --batch-dir; in real time the state dir's by default."""
    gmp = app.manifest.gmp
    if gmp is None or gmp.batch is None:
        return None
    if args.batch_dir is not None:
        return Path(args.batch_dir)
    if args.virtual:
        return None
    from runtime.ops._batch_store import default_batch_dir

    return default_batch_dir()


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output path is proven writable before RUN (OutputPathError: exit 2)."""
    if args.trace is not None:
        check_output_file("--trace", args.trace)
    if args.stats_json is not None:
        check_output_file("--stats-json", args.stats_json)
    if args.heartbeat is not None:
        check_output_file("--heartbeat", args.heartbeat, replaced=True)
    if args.batch_dir is not None:
        try:
            args.batch_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--batch-dir {args.batch_dir}: cannot create the directory: "
                f"{describe_os_error(exc)}"
            ) from None


def _output_errors(
    args: argparse.Namespace,
    trace: TraceRecorder | None,
    heartbeat: Heartbeat | None,
    stats: dict[str, Any],
) -> list[str]:
    """Write the stats JSON; one line per output that failed during the run or at close."""
    errors = []
    if trace is not None and trace.error:
        errors.append(
            f"--trace {trace.path}: write failed: {trace.error}; the file is incomplete "
            f"({trace.rows} rows recorded, {trace.dropped} dropped after the error)"
        )
    if heartbeat is not None and heartbeat.error:
        errors.append(
            f"--heartbeat {heartbeat.path}: the final write failed: {heartbeat.error} "
            f"({heartbeat.failures} failed writes in the run)"
        )
    if args.stats_json:
        try:
            args.stats_json.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            errors.append(f"--stats-json {args.stats_json}: write failed: {describe_os_error(exc)}")
    return errors


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {lo}..{hi}, got {value}")
        return value

    return parse


def _cpu_list(text: str) -> list[int]:
    try:
        cpus = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected CPU numbers like 1 or 2,3, got {text!r}"
        ) from None
    if any(c < 0 for c in cpus):
        raise argparse.ArgumentTypeError(f"CPU numbers are >= 0, got {text!r}")
    return cpus


def _load_mqtt_config(path: Path) -> Any:
    from runtime.mqtt import load_mqtt_config  # only a run with MQTT pays for the import

    return _load_config(path, load_mqtt_config, "MQTT config")


def _load_modbus_config(path: Path, app: LoadedApp) -> Any:
    """The Modbus server's file checked against the app; invalid input is exit 2."""
    from runtime.modbus import ModbusConfigError, load_modbus_config

    try:
        return load_modbus_config(path, app)
    except ModbusConfigError as exc:
        raise UsageError(str(exc)) from None


def _load_opcua_config(path: Path) -> Any:
    from runtime.opcua import load_opcua_config  # only a run with OPC UA pays for the import

    return _load_config(path, load_opcua_config, "OPC UA config")


def _load_web_config(args: argparse.Namespace) -> Any:
    from runtime.web import load_web_config  # only a run with the HMI pays for the import

    if args.web is not None:
        from runtime.web import parse_listen

        try:
            parse_listen(args.web)
        except ValueError as exc:
            raise UsageError(f"--web {args.web}: {exc}") from None
    path = args.web_config
    label = path if path is not None else Path(f"--web {args.web}")
    return _load_config(label, lambda _p: load_web_config(path, listen=args.web), "web HMI config")


def _announce_web(web: Any) -> None:
    """The URL on stderr (the live view owns stdout), once the server listens."""
    started = web.wait_started(15.0)
    note = "" if started else " (not answering yet: see the log)"
    print(f"vplc: web HMI at {web.url}{note}", file=sys.stderr, flush=True)


def _load_config(path: Path, load: Callable[[Path], Any], what: str) -> Any:
    """A front-end's config file; a bad one is invalid input (exit 2), named by its path."""
    from pydantic import ValidationError

    from runtime.core.manifest import format_validation_error

    try:
        return load(path)
    except ValidationError as exc:
        raise UsageError(
            f"{path}: invalid {what}: " + "; ".join(format_validation_error(exc))
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot use as {what}: {exc}") from None


def _run_realtime(
    engine: ScanEngine, app: LoadedApp, args: argparse.Namespace, audit: Any = None
) -> None:
    """Scan in its own thread; the main thread shows the view until Ctrl-C/SIGTERM/duration."""
    stop = {"requested": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    install_online_change(
        engine, app.app_dir, prefer=args.prefer, strict=args.strict_change, audit=audit
    )
    # The scan thread ends the run itself at app time --duration, as in virtual time: a
    # deadline on this thread's clock raced the scan's epoch for the cycle released at the
    # end (SCHED_FIFO made the scan win), so that cycle ran in some runs and not in others.
    engine.start_thread(round(args.duration * 1e9) if args.duration else None)

    def keep_going() -> bool:
        return engine.running and not stop["requested"]

    if args.no_view or not sys.stdout.isatty():
        while keep_going():
            time.sleep(0.05)
    else:
        from runtime.host._view import show_live

        show_live(engine, keep_going)  # fitted to the terminal; key i: the whole I/O list
    structlog.get_logger("vplc.cli").info(
        "stopping", app=app.name, reason="signal" if stop["requested"] else "duration"
    )
    engine.request_stop()
    engine.join(timeout=5.0)


def _print_summary(stats: dict[str, Any], trace: TraceRecorder | None) -> None:
    print(
        f"\n{stats['app']} {stats['version']}: state {stats['state']} after "
        f"{stats['app_time_s']:.3f} s app time ({stats['wall_s']} s wall)"
        + (f" — fault: {stats['fault_reason']}" if stats["fault_reason"] else "")
    )
    if "virtual_speedup" in stats:
        print(
            f"virtual time: {stats['virtual_speedup']}x real time, "
            f"{stats['cycles_per_wall_s']} cycles per wall second"
        )
    print(
        f"{'task':<12}{'period ms':>10}{'cycles':>10}{'overruns':>9}"
        f"{'exec avg/p99/max µs':>24}{'latency p50/p99/max µs':>26}"
    )
    for name, t in stats["tasks"].items():
        ex, lat = t["exec_us"], t["wake_latency_us"]
        print(
            f"{name:<12}{t['period_ms']:>10g}{t['cycles']:>10}{t['overruns']:>9}"
            f"{ex['avg']:>10.1f}/{ex['p99']:.1f}/{ex['max']:.1f}".ljust(0)
            + f"{lat['p50']:>12.1f}/{lat['p99']:.1f}/{lat['max']:.1f}"
        )
    if trace is not None:
        print(f"trace: {trace.path} ({trace.rows} rows)")
    bad = stats.get("outputs", {})
    if bad.get("invalid_writes"):
        print(
            f"outputs: {bad['invalid_writes']} invalid write(s) in {bad['invalid_episodes']} "
            f"episode(s), handled by on_invalid: {', '.join(bad['points'])}"
        )
    for hook, count in stats.get("hook_errors", {}).items():
        print(f"cycle hook {hook} failed {count} time(s) (see the log)")
    if "retain" in stats:
        print(retain_summary(stats["retain"]))
    for line in connection_lines(stats.get("mqtt", [])):
        print(line)
    print("outputs: driven to safe values")


if __name__ == "__main__":
    sys.exit(main())
