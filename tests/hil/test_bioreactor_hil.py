"""The bioreactor app over MQTT against `vplc sim serve` in real time: bands, then a lost plant."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hal import Quality
from runtime import load_app
from runtime.host import Runtime
from tests.hil.conftest import ServeFactory, mqtt_app, wait_until
from tests.mqtt.broker import Broker

PREFIX = "vplc/sim/br1"
WINDOW_S = 60.0  # real seconds of band checking
STALENESS_S = 1.0
CONTROL_PERIOD_S = 0.2
# Near the setpoints, so no 30-minute settle; time_scale 1: biology at real speed in real time.
INITIAL = {
    "temperature": 37.0, "jacket_temperature": 37.0, "ph": 7.0, "do": 40.0, "volume": 70.0,
    "agitator_speed": 150.0,
}  # fmt: skip
BANDS = {"temperature": (37.0, 0.2), "ph": (7.00, 0.05), "do": (40.0, 5.0)}


@pytest.mark.slow
def test_app_holds_its_bands_over_mqtt_then_sees_the_plant_vanish(
    broker: Broker, serve: ServeFactory, tmp_path: Path
) -> None:
    params = tmp_path / "plant.json"
    params.write_text(json.dumps({"time_scale": 1.0}))
    initial = [a for k, v in INITIAL.items() for a in ("--initial", f"{k}={v}")]
    server, watch = serve(PREFIX, "--seed", "42", "--params", str(params), *initial)
    app_dir = mqtt_app(
        tmp_path, port=broker.port, prefix=PREFIX,
        params={"fill_target_l": 60.0, "heat_settle_s": 1.0},
    )  # fmt: skip
    app = load_app(app_dir)
    image, batch = app.image, app.programs["batch"]
    bad_cycles: list[tuple[float, str]] = []

    def record(task: Any, now_ns: int) -> None:
        bad_cycles.extend((now_ns / 1e9, p.name) for p in image.points if p.quality is Quality.BAD)

    # Assembled as `vplc run` assembles it (runtime.host.Runtime), with the test's recorder.
    runtime = Runtime(app, hooks=[record])
    engine = runtime.engine
    runtime.start(thread=True)
    try:
        wait_until(lambda: getattr(batch, "step", "") == "GROW", 10, "batch in GROW")
        bad_cycles.clear()
        t0 = time.monotonic()
        time.sleep(WINDOW_S)
        assert not bad_cycles, f"inputs BAD while the plant was up: {bad_cycles[:5]}"
        for channel, (sp, band) in BANDS.items():
            seen = [m["v"] for m in watch.on(f"sensors/{channel}", since=t0)]
            assert len(seen) >= 0.9 * WINDOW_S * 10, f"{channel}: only {len(seen)} readings"
            worst = max(abs(v - sp) for v in seen)
            print(f"HIL {channel}: {len(seen)} readings, worst |dev| {worst:.3f} (±{band})")
            assert worst <= band, f"{channel}: off {sp} by {worst:.3f} (band ±{band})"
        assert batch.step == "GROW"  # type: ignore[attr-defined]
        assert engine.statistics()["tasks"]["control"]["overruns"] == 0

        # The plant process dies: inputs must go BAD within the staleness time, and the
        # loops must react — DO to its fixed air fallback, temperature and pH to zero.
        server.kill()
        killed = time.monotonic()
        do = image["AT301"]
        took = wait_until(lambda: do.quality is Quality.BAD, 5, "DO BAD")
        print(f"HIL: DO input BAD {took:.3f} s after the plant died (staleness {STALENESS_S})")
        assert took <= STALENESS_S + CONTROL_PERIOD_S + 0.3, took
        # Each input goes stale on its own last message; all of them within one more period.
        inputs = [p for p in image.points if p.direction.value == "in"]
        wait_until(lambda: all(p.quality is Quality.BAD for p in inputs), 1.0, "all inputs BAD")
        time.sleep(2 * CONTROL_PERIOD_S)
        fallback = app.parameters["do_fallback_air_pct"].value
        assert image["AV301A"].value == fallback and image["AV301O"].value == 0.0
        assert image["TV101H"].value == 0.0 and image["TV101C"].value == 0.0
        assert image["P201B"].value == 0.0 and image["AV201C"].value == 0.0
        # ... and the fallback went out on the wire (to whatever plant comes back)
        wait_until(
            lambda: any(m["v"] == fallback for m in watch.on("actuators/air_valve", killed)),
            2,
            "fallback air published",
        )
    finally:
        runtime.stop_thread(5)
        runtime.close()
    # The safe value is written on close; the watcher sees it when the broker delivers it.
    wait_until(lambda: watch.last("actuators/air_valve")["v"] == 0.0, 2, "safe air on close")
