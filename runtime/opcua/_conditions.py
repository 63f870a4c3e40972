"""ALARM blocks as OPC UA AlarmConditionType events (OPC 10000-9), acknowledged by command.

Each ALARM block is a condition whose ConditionId is its object ``Alarms.<program.path>``.
An event is fired from the Server object (where SCADA clients subscribe to events) whenever
the alarm becomes active or inactive, is acknowledged, or changes severity; it carries
ActiveState/Id, AckedState/Id, EnabledState/Id (always true), Retain (active or not yet
acknowledged), Severity (OPC UA's scale), Message, ConditionName and SourceName (the path).
Retained conditions are sent again on ConditionRefresh (asyncua keeps them). A client
acknowledges with the standard ``Acknowledge(EventId, Comment)`` method of
AcknowledgeableConditionType called on the ConditionId: the EventId must be the latest event
of that condition (else BadEventIdUnknown), and the acknowledgement is an ``ack_alarm``
command on the one command path, like the ``Acknowledge()`` method of the alarm's object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncua import Server, ua
from asyncua.server.event_generator import EventGenerator

__all__ = ["ACKNOWLEDGE", "Conditions"]

ACKNOWLEDGE = ua.NodeId(ua.Int32(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge))


def _text(on: bool, yes: str, no: str) -> ua.LocalizedText:
    return ua.LocalizedText(yes if on else no)


class Conditions:
    """One event generator per alarm; fires when an alarm's state changes."""

    def __init__(self) -> None:
        self.generators: list[EventGenerator] = []
        self.by_object: dict[ua.NodeId, int] = {}
        self.paths: list[str] = []
        self.fired = 0

    async def add(self, server: Server, path: str, obj: ua.NodeId) -> None:
        gen = EventGenerator(server.iserver.isession)
        await gen.init(
            ua.NodeId(ua.Int32(ua.ObjectIds.AlarmConditionType)),
            emitting_node=ua.NodeId(ua.Int32(ua.ObjectIds.Server)),
            add_generates_event=not self.generators,  # one reference, not one per alarm
        )
        ev: Any = gen.event
        ev.SourceNode, ev.SourceName = obj, path
        ev.ConditionName, ev.NodeId = path, obj
        ev.ConditionClassId = ua.NodeId(ua.Int32(ua.ObjectIds.ProcessConditionClassType))
        ev.ConditionClassName = ua.LocalizedText("Process")
        setattr(ev, "EnabledState/Id", True)
        ev.EnabledState = ua.LocalizedText("Enabled")
        ev.Retain = False
        self.by_object[obj] = len(self.generators)
        self.generators.append(gen)
        self.paths.append(path)

    async def update(
        self, j: int, *, active: bool, unacked: bool, severity: int, text: str, when: datetime
    ) -> None:
        """Fire the condition's event with its new state."""
        ev: Any = self.generators[j].event
        setattr(ev, "ActiveState/Id", active)
        ev.ActiveState = _text(active, "Active", "Inactive")
        setattr(ev, "AckedState/Id", not unacked)
        ev.AckedState = _text(not unacked, "Acknowledged", "Unacknowledged")
        ev.LastSeverity = ev.Severity
        ev.Severity = severity
        ev.Retain = active or unacked
        await self.generators[j].trigger(time_attr=when, message=text or self.paths[j])
        self.fired += 1

    def ack_target(self, object_id: ua.NodeId, args: list[ua.Variant]) -> tuple[str | None, int]:
        """(alarm path, Good) for a valid Acknowledge call, else (None, the StatusCode)."""
        j = self.by_object.get(object_id)
        if j is None:
            return None, ua.StatusCodes.BadNodeIdUnknown
        if len(args) != 2:
            code = ua.StatusCodes.BadArgumentsMissing
            return None, code if len(args) < 2 else ua.StatusCodes.BadTooManyArguments
        event_id = args[0].Value
        if not isinstance(event_id, bytes) or event_id != self._event_id(j):
            return None, ua.StatusCodes.BadEventIdUnknown
        return self.paths[j], ua.StatusCodes.Good

    def _event_id(self, j: int) -> Any:
        current = self.generators[j].event.EventId
        return current.Value if isinstance(current, ua.Variant) else current
