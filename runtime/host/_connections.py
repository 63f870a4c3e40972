"""The MQTT connections of this process, for the live view, the run summary and the heartbeat.

Read through ``sys.modules``: a run without any MQTT session never loads the MQTT client.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["connection_lines", "mqtt_connections"]


def mqtt_connections() -> list[dict[str, Any]]:
    """Every live session's connection status (hal.mqtt.connections()), or [] without MQTT."""
    mod = sys.modules.get("hal.mqtt")
    if mod is None:
        return []
    found: list[dict[str, Any]] = mod.connections()
    return found


def connection_lines(conns: list[dict[str, Any]]) -> list[str]:
    """One line per connection for a terminal: up/down, why, and a collision if any."""
    lines = []
    for c in conns:
        head = f"mqtt {c.get('who')} {c.get('endpoint', '')}"
        if c.get("connected"):
            state = "connected"
        elif c.get("stopped"):
            state = "stopped" if c.get("connects") else "NEVER CONNECTED"
        else:
            state = f"DOWN ({c.get('reason') or 'connecting'}) for {c.get('down_s', 0)} s"
        counts = (
            f"{c.get('connects', 0)} connect(s), {c.get('drops', 0)} drop(s), "
            f"{c.get('connect_failures', 0)} failed attempt(s)"
        )
        line = f"{head}: {state}; {counts}"
        if c.get("last_error") and (c.get("connect_failures") or c.get("drops")):
            line += f"; last: {c['last_error']}"
        if c.get("collision"):
            line += f"; CLIENT-ID COLLISION: {c['collision']}"
        for topic, reason in (c.get("refused_subscriptions") or {}).items():
            line += f"; subscription to {topic} refused: {reason}"
        lines.append(line)
    return lines
