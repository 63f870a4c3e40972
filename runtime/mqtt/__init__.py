"""MQTT telemetry and commands for a running app: by-exception publishing, audited commands.

Topic layout, payloads, the stale marks after a stop, connection reporting and the security
rules: runtime/mqtt/TOPICS.md (``P`` = ``vplc/<site>/<node>/<app>``)::

    P/birth, P/state, P/points/<name>, P/points, P/parameters/<name>, P/phases/<path>,
    P/alarms/<path>, P/stats, P/cmd, P/cmd/response

The connection itself is ``hal.mqtt.MqttSession`` (shared with the ``mqtt`` driver, ``vplc sim
serve`` and the blue-green deployer).

Use from a runner::

    bridge = attach_mqtt(engine, "mqtt.yaml")   # starts the network thread (or process)
    ...
    bridge.stop()                               # "offline", disconnect, detach
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtime.mqtt._bridge import MqttBridge
from runtime.mqtt._config import MqttConfig, TlsConfig, load_mqtt_config
from runtime.mqtt._payloads import Topics
from runtime.mqtt._process import ProcessBridge

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = [
    "MqttBridge",
    "MqttConfig",
    "ProcessBridge",
    "TlsConfig",
    "Topics",
    "attach_mqtt",
    "load_mqtt_config",
]


def attach_mqtt(
    engine: ScanEngine, config: MqttConfig | Path | str, *, log_format: str = "console"
) -> MqttBridge | ProcessBridge:
    """Build a bridge for ``engine`` from a config (or its YAML file) and start it.

    With ``process: true`` (the default) the MQTT client runs in a child process
    (ProcessBridge); ``process: false`` runs it in a thread (MqttBridge).
    """
    if not isinstance(config, MqttConfig):
        config = load_mqtt_config(config)
    bridge: MqttBridge | ProcessBridge
    if config.process:
        bridge = ProcessBridge(engine, config, log_format=log_format)
    else:
        bridge = MqttBridge(engine, config)
    bridge.start()
    return bridge
