"""Who this runtime instance is on the wire: an id in its birth, will and goodbye messages.

Two runtimes publishing as the same site/node/app (or with the same client id) silently
overwrite each other's retained truth and, with one client id, make the broker drop one at each
connect of the other. The id lets each recognise the other's birth and say so.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Instance"]


@dataclass(frozen=True)
class Instance:
    """One runtime process (a restarted bridge child keeps its parent's instance)."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "pid": self.pid}
