"""Run a campaign's matrix in parallel processes (here, or on a Dask cluster), each run isolated.

Every run goes to a process of its own with a time limit, so a run that crashes the
interpreter or hangs is killed and reported with its seed while the campaign goes on. On
this machine the runs fork from a forkserver that has the runtime and the app's driver
modules imported (milliseconds per run); where a process may not have children of its own (a
Dask worker is a daemon) the run is a fresh interpreter (``python -m runtime.bench._campaign``,
about a second more).

The runs start longest first (by the scenario's declared duration: LPT scheduling), so the
last runs to start are the short ones and no worker idles for long at the end while another
finishes an hour-long scenario. Each outcome carries its process's CPU time (``cpu_s``), from
which the ideal speed-up is known independently of what else loads the machine.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from typing import Any

from runtime.bench._campaign_spec import RunSpec

__all__ = ["execute_run", "run_isolated", "run_matrix", "schedule"]

Progress = Callable[[dict[str, Any]], None]
_CHILD_PRELOAD = [
    "runtime.bench._runner",
    "runtime.bench._campaign_spec",
    "runtime.bench._campaign",
]


def execute_run(spec: RunSpec) -> dict[str, Any]:
    """Run one cell in this process: the figures the summary needs, never a raised error."""
    from runtime.bench._runner import run_scenario

    t0 = time.perf_counter()
    try:
        result = run_scenario(spec.build(), record=False)
    except Exception as exc:  # an invalid cell was caught before; this is the app failing
        return _outcome(spec, "error", time.perf_counter() - t0, detail=repr(exc))
    responses = {
        a.label: round(a.t - (a.window[0] if a.window else 0.0), 6)
        for a in result.assertions
        if a.kind == "eventually" and a.passed and a.t is not None
    }
    status = "pass" if result.passed and not result.expression_errors else "fail"
    return _outcome(
        spec,
        status,
        result.wall_s,
        failures=list(result.failures),
        sim_s=result.sim_s,
        responses=responses,
        # CPU of this process since it started (a forked run: since the fork), all threads
        cpu_s=round(time.process_time(), 4),
    )


def _outcome(spec: RunSpec, status: str, wall_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "index": spec.index,
        "scenario": spec.scenario,
        "seed": spec.seed,
        "fault": spec.fault,
        "at_s": spec.at_s,
        "status": status,
        "wall_s": round(wall_s, 4),
        "failures": [],
        "responses": {},
        "detail": "",
        "cpu_s": None,
    } | extra


def _run_logs(log_format: str) -> None:
    """A run logs its warnings and errors on stderr, in the campaign's format.

    A run's process does not inherit the command's logging set-up (the forkserver or the
    interpreter is a fresh one): without this, every run printed its start-up lines on the
    campaign's stdout, unformatted. Its info lines (lifecycle) are left out: the progress
    line says the same once per run.
    """
    from runtime.core._logging import configure_logging

    configure_logging("json" if log_format == "json" else "console", level="warning")


def _child(spec: RunSpec, conn: Any, log_format: str) -> None:
    _run_logs(log_format)
    try:
        conn.send(execute_run(spec))
    except BaseException:  # pragma: no cover - reported by the parent as a crash
        conn.send({"crash_traceback": traceback.format_exc()})
    finally:
        conn.close()


def run_isolated(spec: RunSpec, timeout_s: float, log_format: str = "console") -> dict[str, Any]:
    """Run one cell in a process of its own; a crash or a hang becomes a reported outcome."""
    if multiprocessing.current_process().daemon:
        return _run_interpreter(spec, timeout_s, log_format)
    ctx = _forkserver(spec.preload)
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(spec, writer, log_format), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    writer.close()
    try:
        if reader.poll(timeout_s):
            try:
                got: dict[str, Any] = reader.recv()
            except EOFError:  # died before sending: a crash (segfault, os._exit)
                got = {}
        else:
            got = {"timeout": True}
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        reader.close()
    return _verdict(spec, got, proc.exitcode, time.perf_counter() - t0, timeout_s)


def _forkserver(preload: tuple[str, ...]) -> Any:
    # Takes effect when the forkserver starts (the first run of this process): a module
    # that fails to import there is simply imported by each run instead.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_CHILD_PRELOAD + list(preload))
    return ctx


def _verdict(
    spec: RunSpec, got: dict[str, Any], exitcode: int | None, wall: float, timeout_s: float
) -> dict[str, Any]:
    # process_s: the run's whole process as its worker waited for it (start-up included)
    if got.get("timeout"):
        out = _outcome(spec, "timeout", wall, detail=f"killed after the {timeout_s:g} s limit")
    elif "status" in got:
        out = got
    else:
        why = got.get("crash_traceback") or f"the run's process died (exit code {exitcode})"
        out = _outcome(spec, "crash", wall, detail=str(why)[-2000:])
    return out | {"process_s": round(wall, 4)}


def _run_interpreter(spec: RunSpec, timeout_s: float, log_format: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "runtime.bench._campaign", log_format]
    try:
        res = subprocess.run(
            cmd, input=json.dumps(asdict(spec)), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return _verdict(spec, {"timeout": True}, None, time.perf_counter() - t0, timeout_s)
    lines = res.stdout.strip().splitlines()
    try:
        got = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        got = {}
    if not got and res.stderr:
        got = {"crash_traceback": res.stderr[-2000:]}
    return _verdict(spec, got, res.returncode, time.perf_counter() - t0, timeout_s)


def run_matrix(
    runs: list[RunSpec],
    *,
    workers: int,
    timeout_s: float,
    engine: str = "local",
    scheduler: str | None = None,
    progress: Progress | None = None,
    log_format: str = "console",
) -> list[dict[str, Any]]:
    """Every run's outcome, in matrix order; ``engine`` "local" or "dask".

    The runs start in ``schedule`` order (longest first); ``progress`` sees each outcome as
    it completes.
    """
    ordered = schedule(runs)
    stream = (
        _dask(ordered, workers, timeout_s, scheduler, log_format)
        if engine == "dask"
        else _local(ordered, workers, timeout_s, log_format)
    )
    outcomes: list[dict[str, Any]] = []
    for outcome in stream:
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return sorted(outcomes, key=lambda o: int(o["index"]))


def schedule(runs: list[RunSpec]) -> list[RunSpec]:
    """Longest declared duration first, then matrix order (LPT: the tail is a short run).

    In matrix order an hour-long scenario can be the last to start, and one worker then
    idles while another runs it: with K workers, LPT's makespan is within 4/3 of the best.
    """
    return sorted(runs, key=lambda r: (-r.duration_s, r.index))


def _local(
    runs: list[RunSpec], workers: int, timeout_s: float, log_format: str
) -> Iterator[dict[str, Any]]:
    # Threads only wait on their run's process: the work is in the processes.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_isolated, spec, timeout_s, log_format) for spec in runs]
        for fut in as_completed(futures):
            yield fut.result()


def _dask(
    runs: list[RunSpec], workers: int, timeout_s: float, scheduler: str | None, log_format: str
) -> Iterator[dict[str, Any]]:
    # Untyped library: reached through Any (an optional extra, imported only here).
    dist: Any = importlib.import_module("distributed")
    cluster = None
    if scheduler is None:  # no cluster given: one on this machine, as many workers as asked
        cluster = dist.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
    client = dist.Client(scheduler or cluster)
    try:
        # Dask runs higher priorities first: the scheduled order, longest first.
        futures = [
            client.submit(
                run_isolated,
                spec,
                timeout_s,
                log_format,
                pure=False,
                key=f"vplc-run-{spec.index}",
                priority=len(runs) - rank,
            )
            for rank, spec in enumerate(runs)
        ]
        for fut in dist.as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _main() -> int:
    """``python -m runtime.bench._campaign [FORMAT]``: one run, its RunSpec as JSON on stdin."""
    _run_logs(sys.argv[1] if len(sys.argv) > 1 else "console")
    spec = RunSpec(**json.loads(sys.stdin.read()))
    print(json.dumps(execute_run(spec)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
