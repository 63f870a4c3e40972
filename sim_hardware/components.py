"""Final control elements of a plant: rate-limited valves, ramping pumps and agitator motors."""

# Compiled when built (components.pxd, sim_hardware/_accel.py): plain typed Python, no cython.

from __future__ import annotations

import math
from typing import Any

__all__ = ["Motor", "OnOff", "Pump", "Valve"]


def _clamp_command(value: float, hi: float) -> float:
    # A NaN command would poison the plant state forever; a real positioner treats a broken
    # signal as 0 % (signal loss), so does the model.
    if value != value:
        return 0.0
    return hi if value > hi else 0.0 if value < 0.0 else float(value)


class Valve:
    """A control valve: position follows the command at a limited stroke speed.

    ``stroke_time_s`` is the time for a full 0→100 % stroke. ``flow()`` is linear in position
    (an installed characteristic close to linear is what a tuned loop sees). A stuck valve
    keeps its position whatever the command says.
    """

    __slots__ = ("command", "max_flow", "position", "rate", "stroke_time_s", "stuck")

    def __init__(self, *, max_flow: float, stroke_time_s: float = 5.0, position: float = 0.0):
        self.max_flow = max_flow
        self.stroke_time_s = stroke_time_s
        self.rate = 100.0 / stroke_time_s if stroke_time_s > 0 else math.inf
        self.command = position
        self.position = position
        self.stuck = False

    def set(self, command: float) -> None:
        self.command = _clamp_command(command, 100.0)

    def step(self, dt: float) -> None:
        if self.stuck:
            return
        err = self.command - self.position
        lim = self.rate * dt
        self.position = (
            self.command if -lim <= err <= lim else self.position + (lim if err > 0 else -lim)
        )

    def flow(self) -> float:
        return self.max_flow * self.position * 0.01

    def snapshot(self) -> dict[str, Any]:
        return {"command": self.command, "position": self.position, "stuck": self.stuck}

    def restore(self, state: dict[str, Any]) -> None:
        self.command = float(state["command"])
        self.position = float(state["position"])
        self.stuck = bool(state["stuck"])


class OnOff(Valve):
    """An on/off final element (solenoid valve, contactor, lamp): a command above 0.5 is ON.

    Reuses the valve's stroke (a pneumatic actuator takes seconds) and its stuck fault.
    """

    __slots__ = ()

    def set(self, command: float) -> None:
        Valve.set(self, 100.0 if command > 0.5 else 0.0)  # NaN compares False: closed

    @property
    def on(self) -> bool:
        return self.command > 50.0

    @property
    def opened(self) -> bool:
        return self.position >= 95.0

    @property
    def closed(self) -> bool:
        return self.position <= 5.0


class Pump:
    """A variable-speed pump: speed ramps to the command; a failed pump delivers nothing.

    ``running`` is the motor-starter feedback: it reports what was commanded, so a failed
    pump (broken coupling, empty supply) still says it runs while no flow arrives — the case
    a flow meter or the process response has to reveal.
    """

    __slots__ = ("command", "failed", "max_flow", "ramp", "speed")

    def __init__(self, *, max_flow: float, ramp_s: float = 2.0) -> None:
        self.max_flow = max_flow
        self.ramp = 100.0 / ramp_s if ramp_s > 0 else math.inf
        self.command = 0.0
        self.speed = 0.0
        self.failed = False

    def set(self, command: float) -> None:
        self.command = _clamp_command(command, 100.0)

    def step(self, dt: float) -> None:
        err = self.command - self.speed
        lim = self.ramp * dt
        self.speed = self.command if -lim <= err <= lim else self.speed + (lim if err > 0 else -lim)

    @property
    def running(self) -> bool:
        return self.command > 0.5

    def flow(self) -> float:
        return 0.0 if self.failed else self.max_flow * self.speed * 0.01

    def snapshot(self) -> dict[str, Any]:
        return {"command": self.command, "speed": self.speed, "failed": self.failed}

    def restore(self, state: dict[str, Any]) -> None:
        self.command = float(state["command"])
        self.speed = float(state["speed"])
        self.failed = bool(state["failed"])


class Motor:
    """An agitator drive on a VFD: speed (rpm) ramps towards the setpoint."""

    __slots__ = ("command", "failed", "max_rpm", "ramp", "speed")

    def __init__(self, *, max_rpm: float, ramp_rpm_s: float = 10.0, speed: float = 0.0) -> None:
        self.max_rpm = max_rpm
        self.ramp = ramp_rpm_s
        self.command = speed
        self.speed = speed
        self.failed = False

    def set(self, command: float) -> None:
        self.command = _clamp_command(command, self.max_rpm)

    def step(self, dt: float) -> None:
        target = 0.0 if self.failed else self.command
        err = target - self.speed
        lim = self.ramp * dt
        self.speed = target if -lim <= err <= lim else self.speed + (lim if err > 0 else -lim)

    def snapshot(self) -> dict[str, Any]:
        return {"command": self.command, "speed": self.speed, "failed": self.failed}

    def restore(self, state: dict[str, Any]) -> None:
        self.command = float(state["command"])
        self.speed = float(state["speed"])
        self.failed = bool(state["failed"])
