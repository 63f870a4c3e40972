"""Helpers shared by the benchmarks: app variants with changed periods, CPU accounting, a
throwaway Mosquitto broker."""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIOREACTOR = ROOT / "plc_apps" / "bioreactor"


def app_variant(src: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Copy an app folder and edit its manifest (e.g. a 1 ms period for a latency bench)."""
    dst = Path(tempfile.mkdtemp(prefix="vplc-bench-")) / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "scenarios"))
    manifest = yaml.safe_load((dst / "app.yaml").read_text())
    edit(manifest)
    (dst / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return dst


@contextmanager
def bench_broker() -> Iterator[Any]:
    """A plain Mosquitto (installed when missing) in a fresh folder, stopped on the way out."""
    from tests.mqtt.broker import ensure_mosquitto, plain_broker

    exe, _ = ensure_mosquitto()
    broker = plain_broker(exe, Path(tempfile.mkdtemp(prefix="vplc-bench-mosq-")))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def scan_window(engine: Any, seconds: float) -> dict[str, Any]:
    """The first task's cycles, overruns, execution and wake latency over ``seconds`` of wall
    time from now (its statistics reset first)."""
    task = engine.tasks[0]
    task.stats.reset()
    time.sleep(seconds)
    stats = dict(task.stats.as_dict())
    return {k: stats[k] for k in ("cycles", "overruns", "exec_us", "wake_latency_us")}


class CpuMeter:
    """CPU time of this process (all threads) over wall time, as a percentage of one core."""

    def __enter__(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._cpu = _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = _cpu() - self._cpu
        self.percent = round(100.0 * self.cpu_s / self.wall_s, 1) if self.wall_s else 0.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def virtual_run(app_dir: Path, app_seconds: float) -> tuple[Any, float]:
    """Run an app for ``app_seconds`` of virtual time; the closed engine and the wall time."""
    from runtime.core._clock import VirtualClock
    from runtime.core._engine import ScanEngine
    from runtime.core._loader import load_app

    engine = ScanEngine(load_app(app_dir), clock=VirtualClock())
    engine.start()
    t0 = time.perf_counter()
    engine.run_until(round(app_seconds * 1e9))
    wall = time.perf_counter() - t0
    engine.close()
    return engine, wall
