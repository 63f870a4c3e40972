"""The OPC UA server of a running app (``vplc run APP --opcua opcua.yaml``), asyncua 2.x.

Address space (one namespace per app, ``urn:vplc:<app>``; string NodeIds from instance
paths, so they stay the same across versions)::

    Objects/vplc/<app>/State                          RUN | STOP | FAULT
    Objects/vplc/<app>/Points/<point>                 AnalogItemType: EURange, EngineeringUnits
    Objects/vplc/<app>/Parameters/<parameter>         writable through the command path
    Objects/vplc/<app>/Tasks/<task>/{Cycles, ExecP99Us, WakeLatencyP99Us, …}
    Objects/vplc/<app>/Batch/<phase path>/{State, Step, Start(), Hold(), Restart(), Stop(),
                                            Abort(), Reset()}
    Objects/vplc/<app>/Alarms/<alarm path>/{Active, Acked, Severity, …, Message, Acknowledge()}
                                  also AlarmConditionType events (runtime/opcua/_conditions.py)
    Objects/vplc/<app>/Programs/<program>/<block>/…/<variable>   the instance tree, read-only

The server runs in its own process fed by the same shared-memory frame as the MQTT bridge's
process mode (``runtime.front``); writes and method calls are commands on the one command path
(``runtime.ops``): the access file's users (password = token) and roles, single use, rate
limits and the signed audit trail.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtime.front import check_port
from runtime.opcua._bridge import OpcuaServer
from runtime.opcua._child import application_uri
from runtime.opcua._config import OpcuaConfig, load_opcua_config
from runtime.opcua._pki import ensure_certificate
from runtime.opcua._units import eu_information, unit_id

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = [
    "OpcuaConfig",
    "OpcuaServer",
    "attach_opcua",
    "eu_information",
    "load_opcua_config",
    "unit_id",
]


def attach_opcua(
    engine: ScanEngine, config: OpcuaConfig | Path | str, *, log_format: str = "console"
) -> OpcuaServer:
    """Build the server for ``engine`` from a config (or its YAML file) and start it.

    Raises OSError or ValueError before anything starts when the port is taken, the access
    file is unusable or the certificate folder cannot be written: a server process that
    could never listen would otherwise only be restarted, with backoff, for ever.
    """
    if not isinstance(config, OpcuaConfig):
        config = load_opcua_config(config)
    check_port(config.host, config.port)
    server = OpcuaServer(engine, config, log_format=log_format)
    try:
        ensure_certificate(
            server.pki_dir, app_uri=application_uri(engine.app.name), app_name=engine.app.name
        )
    except OSError as exc:
        raise OSError(f"certificate folder {server.pki_dir}: {exc.strerror or exc}") from None
    server.start()
    return server
