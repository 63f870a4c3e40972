"""Hardware abstraction layer: typed I/O points, the process image and the Driver protocol."""

from hal._driver import ChannelInfo, Driver, DriverError, DriverFactory
from hal._image import ProcessImage
from hal._memory import MemoryDriver
from hal._point import DeclaredValue, Point, PointSpec, Scaling, Value
from hal._registry import driver_kinds, get_driver_factory, register_driver
from hal._types import Direction, IecType, OnInvalid, Quality, coerce, coerce_exact, default_value

__all__ = [
    "ChannelInfo",
    "DeclaredValue",
    "Direction",
    "Driver",
    "DriverError",
    "DriverFactory",
    "IecType",
    "MemoryDriver",
    "OnInvalid",
    "Point",
    "PointSpec",
    "ProcessImage",
    "Quality",
    "Scaling",
    "Value",
    "coerce",
    "coerce_exact",
    "default_value",
    "driver_kinds",
    "get_driver_factory",
    "register_driver",
]
