"""What an HMI sees: truth after a stop, parameters and phases by exception, deadband."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hal import MemoryDriver
from runtime import ScanEngine, load_app
from runtime.mqtt import MqttBridge, MqttConfig, ProcessBridge
from runtime.ops._access import AccessConfig
from tests.conftest import MakeApp
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import APP_LOGIC, NODE, PREFIX, SITE, app_manifest, cmd, hmi_client

STEP_LOGIC = APP_LOGIC.replace(
    'VARS = {"count": 0}', 'VARS = {"count": 0, "step": "IDLE"}'
).replace(
    "        self.n.value = self.count // 100\n",
    "        self.n.value = self.count // 100\n"
    '        self.step = "HEAT" if self.phase.IS_RUNNING else "IDLE"\n',
)


def _mem(engine: ScanEngine) -> MemoryDriver:
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    return driver


def _config(port: int, **kw: Any) -> MqttConfig:
    base = {"port": port, "site": SITE, "node": NODE, "stats_s": 0.5, "allow_insecure": True}
    return MqttConfig.model_validate(base | kw)


def _stop_engine(engine: ScanEngine) -> None:
    engine.request_stop()
    engine.join(5)
    engine.close()  # outputs to their safe values


@pytest.fixture
def step_engine(make_app: MakeApp) -> Iterator[ScanEngine]:
    """The test app whose program keeps a ``step`` next to its PHASE, Y with a resolution."""
    manifest = app_manifest()
    for point in manifest["points"]:
        if point["name"] == "Y":
            point["resolution"] = 0.5
    eng = ScanEngine(load_app(make_app(manifest, STEP_LOGIC)))
    eng.start()
    eng.start_thread()
    yield eng
    _stop_engine(eng)


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_clean_stop_leaves_state_stop_and_every_retained_value_stale(
    step_engine: ScanEngine, broker: Broker, access: AccessConfig, process: bool
) -> None:
    engine = step_engine
    _mem(engine).values["x"] = 10.0
    cfg = _config(broker.port, node=f"{NODE}-stop{int(process)}")
    bridge = ProcessBridge(engine, cfg, access=access) if process else MqttBridge(engine, cfg)
    bridge.start()
    assert bridge.connected.wait(20)
    prefix = f"vplc/{SITE}/{cfg.node}/testapp"

    async def before() -> None:
        async with hmi_client(broker.port, f"{prefix}/#") as hmi:
            await hmi.wait_for(f"{prefix}/points/Y", lambda b: b["v"] == 20.0, timeout=10)
            await hmi.wait_for(f"{prefix}/state", lambda b: b["state"] == "RUN")

    asyncio.run(before())
    _stop_engine(engine)  # as `vplc run` does: the scan stops first, then the bridge
    bridge.stop()

    async def after() -> None:
        # A subscriber arriving after the stop reads only retained messages: the truth.
        async with hmi_client(broker.port, f"{prefix}/#") as hmi:
            birth = await hmi.wait_for(f"{prefix}/birth")
            assert birth["status"] == "offline" and birth["reason"] == "shutdown"
            assert birth["state"] == "STOP" and birth["stale"] is True
            assert birth["instance"]["id"] == bridge.instance.id
            state = await hmi.wait_for(f"{prefix}/state")
            assert state["state"] == "STOP" and state["stale"] is True and "stale_since" in state
            y = await hmi.wait_for(f"{prefix}/points/Y")
            # The output's safe value (-1.0) after the stop, not the last running value 20.
            assert y["v"] == -1.0 and y["q"] == "BAD" and y["stale"] is True
            alarm = await hmi.wait_for(f"{prefix}/alarms/main.high")
            assert alarm["stale"] is True
            gain = await hmi.wait_for(f"{prefix}/parameters/gain")
            assert gain["stale"] is True and gain["v"] == 2.0

    asyncio.run(after())


def test_parameters_and_phases_are_published_by_exception(
    step_engine: ScanEngine, broker: Broker, access: AccessConfig
) -> None:
    engine = step_engine
    bridge = MqttBridge(engine, _config(broker.port, refresh_s=600), access=access)
    bridge.start()
    try:
        assert bridge.connected.wait(5)

        async def scenario() -> None:
            async with hmi_client(broker.port) as hmi:
                gain_topic, phase_topic = f"{PREFIX}/parameters/gain", f"{PREFIX}/phases/main.phase"
                gain = await hmi.wait_for(gain_topic, lambda b: b["v"] == 2.0)
                assert "ts" in gain and "t_app" in gain
                # (a retained copy from an earlier test's app, without a step, may come first)
                idle = await hmi.wait_for(
                    phase_topic, lambda b: b["state"] == "IDLE" and b["step"] == "IDLE"
                )
                await asyncio.sleep(0.3)
                n_gain, n_phase = len(hmi.on(gain_topic)), len(hmi.on(phase_topic))
                await asyncio.sleep(0.3)  # nothing changed: nothing sent
                assert (len(hmi.on(gain_topic)), len(hmi.on(phase_topic))) == (n_gain, n_phase)
                ok = await hmi.command(cmd("set_parameter", name="gain", value=3.0))
                assert ok["status"] == "accepted"
                await hmi.wait_for(gain_topic, lambda b: b["v"] == 3.0)
                ok = await hmi.command(cmd("phase", block="main.phase", command="START"))
                assert ok["status"] == "accepted"
                running = await hmi.wait_for(
                    phase_topic, lambda b: b["state"] == "RUNNING" and b["step"] == "HEAT"
                )
                assert running["t_app"] > idle["t_app"]

        asyncio.run(scenario())
    finally:
        bridge.stop()


def test_default_deadband_is_a_fraction_of_the_range_and_numbers_are_rounded(
    step_engine: ScanEngine, broker: Broker
) -> None:
    engine = step_engine
    mem = _mem(engine)
    bridge = MqttBridge(engine, _config(broker.port, refresh_s=600, deadband={"N": 2.0}))
    bridge.start()
    try:
        assert bridge.connected.wait(5)
        # X: range [-100, 100] → 0.1 % = 0.2 by default; Y: no range → every change.
        assert bridge.deadbands["X"] == pytest.approx(0.2) and bridge.deadbands["Y"] == 0.0
        assert bridge.deadbands["N"] == 2.0  # an explicit entry wins

        async def scenario() -> None:
            async with hmi_client(broker.port) as hmi:
                ours = bridge.instance.id  # not a retained birth another test left behind
                birth = await hmi.wait_for(
                    f"{PREFIX}/birth", lambda b: (b.get("instance") or {}).get("id") == ours
                )
                # After its birth the bridge sends every value once, whatever the deadband:
                # that full publish must have sampled X before X moves inside the deadband.
                await asyncio.sleep(0.2)
                while bridge.tap.refresh_requested:
                    await asyncio.sleep(0.01)
                described = {p["name"]: p for p in birth["points"]}
                assert described["X"]["deadband"] == pytest.approx(0.2)
                assert described["Y"]["resolution"] == 0.5
                x_topic, y_topic = f"{PREFIX}/points/X", f"{PREFIX}/points/Y"
                await hmi.wait_for(x_topic, lambda b: b["v"] == 0.0)
                mem.values["x"] = 0.15  # inside X's default deadband; Y = 0.3 → rounds to 0.5
                await hmi.wait_for(y_topic, lambda b: b["v"] == 0.5)
                await asyncio.sleep(0.2)
                live = [b["v"] for t, b, kept in hmi.messages if t == x_topic and not kept]
                assert set(live) <= {0.0}  # 0.15 was not sent (nor is any retained copy)
                mem.values["x"] = 10.37  # beyond: sent as it is; Y = 20.74 → 20.5
                await hmi.wait_for(x_topic, lambda b: b["v"] == 10.37)
                await hmi.wait_for(y_topic, lambda b: b["v"] == 20.5)

        asyncio.run(scenario())
    finally:
        bridge.stop()


def test_resolution_is_only_for_real_points(make_app: MakeApp, tmp_path: Path) -> None:
    manifest = app_manifest()
    manifest["points"][3]["resolution"] = 1.0  # N is an INT
    with pytest.raises(Exception, match="resolution needs type REAL or LREAL"):
        load_app(make_app(manifest, APP_LOGIC))
    manifest["points"][3].pop("resolution")
    manifest["points"][0]["resolution"] = 0.0
    with pytest.raises(Exception, match="greater than 0"):
        load_app(make_app(manifest, APP_LOGIC))
