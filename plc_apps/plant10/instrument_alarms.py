"""Instrument alarms of one reactor: an ALARM on every analogue input, valve discrepancies."""

from __future__ import annotations

from hal import Direction, IecType, Point, Quality
from runtime import AppContext, CycleContext, Program
from runtime.blocks import ALARM

from .instruments import ANALOG, ONOFF_VALVES

_LIMITS = {a.tag: a for a in ANALOG}
_ANALOG_TYPES = (IecType.REAL, IecType.LREAL)
_BAD = Quality.BAD
_VALVE_TRAVEL_S = 10.0  # a 2 s stroke plus margin before a valve is reported as failed


class InstrumentAlarms(Program):
    """Generic alarms for unit ``unit``: found from the manifest's points, not listed by hand.

    Every REAL/LREAL input point of the unit gets an ALARM: its H/L limits come from
    plant10/instruments.py (absent: only the BAD-quality alarm), with a 1 % of range deadband
    and a 5 s on-delay. Every on/off valve XV8nn gets a discrepancy alarm: commanded open but
    not at its open limit (or closed but not at its closed limit) for longer than its travel.
    """

    def __init__(self, app: AppContext, *, unit: str) -> None:
        super().__init__(app)
        pre = f"{unit}_"
        self.analog: list[ALARM] = []
        self._analog_io: list[tuple[ALARM, Point]] = []
        for name in app.point_names(pre):
            point = app.point(name)
            if point.direction is not Direction.IN or point.type not in _ANALOG_TYPES:
                continue
            spec = _LIMITS.get(name[len(pre) :])
            alarm = ALARM(TEXT=name + (f" {spec.description}" if spec else ""), DELAY=5.0)
            if spec is not None:
                alarm.DEADBAND = 0.01 * (spec.hi - spec.lo)
                if spec.alarm_hi is not None:
                    alarm.H, alarm.H_EN = spec.alarm_hi, True
                if spec.alarm_lo is not None:
                    alarm.L, alarm.L_EN = spec.alarm_lo, True
            self.analog.append(alarm)
            self._analog_io.append((alarm, point))
        self.valves: list[ALARM] = []
        self._valve_io: list[tuple[ALARM, Point, Point, Point]] = []
        for i, valve in enumerate(ONOFF_VALVES, start=1):
            tag = f"8{i:02d}"
            alarm = ALARM(
                TEXT=f"{pre}XV{tag} {valve.replace('_', ' ')}: position discrepancy",
                H=0.5,
                H_EN=True,
                DELAY=_VALVE_TRAVEL_S,
            )
            cmd, zso, zsc = (app.point(f"{pre}{kind}{tag}") for kind in ("XV", "ZSO", "ZSC"))
            self.valves.append(alarm)
            self._valve_io.append((alarm, cmd, zso, zsc))

    # Hundreds of blocks per cycle: attribute stores and ``execute`` are the cheapest call on
    # both block implementations (no keyword arguments to parse, no dict).
    def execute(self, ctx: CycleContext) -> None:
        for alarm, point in self._analog_io:
            alarm.IN = point.value
            alarm.BAD = point.quality is _BAD
            alarm.execute(ctx)
        for alarm, cmd, zso, zsc in self._valve_io:
            # commanded open: must be at the open limit and off the closed one; and vice versa
            at, off = (zso, zsc) if cmd.value else (zsc, zso)
            alarm.IN = 0.0 if at.value and not off.value else 1.0
            alarm.execute(ctx)
