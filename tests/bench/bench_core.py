"""Core figures (issue 2): 1 ms bioreactor wake latency in real time, exec time, virtual speed."""

from __future__ import annotations

import time
from typing import Any

from runtime import RealClock, ScanEngine, load_app
from tests.bench._util import BIOREACTOR, CpuMeter, app_variant, virtual_run

REALTIME_CYCLES = 21_000


def _one_ms(manifest: dict[str, Any]) -> None:
    fastest = min(manifest["tasks"], key=lambda t: t["period_ms"])
    fastest["period_ms"] = 1
    fastest["overrun"] = "skip"


def realtime_latency() -> dict[str, Any]:
    app = load_app(app_variant(BIOREACTOR, _one_ms))
    engine = ScanEngine(app, clock=RealClock())
    task = engine.fastest
    engine.start()
    with CpuMeter() as cpu:
        engine.start_thread()
        while task.stats.cycles < REALTIME_CYCLES and engine.running:
            time.sleep(0.2)
        engine.request_stop()
        engine.join(5)
    engine.close()
    stats = task.stats.as_dict()
    return {
        "task": task.name,
        "period_ms": 1,
        "cycles": stats["cycles"],
        "overruns": stats["overruns"],
        "skipped_releases": stats["skipped_releases"],
        "wake_latency_us": stats["wake_latency_us"],
        "exec_us": stats["exec_us"],
        "cpu_percent": cpu.percent,
        "gc_collections": engine.statistics()["gc_collections"],
        "realtime": engine.realtime_report,
        "state": engine.state.value,
    }


def virtual_speed(app_seconds: float = 3600.0) -> dict[str, Any]:
    engine, wall = virtual_run(BIOREACTOR, app_seconds)
    cycles = sum(t.stats.cycles for t in engine.tasks)
    return {
        "app_seconds": app_seconds,
        "wall_s": round(wall, 2),
        "speedup_x_real_time": round(app_seconds / wall, 1),
        "cycles": cycles,
        "cycles_per_wall_s": round(cycles / wall),
        "fastest_task_cycles_per_wall_s": round(engine.fastest.stats.cycles / wall),
    }


def run() -> dict[str, Any]:
    return {"realtime_1ms": realtime_latency(), "virtual": virtual_speed()}
