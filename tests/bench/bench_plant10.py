"""plant10 (ten skids, 2,610 points): 10 ms scan in real time, Cython vs Python, virtual speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime import RealClock, ScanEngine, VirtualClock, load_app
from runtime.blocks import IMPLEMENTATION
from sim_hardware._accel import implementation as sim_implementation
from tests.bench._util import ROOT, CpuMeter, app_variant, virtual_run

PLANT10 = ROOT / "plc_apps" / "plant10"
REALTIME_S = 10.0
VIRTUAL_S = 120.0


def _ten_ms(manifest: dict[str, Any]) -> None:
    control = next(t for t in manifest["tasks"] if t["name"] == "control")
    control["period_ms"] = 10


def realtime(seconds: float = REALTIME_S, *, fifo: bool = False) -> dict[str, Any]:
    """The control task of all ten reactors at 10 ms, real time, manifest defaults (gc frozen).

    ``fifo``: the scan thread SCHED_FIFO 80 on the last CPU (where the OS permits; the result
    says what was applied), so other processes on a shared machine do not preempt it and the
    execution time is the scan's own work (simulator included).
    """
    app = load_app(app_variant(PLANT10, _ten_ms))
    engine = ScanEngine(app, clock=RealClock())
    if fifo:
        engine.set_realtime(fifo_priority=80, cpus=[(os.cpu_count() or 1) - 1])
    engine.start()
    with CpuMeter() as cpu:
        engine.start_thread()
        time.sleep(seconds)
        engine.request_stop()
        engine.join(5)
    engine.close()
    stats = engine.statistics()
    control = stats["tasks"]["control"]
    return {
        "blocks": IMPLEMENTATION,
        "simulator": sim_implementation(),
        "realtime": stats["realtime"],
        "points": len(app.image),
        "programs": len(app.programs),
        "period_ms": 10,
        "cycles": control["cycles"],
        "overruns": control["overruns"],
        "skipped_releases": control["skipped_releases"],
        "exec_us": {k: control["exec_us"][k] for k in ("p50", "p99", "max")},
        "wake_latency_us": {k: control["wake_latency_us"][k] for k in ("p50", "p99", "max")},
        "sequence_exec_us_p99": stats["tasks"]["sequence"]["exec_us"]["p99"],
        "cpu_percent": cpu.percent,
        "gc_collections": stats["gc_collections"],
        "gc_process_collections": stats["gc_process_collections"],
        "state": stats["state"],
    }


def python_blocks() -> dict[str, Any]:
    """The same run with the pure-Python blocks, in a fresh interpreter (the choice is made
    when runtime.blocks is first imported)."""
    env = os.environ | {"VPLC_BLOCKS": "python", "PYTHONPATH": str(ROOT)}
    code = (
        "import json; from tests.bench.bench_plant10 import realtime; print(json.dumps(realtime()))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=REALTIME_S + 120,
    )
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


def breakdown(cycles: int = 300) -> dict[str, Any]:
    """Where a 10 ms control cycle goes: simulated I/O (ten plants) vs the PLC programs."""
    app = load_app(app_variant(PLANT10, _ten_ms))
    engine = ScanEngine(app, clock=VirtualClock())
    spent = {"read_inputs": 0, "programs": 0, "write_outputs": 0}

    def timed(name: str, fn: Callable[..., None]) -> Callable[..., None]:
        def wrapper(*args: Any) -> None:
            t0 = time.perf_counter_ns()
            fn(*args)
            spent[name] += time.perf_counter_ns() - t0

        return wrapper

    engine.start()
    engine.run_until(10**9)  # warm up
    # Timed through public seams only: the drivers' per-cycle calls and each program's entry.
    for driver in engine.drivers:
        driver.read_inputs = timed("read_inputs", driver.read_inputs)  # type: ignore[method-assign]
        driver.write_outputs = timed("write_outputs", driver.write_outputs)  # type: ignore[method-assign]
    for prog in app.programs.values():
        prog.execute = timed("programs", prog.execute)  # type: ignore[method-assign]
    for task in engine.tasks:
        task.set_programs(list(task.programs))  # rebinds the calls to the timed entries
    n0 = sum(t.stats.cycles for t in engine.tasks)
    engine.run_until(engine.now_ns + cycles * 10_000_000)
    n = sum(t.stats.cycles for t in engine.tasks) - n0
    per_cycle_us = {k: round(v / n / 1000, 1) for k, v in spent.items()}  # before close's write
    engine.close()
    return {"blocks": IMPLEMENTATION, "per_cycle_us": per_cycle_us}


def virtual_speed(app_seconds: float = VIRTUAL_S) -> dict[str, Any]:
    """plant10 as shipped (200 ms control, 1 s sequence) in virtual time."""
    engine, wall = virtual_run(Path(PLANT10), app_seconds)
    cycles = sum(t.stats.cycles for t in engine.tasks)
    return {
        "app_seconds": app_seconds,
        "wall_s": round(wall, 2),
        "speedup_x_real_time": round(app_seconds / wall, 1),
        "cycles_per_wall_s": round(cycles / wall, 1),
        "control_cycles_per_wall_s": round(engine.fastest.stats.cycles / wall, 1),
        "state": engine.state.value,
    }


def run() -> dict[str, Any]:
    return {
        "realtime_10ms_cython": realtime(),
        "realtime_10ms_cython_fifo": realtime(fifo=True),
        "realtime_10ms_python": python_blocks(),
        "breakdown": breakdown(),
        "virtual": virtual_speed(),
    }
