"""State figures (issues 3, 12): online-change prepare and switch time with the state merge,
late cycles, retain writes."""

from __future__ import annotations

import gc
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime import RealClock, ScanEngine, VirtualClock, load_app
from runtime.state import RetainStore, apply_change, prepare_change
from tests.bench._util import BIOREACTOR
from tests.conftest import memory_manifest, write_app
from tests.runtime.state import probe
from tests.runtime.state.test_online_change_rt import RT_LOGIC

PERIOD_NS = 10_000_000
CHANGES = 100
RETAINED = 1000
RT = {"gc_freeze": True, "fifo_priority": 50}  # falls back (with a warning) where refused


def _us(ns: list[int] | list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(ns) / 1000, 1),
        "p90": round(sorted(ns)[int(len(ns) * 0.9)] / 1000, 1),
        "max": round(max(ns) / 1000, 1),
    }


def _lateness(engine: ScanEngine) -> tuple[int, int, dict[int, int]]:
    """(late cycles, skipped releases, release → start) of a run recorded by the probe."""
    starts = dict(probe.STARTS)
    releases = sorted(starts)
    late = sum(1 for r in releases if starts[r] - (engine.epoch_ns + r) > PERIOD_NS)
    gaps = sum((b - a) // PERIOD_NS - 1 for a, b in itertools.pairwise(releases))
    return late, gaps, starts


def idle_baseline(app_dir: Path, seconds: float) -> dict[str, Any]:
    """The same app for the same time without any change: this VM's own stalls."""
    probe.STARTS.clear()
    engine = ScanEngine(load_app(app_dir), clock=RealClock())
    engine.start()
    engine.start_thread()
    time.sleep(seconds)
    engine.request_stop()
    engine.join(5)
    engine.close()
    late, gaps, starts = _lateness(engine)
    return {"cycles": len(starts), "late_cycles": late, "skipped_releases": gaps}


def online_changes() -> dict[str, Any]:
    """100 consecutive changes (prepare off-thread, swap between cycles) at a 10 ms period."""
    root = Path(tempfile.mkdtemp(prefix="vplc-bench-state-"))
    dirs = [
        write_app(root / f"v{i}", memory_manifest(version=f"1.0.{i}", realtime=RT), RT_LOGIC)
        for i in range(CHANGES + 1)
    ]
    probe.STARTS.clear()
    engine = ScanEngine(load_app(dirs[0]), clock=RealClock())
    engine.start()
    prepare_ns: list[int] = []
    reports = []
    engine.start_thread()
    time.sleep(0.2)
    for app_dir in dirs[1:]:
        t0 = time.perf_counter_ns()
        prepared = prepare_change(engine, app_dir)
        prepare_ns.append(time.perf_counter_ns() - t0)
        report = apply_change(engine, prepared)
        report.wait(2.0)
        reports.append(report)
    time.sleep(0.05)
    engine.request_stop()
    engine.join(5)
    engine.close()
    late_all, gaps, starts = _lateness(engine)
    wall_s = (engine.now_ns + PERIOD_NS) / 1e9
    swap_cycles = [r.swap_app_ns + PERIOD_NS for r in reports]
    late_swap = sum(
        1 for s in swap_cycles if s not in starts or starts[s] - (engine.epoch_ns + s) > PERIOD_NS
    )
    wake = [starts[s] - (engine.epoch_ns + s) for s in swap_cycles if s in starts]
    return {
        "sched": engine.realtime_report.get("sched", ""),
        "changes": CHANGES,
        "committed": sum(r.status == "committed" for r in reports),
        "period_ms": PERIOD_NS / 1e6,
        "prepare_us": _us(prepare_ns),
        "switch_us": _us([r.switch_ns for r in reports]),
        "state_leaves_transferred": reports[-1].counts.get("matched", 0),
        "swap_cycle_start_after_release_us": _us(wake),
        "late_swap_cycles": late_swap,
        "late_cycles_whole_run": late_all,
        "skipped_releases_whole_run": gaps,
        "cycles": len(starts),
        "idle_baseline_same_duration": idle_baseline(dirs[0], wall_s),
    }


RETAIN_LOGIC = f"""
from runtime import Program

class Main(Program):
    VARS = {{f"v{{i}}": float(i) for i in range({RETAINED})}}

    def execute(self, ctx):
        self.v0 += 1.0
"""


def retain_writes() -> dict[str, Any]:
    """Capture (scan side) and crash-safe write (writer side) of 1,000 retained variables."""
    root = Path(tempfile.mkdtemp(prefix="vplc-bench-retain-"))
    retain = {"variables": [f"main.v{i}" for i in range(RETAINED)], "interval_s": 1.0}
    app_dir = write_app(root / "app", memory_manifest(retain=retain), RETAIN_LOGIC)
    app = load_app(app_dir)
    store = RetainStore(root / "retain.json", app)
    store.load(mode="cold")
    engine = ScanEngine(app, clock=VirtualClock())
    store.attach(engine)
    capture_ns, write_ns = [], []
    size = 0
    for _ in range(30):
        t0 = time.perf_counter_ns()
        state = store.capture()
        t1 = time.perf_counter_ns()
        size = store.write(state)
        capture_ns.append(t1 - t0)
        write_ns.append(time.perf_counter_ns() - t1)
    engine.close()
    report = RetainStore(root / "retain.json", load_app(app_dir)).load()
    return {
        "retained_variables": len(store.variables),
        "file_bytes": size,
        "capture_on_scan_thread_us": _us(capture_ns),
        "write_off_thread_us": _us(write_ns),
        "warm_restored": report.restored,
    }


def retain_scan_cost(app_dir: Path = BIOREACTOR, calls: int = 100_000) -> dict[str, Any]:
    """What retain at its 1 s default costs the scan thread (issue 13), on the bioreactor.

    Every cycle of the fastest task pays the hook's due-check; once a second it also pays a
    checkpoint (capture the retained leaves + hand them to the writer thread). The write itself
    is off the scan thread and reported separately.
    """
    root = Path(tempfile.mkdtemp(prefix="vplc-bench-retain-cost-"))
    app = load_app(app_dir)
    store = RetainStore(root / "app.retain", app)
    store.load(mode="cold")
    engine = ScanEngine(app, clock=VirtualClock())
    store.attach(engine)
    engine.start()
    engine.run_until(10**9)  # the start-up checkpoint and one periodic one are behind us
    assert store.flush()
    hook, task = engine.fastest.hooks[-1], engine.fastest
    not_due = engine.now_ns  # before the next due time: the per-cycle path
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        hook(task, not_due)
    per_cycle_ns = (time.perf_counter_ns() - t0) / calls
    checkpoint_ns = []
    for _ in range(200):
        assert store.flush()
        t1 = time.perf_counter_ns()
        store._submit(store.capture())  # exactly what the hook does when a checkpoint is due
        checkpoint_ns.append(time.perf_counter_ns() - t1)
    assert store.flush()
    engine.close()
    stats = store.statistics()
    interval_s = app.manifest.retain.interval_s
    per_second_us = statistics.median(checkpoint_ns) / 1000 / interval_s
    cycles_per_s = 1e9 / task.period_ns
    return {
        "app": app.name,
        "interval_s": interval_s,
        "retained_leaves": stats["variables"],
        "file_bytes": (root / "app.retain").stat().st_size,
        "hook_per_cycle_ns": round(per_cycle_ns, 1),
        "checkpoint_on_scan_thread_us": _us(checkpoint_ns),
        "write_off_thread_ms": stats["last_write_ms"],
        "scan_thread_us_per_second": round(per_second_us + per_cycle_ns * cycles_per_s / 1000, 1),
        "scan_thread_share_percent": round(
            (per_second_us + per_cycle_ns * cycles_per_s / 1000) / 1e4, 4
        ),
        "write_errors": stats["errors"],
    }


def switch_cost(leaves: int = RETAINED, changes: int = 20) -> dict[str, Any]:
    """Prepare (pure CPU, no wait for a cycle boundary) and swap cost with 1,000 state leaves."""
    root = Path(tempfile.mkdtemp(prefix="vplc-bench-switch-"))
    logic = RETAIN_LOGIC.replace(f"range({RETAINED})", f"range({leaves})")
    dirs = [
        write_app(root / f"v{i}", memory_manifest(version=f"1.0.{i}"), logic)
        for i in range(changes + 1)
    ]
    engine = ScanEngine(load_app(dirs[0]), clock=VirtualClock())
    engine.start()
    engine.run_until(PERIOD_NS)
    prepare_ns, switch_ns = [], []
    gc.collect()
    gc.disable()  # as in a real-time scan (GcControl), so a collection is not timed as a swap
    try:
        for app_dir in dirs[1:]:
            t0 = time.perf_counter_ns()
            prepared = prepare_change(engine, app_dir)
            prepare_ns.append(time.perf_counter_ns() - t0)
            switch_ns.append(apply_change(engine, prepared).switch_ns)
            engine.run_until(engine.now_ns + 2 * PERIOD_NS)
    finally:
        gc.enable()
    return {"state_leaves": leaves, "prepare_us": _us(prepare_ns), "switch_us": _us(switch_ns)}


MERGE_CHANGES = 30
MERGE_LOGIC = """
import time
from runtime import Program
from tests.runtime.state import probe

VERSION = {version}


class Main(Program):
    VARS = {{
        f"v{{i}}": float(VERSION * 10_000 + i) if i <= {changed} else float(i)
        for i in range({leaves})
    }}

    def execute(self, ctx):
        probe.STARTS.append((ctx.now_ns, time.monotonic_ns()))
        self.v0 += 1.0
"""


def _merge_logic(version: int, leaves: int = RETAINED, changed: int = 100) -> str:
    """Version ``version`` of a 1,000-variable program: each version gives v1..v100 (and v0,
    which the logic changes every cycle: a conflict) new initial values. A comprehension, not
    a literal: compiling a 1,000-entry literal holds the GIL for 20–50 ms (see the report)."""
    return MERGE_LOGIC.format(version=version, leaves=leaves, changed=changed)


def online_changes_with_merge() -> dict[str, Any]:
    """30 online changes of a 1,000-variable app at a 10 ms period, each changing 101 initial
    values (100 new values, 1 conflict): late cycles (goal 0) and the scan-visible switch."""
    root = Path(tempfile.mkdtemp(prefix="vplc-bench-merge-"))
    dirs = [
        write_app(root / f"v{i}", memory_manifest(version=f"1.0.{i}", realtime=RT),
                  _merge_logic(i))
        for i in range(MERGE_CHANGES + 1)
    ]  # fmt: skip
    probe.STARTS.clear()
    engine = ScanEngine(load_app(dirs[0]), clock=RealClock())
    engine.start()
    engine.start_thread()
    time.sleep(0.2)
    prepare_ns, reports = [], []
    for app_dir in dirs[1:]:
        t0 = time.perf_counter_ns()
        prepared = prepare_change(engine, app_dir)
        prepare_ns.append(time.perf_counter_ns() - t0)
        report = apply_change(engine, prepared)
        report.wait(2.0)
        reports.append(report)
    time.sleep(0.05)
    engine.request_stop()
    engine.join(5)
    engine.close()
    late_all, gaps, starts = _lateness(engine)
    swap_cycles = [r.swap_app_ns + PERIOD_NS for r in reports]
    late_swap = sum(
        1 for s in swap_cycles if s not in starts or starts[s] - (engine.epoch_ns + s) > PERIOD_NS
    )
    wall_s = (engine.now_ns + PERIOD_NS) / 1e9
    counts = reports[-1].plan.get("counts", {})
    program = engine.app.programs["main"]
    return {
        "sched": engine.realtime_report.get("sched", ""),
        "changes": MERGE_CHANGES,
        "committed": sum(r.status == "committed" for r in reports),
        "period_ms": PERIOD_NS / 1e6,
        "state_variables": RETAINED,
        "plan_per_change": {k: counts.get(k, 0) for k in ("kept", "new_value", "conflict")},
        "new_values_taken": program.v100 == float(MERGE_CHANGES * 10_000 + 100),
        "prepare_us": _us(prepare_ns),
        "switch_us": _us([r.switch_ns for r in reports]),
        "late_swap_cycles": late_swap,
        "late_cycles_whole_run": late_all,
        "skipped_releases_whole_run": gaps,
        "cycles": len(starts),
        "idle_baseline_same_duration": idle_baseline(dirs[0], wall_s),
    }


def run() -> dict[str, Any]:
    return {
        "online_change": online_changes(),
        "online_change_1000_leaves": switch_cost(),
        "online_change_merge_1000_variables": online_changes_with_merge(),
        "retain": retain_writes(),
        "retain_default_interval_scan_cost": retain_scan_cost(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
