"""Sparkplug B edge node for a running app (``vplc run APP --mqtt mqtt.yaml`` with ``sparkplug:``).

The app is one Sparkplug device of one edge node (Sparkplug 3.0, protobuf payloads)::

    spBv1.0/<group>/NBIRTH/<node>            bdSeq, Node Control/Rebirth, Node Info/*
    spBv1.0/<group>/NDEATH/<node>            bdSeq (also the MQTT will of every connection)
    spBv1.0/<group>/NCMD/<node>              Node Control/Rebirth = true → births again
    spBv1.0/<group>/DBIRTH/<node>/<device>   every metric: name, alias, datatype, value, properties
    spBv1.0/<group>/DDATA/<node>/<device>    changed metrics by alias, seq 0..255
    spBv1.0/<group>/DDEATH/<node>/<device>   on a clean stop
    spBv1.0/<group>/DCMD/<node>/<device>     Parameters/*, Device Control/*, Alarms/*/Acknowledge,
                                             Batch/*/Command → commands
    spBv1.0/STATE/<primary host>             {"online": bool, "timestamp": ms}, watched

Metrics: ``State``; ``Points/<name>`` (read-only; properties engUnit, engLow, engHigh,
Documentation, readOnly, Quality: 192 GOOD, 500 STALE (vplc's UNCERTAIN), 0 BAD);
``Parameters/<name>``; ``Device Control/{Start,Stop,Reset}``; per ALARM block
``Alarms/<path>/{Active,Acked,Severity,Text,Acknowledge}``; per PHASE block
``Batch/<path>/{State,Step,Command}``. DCMD writes are commands on the one command path
(runtime.ops) as ``sparkplug.command_user``: its role, rates, single use, audit; one that
the app's ``gmp.critical`` wants signed is refused (a DCMD carries no signatures). The node
runs in its own process fed by the shared-memory frame, like the MQTT process bridge and the
OPC UA server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtime.mqtt._config import MqttConfig, SparkplugConfig, load_mqtt_config
from runtime.sparkplug._bridge import SparkplugNode, default_bdseq_file
from runtime.sparkplug._payload import DataType, PayloadError, decode

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = [
    "DataType",
    "PayloadError",
    "SparkplugConfig",
    "SparkplugNode",
    "attach_sparkplug",
    "decode",
    "default_bdseq_file",
]


def attach_sparkplug(
    engine: ScanEngine, config: MqttConfig | Path | str, *, log_format: str = "console"
) -> SparkplugNode:
    """Build the edge node for ``engine`` from a config with ``sparkplug:`` and start it."""
    if not isinstance(config, MqttConfig):
        config = load_mqtt_config(config)
    node = SparkplugNode(engine, config, log_format=log_format)
    node.start()
    return node
