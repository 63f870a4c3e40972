"""What every request handler of the web process may use (one object, built at start)."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.front import ChildLink
from runtime.web._hub import Hub
from runtime.web._init import WebInit
from runtime.web._sessions import SessionStore
from runtime.web._shared import SharedQueries
from runtime.web._writes import WebCommands

__all__ = ["WebContext"]


@dataclass
class WebContext:
    init: WebInit
    hub: Hub
    link: ChildLink
    sessions: SessionStore
    commands: WebCommands
    queries: SharedQueries = field(init=False)

    def __post_init__(self) -> None:
        link = self.link
        self.queries = SharedQueries(link.query, lambda: link.applied)
