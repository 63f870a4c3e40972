"""MQTT telemetry and commands for a running app: by-exception publishing, audited commands.

Topic layout (``P`` = ``vplc/<site>/<node>/<app>``; all payloads JSON, UTF-8)::

    P/birth            retained, QoS 1. {"status": "online", "schema", "app", "app_version",
                       "runtime_version", "ts", "points": [{name, type, direction, unit,
                       description, range}], "parameters": [{name, type, unit, min, max,
                       default, description}], "alarms": [paths], "phases": [paths],
                       "tasks": [{name, period_ms}]} at every (re)connect. The last will on
                       the same topic is {"status": "offline", "reason": "connection lost"};
                       a clean stop publishes {"status": "offline", "reason": "shutdown"}.
    P/state            retained, QoS 1. {"state": "RUN"|"STOP"|"FAULT", "fault_reason",
                       "ts", "t_app"} on change and at every full refresh.
    P/points/<name>    retained, QoS 0. {"v", "q": "GOOD"|"UNCERTAIN"|"BAD", "forced",
                       "ts", "t_app"} by exception (value beyond the point's deadband,
                       quality or forced flag changed) and at every full refresh (refresh_s).
    P/points           QoS 0, not retained; only with point_messages batch|both: one message
                       per drain, {"ts", "points": {<name>: {"v", "q", "forced", "ts",
                       "t_app"}}} with every point that changed (≈10× the throughput).
    P/alarms/<path>    retained, QoS 1. {"active", "unacked", "severity", "kinds": ["HH",
                       "H", "L", "LL", "BAD"], "text", "ts", "t_app"}; <path> is the
                       ALARM block's instance path, e.g. ``main.temp_alarm``.
    P/stats            QoS 0, every stats_s. {"ts", "engine": ScanEngine.statistics(),
                       "bridge": MqttBridge.statistics()} (queue drops, outages, commands,
                       audit_head).
    P/cmd              subscribed, QoS 1. A command (see ``runtime._commands``).
    P/cmd/response     QoS 1. {"id", "cmd", "status": "accepted"|"refused", "reason",
                       "old", "new", "user", "ts"}; id is null when none was recoverable.

``ts`` is ISO 8601 UTC wall time; ``t_app`` is app time in seconds since the scan started.

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
    from runtime._engine import ScanEngine

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

    With ``process: true`` the MQTT client runs in a child process (ProcessBridge).
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
