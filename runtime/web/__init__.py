"""The web HMI of a running app (``vplc run APP --web :8080 [--web-config web.yaml]``).

Pages (plain HTML/CSS/JS modules in ``static/``, no build step): Overview (loop
faceplates, process values with units, BAD and FORCED marked), Trends (in-memory ring,
older data from trace files), Alarms (acknowledge with a comment), Batch (ISA-88 commands
with a confirmation), Parameters (write with a reason), Engineering (instance tree watch,
forcing, task statistics and latency histograms, online change), Audit (filters and the
verifier's verdict). A banner on every page while anything is forced or the runtime is not
running.

The server (Starlette on uvicorn) runs in its own process fed by the same shared-memory
frame as the MQTT bridge's process mode; values reach the browsers by server-sent events.
Every write is a command on the one command path (``runtime.ops``): the access file's users
and roles, single use, rate limits, the signed audit trail with the logged-in user.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtime.web._bridge import WebServer
from runtime.web._child import listen_socket
from runtime.web._config import WebConfig, load_web_config, parse_listen

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["WebConfig", "WebServer", "attach_web", "load_web_config", "parse_listen"]


def attach_web(
    engine: ScanEngine, config: WebConfig | Path | str, *, log_format: str = "console"
) -> WebServer:
    """Build the HMI for ``engine`` and start it; returns at once (``wait_started`` waits).

    Raises OSError or ValueError before anything starts when the port is taken, a TLS file
    or the access file is unusable, or an overview group names an unknown point.
    """
    if not isinstance(config, WebConfig):
        config = load_web_config(config)
    _check(engine, config)
    server = WebServer(engine, config, overview=config.overview, log_format=log_format)
    server.start()
    return server


def _check(engine: ScanEngine, config: WebConfig) -> None:
    if config.port:
        listen_socket(config.host, config.port).close()  # taken: refused here, not in a loop
    for key in ("tls_cert", "tls_key"):
        path = getattr(config, key)
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{key}: {path} is not a readable file")
    for group, names in config.overview.items():
        for i, name in enumerate(names):
            if name not in engine.image:
                raise ValueError(f"overview.{group}[{i}]: unknown point {name!r}")
