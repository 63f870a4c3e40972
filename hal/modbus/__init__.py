"""Modbus TCP pieces shared by every side of vplc: the value codec and a small TCP server.

Used by the ``modbus`` driver and the runtime's Modbus server (runtime) and by ``vplc sim
serve --protocol modbus`` (sim_hardware), so it lives in ``hal``, the one layer all of them
may import. It is standard library only (the driver's client is pymodbus, in runtime);
``import hal`` does not load it.
"""

from hal.modbus._codec import (
    BIT_TABLES,
    WIDTH,
    DataType,
    Order,
    Table,
    decode,
    encode,
    natural_iec,
)
from hal.modbus._server import (
    DEVICE_FAILURE,
    ILLEGAL_ADDRESS,
    ILLEGAL_FUNCTION,
    ILLEGAL_VALUE,
    ModbusRefusedError,
    ModbusTcpServer,
    RegisterBank,
    ServerLimits,
)

__all__ = [
    "BIT_TABLES",
    "DEVICE_FAILURE",
    "ILLEGAL_ADDRESS",
    "ILLEGAL_FUNCTION",
    "ILLEGAL_VALUE",
    "WIDTH",
    "DataType",
    "ModbusRefusedError",
    "ModbusTcpServer",
    "Order",
    "RegisterBank",
    "ServerLimits",
    "Table",
    "decode",
    "encode",
    "natural_iec",
]
