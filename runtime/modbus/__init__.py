"""The Modbus TCP front-end (``vplc run --modbus FILE``): points and parameters as registers.

Reads come from the scan's last cycle; parameter writes are off by default and, when enabled,
allowed only from listed client addresses, range-checked, applied through the one command path
(``runtime.ops``) and written to the audit trail. Served by ``hal.modbus``'s TCP server in a
process of its own, fed by the shared frame (``runtime.front``), so clients never slow the scan.
"""

from runtime.modbus._config import (
    MapEntry,
    ModbusConfigError,
    ModbusServerConfig,
    WritePolicy,
    check_map,
    load_modbus_config,
)
from runtime.modbus._server import ModbusServer, attach_modbus

__all__ = [
    "MapEntry",
    "ModbusConfigError",
    "ModbusServer",
    "ModbusServerConfig",
    "WritePolicy",
    "attach_modbus",
    "check_map",
    "load_modbus_config",
]
