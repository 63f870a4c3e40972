"""The real-time band-holding harness of the HIL tests over a network driver (Modbus, OPC UA):
`vplc sim serve` in its own process, the bioreactor bound to it, T/pH/DO checked in band."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hal import Quality
from runtime.host import Runtime
from tests.hil.conftest import VPLC, wait_until
from tests.mqtt.broker import free_port

WINDOW_S = 30.0  # real seconds of band checking
INITIAL = {
    "temperature": 37.0, "jacket_temperature": 37.0, "ph": 7.0, "do": 40.0, "volume": 70.0,
    "agitator_speed": 150.0,
}  # fmt: skip
BANDS = {"TT101": (37.0, 0.2), "AT201": (7.00, 0.05), "AT301": (40.0, 5.0)}
PARAMS = {"fill_target_l": 60.0, "heat_settle_s": 1.0}  # a short fill and heat-up before GROW


@contextlib.contextmanager
def plant(
    tmp_path: Path, protocol: str, wait_s: float
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`vplc sim serve --protocol ...` at real time from INITIAL, listening within ``wait_s``;
    killed (and the head of its log printed) on the way out."""
    port = free_port()
    params = tmp_path / "plant.json"
    params.write_text(json.dumps({"time_scale": 1.0}))
    initial = [a for k, v in INITIAL.items() for a in ("--initial", f"{k}={v}")]
    log = tmp_path / "serve.log"
    cmd = [VPLC, "sim", "serve", "--protocol", protocol, "--port", str(port), "--seed", "42",
           "--params", str(params), *initial]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log.read_text(errors="replace"))
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    try:
        wait_until(up, wait_s, "sim serve listening")
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        print(log.read_text(errors="replace")[:400])


class BandRun:
    """The app running on its own thread with a hook recording BAD inputs and the banded values."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.image = app.image
        self.seen: dict[str, list[float]] = {name: [] for name in BANDS}
        self.bad_cycles: list[tuple[float, str]] = []
        self.runtime = Runtime(app, hooks=[self._record])

    def _record(self, task: Any, now_ns: int) -> None:
        for p in self.image.points:
            if p.quality is Quality.BAD:
                self.bad_cycles.append((now_ns / 1e9, p.name))
        for name in BANDS:
            self.seen[name].append(self.image[name].value)

    def hold_bands(self, label: str, grow_s: float) -> None:
        """Once the batch is in GROW, WINDOW_S real seconds with no BAD input, every band held,
        no overrun of the control task."""
        batch = self.app.programs["batch"]
        wait_until(lambda: getattr(batch, "step", "") == "GROW", grow_s, "batch in GROW")
        self.bad_cycles.clear()
        for values in self.seen.values():
            values.clear()
        time.sleep(WINDOW_S)
        assert not self.bad_cycles, f"inputs BAD while the plant was up: {self.bad_cycles[:5]}"
        for name, (sp, band) in BANDS.items():
            values = list(self.seen[name])
            assert len(values) >= 0.9 * WINDOW_S * 5, f"{name}: only {len(values)} cycles"
            worst = max(abs(v - sp) for v in values)
            print(f"HIL {label} {name}: {len(values)} cycles, worst |dev| {worst:.3f} (±{band})")
            assert worst <= band, f"{name}: off {sp} by {worst:.3f} (band ±{band})"
        assert batch.step == "GROW"
        stats = self.runtime.engine.statistics()["tasks"]["control"]
        assert stats["overruns"] == 0, stats

    def inputs_turn_bad(self, timeout: float) -> float:
        """Seconds until DO reads BAD (after the plant died); then every input must follow."""
        do = self.image["AT301"]
        took = wait_until(lambda: do.quality is Quality.BAD, timeout, "DO BAD")
        inputs = [p for p in self.image.points if p.direction.value == "in"]
        wait_until(lambda: all(p.quality is Quality.BAD for p in inputs), 1.0, "all BAD")
        return took


@contextlib.contextmanager
def band_run(app: Any) -> Iterator[BandRun]:
    """A BandRun started on its thread, stopped and closed on the way out."""
    run = BandRun(app)
    run.runtime.start(thread=True)
    try:
        yield run
    finally:
        run.runtime.stop_thread(5)
        run.runtime.close()
