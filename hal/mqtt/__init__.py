"""The MQTT transport shared by every network side of vplc: one session helper and its options.

Used by the runtime's bridge and ``mqtt`` driver, by ``vplc sim serve`` (sim_hardware) and by the
blue-green deployer (containers). It lives in ``hal`` because ``hal`` is the one layer all of
them may import; it is the only part of ``hal`` that may import the MQTT client, aiomqtt 2.x
(and PyYAML, for a broker file), and ``import hal`` does not load it (tests/test_layering.py
checks both).
"""

from hal.mqtt._options import (
    BrokerOptions,
    InsecureTransportError,
    TlsConfig,
    check_transport,
    load_broker_options,
    read_password,
    resolve_paths,
)
from hal.mqtt._session import Inbound, MqttSession, SessionHandler, Will
from hal.mqtt._state import (
    ConnectionState,
    EventLog,
    MqttError,
    StdlibLog,
    connections,
    register_connection,
    unregister_connection,
)

__all__ = [
    "BrokerOptions",
    "ConnectionState",
    "EventLog",
    "Inbound",
    "InsecureTransportError",
    "MqttError",
    "MqttSession",
    "SessionHandler",
    "StdlibLog",
    "TlsConfig",
    "Will",
    "check_transport",
    "connections",
    "load_broker_options",
    "read_password",
    "register_connection",
    "resolve_paths",
    "unregister_connection",
]
