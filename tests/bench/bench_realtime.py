"""Wake-up strategies (DESIGN.md §3) on a 1 ms bioreactor task, against cyclictest's floor."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import Any

from runtime import RealClock, ScanEngine, load_app
from runtime.core._clock import Waker
from runtime.core._spin import SpinMode
from tests.bench._util import BIOREACTOR, CpuMeter, app_variant

CYCLES = 21_000  # 20,000 measured after ~1 s of start-up, at 1 ms
CPU = 1  # the second core: the first takes the kernel's and the bench's own housekeeping
_LINUX_DEFAULT_SLACK_NS = 50_000

# spin_us is the bound of the spin; "mode" how it is used (runtime/core/_spin.py).
_PLAIN: dict[str, Any] = {"fifo": 0, "cpus": [], "gc": False, "slack": 0}
# FIFO 80, pinned, no timer slack, GC frozen, mlockall and a 0 µs CPU wake-up latency limit:
# what cyclictest -m -p80 -a holds while it measures, and what vplc run applies where permitted
_TUNED: dict[str, Any] = {
    "fifo": 80,
    "cpus": [CPU],
    "gc": True,
    "slack": 1,
    "cpu_latency_us": 0,
    "lock_memory": True,
}
_ADAPTIVE_TUNED = {"spin_us": 200, "mode": "adaptive", **_TUNED}
VARIANTS: dict[str, dict[str, Any]] = {
    "a_plain_sleep": {"spin_us": 0, "mode": "off", **_PLAIN},
    "b_sleep_spin_200us": {"spin_us": 200, "mode": "fixed", **_PLAIN},
    "c_spin_fifo80_pinned_gc_frozen": {"spin_us": 200, "mode": "fixed", **_TUNED},
    # vplc run's default now: adaptive spin bounded by 200 µs, best settings the OS permits
    "d_adaptive_fifo80_pinned_gc_frozen": _ADAPTIVE_TUNED,
    # the same waiting in Python (threading.Lock) instead of the compiled futex wait
    "d1_adaptive_fifo80_pinned_python_wait": {**_ADAPTIVE_TUNED, "python_wait": True},
    # the same without the CPU wake-up latency limit (cyclictest holds one while it measures)
    "d0_adaptive_fifo80_pinned_no_cpu_latency": {
        k: v for k, v in _ADAPTIVE_TUNED.items() if k != "cpu_latency_us"
    },
    "e_adaptive_default_scheduling": {"spin_us": 200, "mode": "adaptive", **_PLAIN},
}


def _variant(cfg: dict[str, Any]) -> Any:
    def edit(manifest: dict[str, Any]) -> None:
        fastest = min(manifest["tasks"], key=lambda t: t["period_ms"])
        fastest["period_ms"] = 1
        fastest["overrun"] = "skip"  # a missed deadline is skipped, as cyclictest does
        fastest["spin_us"] = cfg["spin_us"]
        manifest["realtime"] = {
            "fifo_priority": cfg["fifo"],
            "cpus": cfg["cpus"],
            # 'plain' keeps the kernel's default 50 µs slack; the tuned run removes it
            "timer_slack_ns": cfg["slack"] or _LINUX_DEFAULT_SLACK_NS,
            "gc_freeze": cfg["gc"],
            "lock_memory": cfg.get("lock_memory", False),  # cyclictest -m: mlockall
            # 0 µs as cyclictest holds while it measures; unset: none (the bench is not auto)
            **({"cpu_dma_latency_us": cfg["cpu_latency_us"]} if "cpu_latency_us" in cfg else {}),
        }

    return app_variant(BIOREACTOR, edit)


def scan_run(cfg: dict[str, Any]) -> dict[str, Any]:
    app = load_app(_variant(cfg))
    engine = ScanEngine(app, clock=RealClock())
    # python_wait: the reference sleep (threading.Lock), for the comparison in one run
    engine.set_realtime(
        spin_mode=SpinMode(cfg["mode"]), waker=Waker() if cfg.get("python_wait") else None
    )
    task = engine.fastest
    engine.start()
    with CpuMeter() as cpu:
        engine.start_thread()
        while task.stats.cycles < 1000 and engine.running:
            time.sleep(0.05)
        task.stats.reset()  # start-up (imports settling, first cycles) is not the steady state
        while task.stats.cycles < CYCLES - 1000 and engine.running:
            time.sleep(0.2)
        engine.request_stop()
        engine.join(5)
    engine.close()
    stats = engine.statistics()
    t = stats["tasks"][task.name]
    lat = t["wake_latency_us"]
    return {
        "cycles": t["cycles"],
        "missed_releases": t["skipped_releases"],
        "overruns": t["overruns"],
        "wake_latency_us": {k: lat[k] for k in ("p50", "p99", "p99_9", "max")},
        "exec_us": {k: t["exec_us"][k] for k in ("p50", "p99", "max")},
        "missed_per_20000": round(t["skipped_releases"] * 20_000 / max(1, t["cycles"]), 1),
        "cpu_percent": cpu.percent,
        "spin": t["spin"],
        "gc_collections": stats["gc_collections"],
        "gc_process_collections": stats["gc_process_collections"],
        "realtime": stats["realtime"],
        "state": stats["state"],
    }


def _cyclictest_binary() -> str | None:
    found = shutil.which("cyclictest")
    if found:
        return found
    if shutil.which("apt-get") is None:
        return None
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "rt-tests"]):
        try:
            subprocess.run(cmd, capture_output=True, timeout=180, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return shutil.which("cyclictest")


def cyclictest(loops: int = 20_000) -> dict[str, Any]:
    """The platform's floor: C, SCHED_FIFO 80, same core, same period, same count."""
    binary = _cyclictest_binary()
    if binary is None:
        return {"available": False, "reason": "cyclictest (rt-tests) not installed"}
    cmd = [binary, "-m", "-p80", "-i1000", f"-l{loops}", "-q", "-h", "10000", f"-a{CPU}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=loops / 1000 + 60)
    if res.returncode != 0:
        return {"available": False, "reason": res.stderr.strip()[:300], "command": cmd}
    hist: dict[int, int] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^(\d+)\s+(\d+)\s*$", line)
        if m and int(m.group(2)):
            hist[int(m.group(1))] = int(m.group(2))
    over = re.search(r"# Histogram Overflows:\s+(\d+)", res.stdout)
    mx = re.search(r"# Max Latencies:\s+(\d+)", res.stdout)
    total = sum(hist.values()) + (int(over.group(1)) if over else 0)
    return {
        "available": True,
        "command": " ".join(cmd),
        "samples": total,
        "wake_latency_us": {
            "p50": _pct(hist, total, 0.50),
            "p99": _pct(hist, total, 0.99),
            "p99_9": _pct(hist, total, 0.999),
            "max": int(mx.group(1)) if mx else max(hist, default=0),
        },
    }


def _pct(hist: dict[int, int], total: int, q: float) -> float:
    rank, seen = q * total, 0
    for us in sorted(hist):
        seen += hist[us]
        if seen >= rank:
            return float(us)
    return float("inf")  # in the overflow bucket (> 10 ms)


ROUNDS = 3  # vplc run's default against cyclictest, back to back, as the issue measured it
DEFAULT = "d_adaptive_fifo80_pinned_gc_frozen"
GOALS = {"p99": 0.2, "p99_9": 0.5, "cpu_percent": 8.0}  # issue 20, item 1


def _ratios(scan: dict[str, Any], ref: dict[str, Any]) -> dict[str, float | None]:
    lat, floor = scan["wake_latency_us"], ref["wake_latency_us"]
    return {q: round(lat[q] / floor[q], 2) if floor[q] else None for q in ("p99", "p99_9")}


def rounds(n: int = ROUNDS) -> dict[str, Any]:
    """``n`` rounds of (vplc run's default, cyclictest) back to back: one run's ratio is
    mostly the host's tail in those 20 s (cyclictest's own p99.9 ranged 37-218 µs over
    one quiet afternoon), so the goals are judged per round and the rounds are reported."""
    per_round = []
    for _ in range(n):
        scan, floor = scan_run(VARIANTS[DEFAULT]), cyclictest()
        if not floor.get("available"):
            return {"available": False, "reason": floor.get("reason")}
        ratio = _ratios(scan, floor)
        per_round.append(
            {
                "ratio_to_cyclictest": ratio,
                "cpu_percent": scan["cpu_percent"],
                "missed_per_20000": scan["missed_per_20000"],
                "cyclictest_us": floor["wake_latency_us"],
                "vplc_us": scan["wake_latency_us"],
                "goals_met": {
                    "p99": ratio["p99"] is not None and ratio["p99"] <= GOALS["p99"],
                    "p99_9": ratio["p99_9"] is not None and ratio["p99_9"] <= GOALS["p99_9"],
                    "cpu": scan["cpu_percent"] <= GOALS["cpu_percent"],
                },
            }
        )
    met = {k: sum(r["goals_met"][k] for r in per_round) for k in ("p99", "p99_9", "cpu")}
    return {"variant": DEFAULT, "goals": GOALS, "rounds": per_round, "rounds_meeting": met}


def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        "period_ms": 1,
        "cycles_per_run": CYCLES,
        "note": "2-core VM shared with other jobs: figures are noisy, compare within one run",
    }
    for name, cfg in VARIANTS.items():
        results[name] = scan_run(cfg)
    floor = cyclictest()
    results["cyclictest"] = floor
    if floor.get("available"):
        results["ratio_to_cyclictest"] = {name: _ratios(results[name], floor) for name in VARIANTS}
        results["rounds"] = rounds()
    return results
