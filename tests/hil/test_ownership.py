"""The ownership epoch protocol between mqtt drivers and `vplc sim serve`, and faults over MQTT."""

from __future__ import annotations

import time
from typing import Any

from hal import Point, PointSpec, Quality
from runtime.drivers.mqtt import MqttDriver
from tests.drivers.device import latches
from tests.hil.conftest import ServeFactory, Watcher, wait_until
from tests.mqtt.broker import Broker

PREFIX = "vplc/sim/own"


def driver(port: int, epoch: int | None, prefix: str = PREFIX) -> tuple[MqttDriver, Point, Point]:
    opts = {
        "port": port, "prefix": prefix, "owner_epoch": epoch, "publish_ms": 10,
        "channels": {"heating_valve": "out", "ph": "in"}, "open_wait_s": 3.0,
    }  # fmt: skip
    d = MqttDriver(name=f"io{epoch}", options=opts)
    valve = Point(PointSpec(name="V", type="REAL", direction="out", driver="x",
                            channel="heating_valve", safe=0.0))  # fmt: skip
    ph = Point(PointSpec(name="PH", type="REAL", direction="in", driver="x", channel="ph"))
    d.bind([(valve, "heating_valve"), (ph, "ph")])
    return d, valve, ph


def cycle(d: MqttDriver, valve: Point, value: float, n: int = 20) -> None:
    for k in range(n):
        d.read_inputs(k)
        valve.value = value + k * 1e-3  # changing, so every cycle publishes (by exception)
        d.write_outputs(k)
        time.sleep(0.01)


def stats_after(watch: Watcher, t: float) -> dict[str, Any]:
    """The first server statistics published after monotonic time ``t``."""
    wait_until(lambda: bool(watch.on("stats", since=t)), 5, "server stats")
    body: dict[str, Any] = watch.on("stats", since=t)[0]
    return body


def test_only_the_highest_claimed_epoch_drives_the_plant(
    broker: Broker, serve: ServeFactory
) -> None:
    _, watch = serve(PREFIX, "--stats-s", "0.2")
    blue, blue_valve, _ = driver(broker.port, 1)
    green, green_valve, _ = driver(broker.port, 2)
    try:
        blue.open()
        wait_until(lambda: blue.statistics()["owner_claimed"], 5, "blue claim")
        cycle(blue, blue_valve, 10.0)
        s = stats_after(watch, time.monotonic())
        assert s["owner_epoch"] == 1 and round(s["actuators"]["heating_valve"]) == 10
        assert s["writes"]["applied"] > 0 and s["writes"]["refused_stale_epoch"] == 0

        green.open()
        wait_until(lambda: green.statistics()["owner_claimed"], 5, "green claim")
        wait_until(lambda: blue.statistics()["superseded"], 5, "blue superseded")
        cycle(green, green_valve, 20.0)
        cycle(blue, blue_valve, 30.0)  # a passive instance publishes nothing at all
        s = stats_after(watch, time.monotonic())
        assert s["owner_epoch"] == 2 and round(s["actuators"]["heating_valve"]) == 20
        assert blue.statistics()["max_epoch_seen"] == 2

        # A writer that missed the handover (still epoch 1), or one with no epoch, is refused.
        refused = s["writes"]["refused_stale_epoch"]
        watch.publish("actuators/heating_valve", {"v": 99.0, "epoch": 1})
        watch.publish("actuators/heating_valve", {"v": 99.0})
        watch.publish("actuators/heating_valve", {"v": 99.0, "epoch": 3})  # never claimed
        wait_until(
            lambda: watch.last("stats")["writes"]["refused_stale_epoch"] == refused + 2, 5, "count"
        )
        s = stats_after(watch, time.monotonic())
        assert s["writes"]["refused_stale_epoch"] == refused + 2
        assert s["writes"]["refused_unclaimed"] == 1
        assert round(s["actuators"]["heating_valve"]) == 20
    finally:
        blue.close()
        green.close()

    # The old instance restarting must not take the retained claim back.
    again, _, _ = driver(broker.port, 1)
    again.open()
    try:
        wait_until(lambda: again.statistics()["superseded"], 5, "restarted blue superseded")
        assert not again.statistics()["owner_claimed"]
        assert watch.last("owner")["epoch"] == 2
    finally:
        again.close()


def test_faults_over_mqtt_reach_the_driver_as_quality(broker: Broker, serve: ServeFactory) -> None:
    prefix = "vplc/sim/faults"
    _, watch = serve(prefix, "--plant", "bioreactor")
    d, _, ph = driver(broker.port, None, prefix)
    d.open()
    try:
        d.read_inputs(1)
        assert ph.quality is Quality.GOOD
        watch.publish("faults", {"kind": "dropout", "channel": "no_such"})
        watch.publish("faults", [{"kind": "dropout", "channel": "ph"}])
        wait_until(lambda: len(watch.on("faults/response")) == 2, 5, "fault responses")
        refused, accepted = watch.on("faults/response")
        assert refused["status"] == "refused" and "no_such" in refused["reason"]
        assert accepted == {"status": "accepted", "reason": "", "active": ["dropout:ph"]}
        wait_until(latches(d, ph, Quality.BAD), 3, "ph BAD")
        watch.publish("faults", {"clear": "ph"})
        wait_until(latches(d, ph, Quality.GOOD), 3, "ph GOOD")
    finally:
        d.close()
