"""The Modbus server's file (``vplc run --modbus FILE``): listener, write policy, register map.

A file of its own rather than a section of app.yaml: the same app is installed at sites whose
SCADA differ, and the listen address and the allow-list of client addresses are the site's,
not the app's (as the MQTT bridge's mqtt.yaml is); the map is checked against the app at
start-up all the same, every problem named by its YAML path, exit 2.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hal import IecType
from hal.modbus import BIT_TABLES, WIDTH, DataType, Table
from runtime.core._loader import LoadedApp
from runtime.core._yaml import YamlError, read_yaml_file
from runtime.core.manifest import format_validation_error

__all__ = [
    "MapEntry",
    "ModbusConfigError",
    "ModbusServerConfig",
    "WritePolicy",
    "check_map",
    "load_modbus_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MapEntry(_Strict):
    """A point or a parameter at an address of a table (0-based), in a data type."""

    point: str | None = None
    parameter: str | None = None
    table: Table
    address: int = Field(ge=0, le=65535)
    type: DataType | None = Field(default=None, description="default: bool for bits, else float32")
    scale: float = Field(default=1.0, description="register = value × scale (integer types)")

    @model_validator(mode="after")
    def _one_target(self) -> MapEntry:
        if (self.point is None) == (self.parameter is None):
            raise ValueError("give either 'point' or 'parameter'")
        if self.scale == 0:
            raise ValueError("scale: must not be 0")
        bits = self.table in BIT_TABLES
        if bits != (self.dtype is DataType.BOOL):
            kind = "bool" if bits else "a register type (int16 … float64)"
            raise ValueError(f"type: a {self.table.value} holds {kind}, not {self.dtype.value}")
        if self.address + WIDTH[self.dtype] > 65536:
            raise ValueError(f"address: {self.dtype.value} at {self.address} runs past 65535")
        return self

    @property
    def dtype(self) -> DataType:
        if self.type is not None:
            return self.type
        return DataType.BOOL if self.table in BIT_TABLES else DataType.FLOAT32

    @property
    def name(self) -> str:
        return self.point or self.parameter or ""


class WritePolicy(_Strict):
    """Writes to parameters: off unless enabled, and then only from the listed addresses."""

    enabled: bool = False
    allow: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="client IPs or networks (CIDR)",
    )
    audit_file: Path | None = Field(
        default=None, description="audit trail, unless the runtime has one (--mqtt's)"
    )

    @field_validator("allow")
    @classmethod
    def _allow(cls, allow: list[str], info: ValidationInfo) -> list[str]:
        for i, net in enumerate(allow):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} (item {i}) is not an IP address or network") from None
        if info.data.get("enabled") and not allow:
            raise ValueError("writes are enabled, so name the clients allowed to write")
        return allow

    def permits(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(n, strict=False) for n in self.allow)


class ModbusServerConfig(_Strict):
    host: str = Field(default="127.0.0.1", description="listen address")
    port: int = Field(default=5020, ge=0, le=65535)
    unit: int | None = Field(default=None, ge=1, le=247, description="answer only this unit id")
    max_connections: int = Field(default=16, ge=1, le=1024)
    idle_timeout_s: float = Field(default=60.0, gt=0, le=86400)
    command_timeout_s: float = Field(default=2.0, gt=0, le=60)
    sample_ms: float = Field(
        default=20.0, ge=1, le=60_000, description="how often the served values follow the scan"
    )
    stats_s: float = Field(default=5.0, ge=0.1, le=3600, description="engine statistics period")
    writes: WritePolicy = Field(default_factory=WritePolicy)
    map: list[MapEntry] = Field(min_length=1)


class ModbusConfigError(Exception):
    """A file that cannot be served; ``str()`` names the file and each problem's YAML path."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: invalid Modbus config: " + "; ".join(problems[:20]))


def _value_limits(app: LoadedApp, e: MapEntry) -> tuple[IecType, float, float] | None:
    """The IEC type of the entry's target and the lowest/highest value it can take."""
    if e.point is not None:
        spec = app.image[e.point].spec
        lo, hi = spec.range or (None, None)
        iec = spec.type
    else:
        pspec = app.parameters[e.name].spec
        lo, hi, iec = pspec.min, pspec.max, pspec.type
    if not iec.is_numeric:
        return iec, 0.0, 1.0
    tlo, thi = _IEC_LIMITS.get(iec, (-1.7976931348623157e308, 1.7976931348623157e308))
    return iec, float(tlo if lo is None else lo), float(thi if hi is None else hi)


def check_map(app: LoadedApp, entries: list[MapEntry]) -> list[str]:
    """Problems of a map against the app: unknown names, types that do not fit, overlaps."""
    problems: list[str] = []
    taken: dict[tuple[Table, int], int] = {}
    for i, e in enumerate(entries):
        at = f"at map.{i}"
        if e.point is not None and e.point not in app.image:
            known = ", ".join(p.name for p in app.image.points)
            problems.append(f"{at}.point: no point {e.point!r} (points: {known})")
            continue
        if e.parameter is not None and e.parameter not in app.parameters:
            known = ", ".join(app.parameters) or "none"
            problems.append(f"{at}.parameter: no parameter {e.parameter!r} (parameters: {known})")
            continue
        if e.parameter is not None and e.table not in (Table.HOLDING, Table.COIL):
            problems.append(
                f"{at}.table: parameter {e.name!r} is writable: a holding register or coil, "
                f"not {e.table.value}"
            )
        limits = _value_limits(app, e)
        assert limits is not None
        iec, lo, hi = limits
        fit = _fits(e, iec, lo, hi)
        if fit:
            problems.append(f"{at}.type: {fit}")
        for a in range(e.address, e.address + WIDTH[e.dtype]):
            other = taken.get((e.table, a))
            if other is not None:
                problems.append(
                    f"{at}.address: {e.table.value} {a} of {e.name!r} is also map.{other} "
                    f"({entries[other].name!r})"
                )
                break
            taken[(e.table, a)] = i
    return problems


_IEC_LIMITS = {IecType.INT: (-(2.0**15), 2.0**15 - 1), IecType.DINT: (-(2.0**31), 2.0**31 - 1)}
_INT_RANGE = {
    DataType.INT16: (-(2**15), 2**15 - 1), DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1), DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1), DataType.UINT64: (0, 2**64 - 1),
}  # fmt: skip


def _fits(e: MapEntry, iec: IecType, lo: float, hi: float) -> str:
    if iec is IecType.STRING:
        return f"{e.name!r} is a STRING: Modbus registers carry numbers and bits"
    if (iec is IecType.BOOL) != (e.dtype is DataType.BOOL):
        return f"{e.name!r} is {iec.value}, which {e.dtype.value} cannot carry"
    rng = _INT_RANGE.get(e.dtype)
    if rng is not None:
        a, b = sorted((lo * e.scale, hi * e.scale))
        if a < rng[0] or b > rng[1]:
            return (
                f"{e.dtype.value} (scale {e.scale:g}) cannot hold {e.name!r} over its range "
                f"{lo:g}..{hi:g}; declare a range, a wider type or a smaller scale"
            )
    return ""


def load_modbus_config(path: Path, app: LoadedApp) -> ModbusServerConfig:
    """Read, validate and check against ``app``; raise ModbusConfigError naming the problems."""
    try:
        data: Any = read_yaml_file(path)
    except YamlError as exc:
        raise ModbusConfigError(path, [str(exc)]) from None
    if not isinstance(data, dict):
        raise ModbusConfigError(path, ["at (top level): expected a mapping"])
    try:
        config = ModbusServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ModbusConfigError(path, format_validation_error(exc)) from None
    problems = check_map(app, config.map)
    if problems:
        raise ModbusConfigError(path, problems)
    return config
