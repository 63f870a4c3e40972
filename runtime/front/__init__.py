"""Process front-ends (MQTT, OPC UA, web, ...): one shared-memory frame out of the scan, children.

The scan thread pays for one ``FrameWriter`` per engine (``frame_hub(engine)``), whatever the
number of front-ends: each subscribes a ``Feed`` (the frame's name and its own queue of texts)
and runs its network work in a spawned child supervised by a ``FrontEnd`` subclass. The child
reads the frame (``SharedFrame(n_points, n_alarms, name=...)``) and talks to the scan process
through its ``ChildLink``: commands go up to the one command path, texts and statistics down.
"""

from __future__ import annotations

from runtime.front._floats import shortest_float32
from runtime.front._hub import Feed, FrameHub, frame_hub
from runtime.front._link import ChildLink
from runtime.front._port import check_port
from runtime.front._probes import PhaseProbe, engine_alarms, engine_phases, follow_app
from runtime.front._shm import ALARM_FIELDS, Frame, SharedFrame
from runtime.front._supervisor import FrontEnd, FrontEndConfig
from runtime.front._writer import STATES, FrameWriter, PointInfo, point_kinds

__all__ = [
    "ALARM_FIELDS",
    "STATES",
    "ChildLink",
    "Feed",
    "Frame",
    "FrameHub",
    "FrameWriter",
    "FrontEnd",
    "FrontEndConfig",
    "PhaseProbe",
    "PointInfo",
    "SharedFrame",
    "check_port",
    "engine_alarms",
    "engine_phases",
    "follow_app",
    "frame_hub",
    "point_kinds",
    "shortest_float32",
]
