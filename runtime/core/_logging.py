"""structlog set-up: human console output or one JSON object per line (``--log-format json``)."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["console", "json"]


def configure_logging(
    fmt: LogFormat = "console", *, level: str = "info", stream: TextIO | None = None
) -> None:
    """Route structlog to ``stream`` (stderr by default) in the chosen format."""
    out = stream or sys.stderr
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    _route_stdlib(logging.getLevelNamesMapping()[level.upper()])
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


class _ToStructlog(logging.Handler):
    """Standard-library records of the ``vplc`` loggers (hal.mqtt's StdlibLog, used by parts
    that may not import structlog) rendered like every other line."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "vplc_event", None) or record.getMessage()
        fields = getattr(record, "vplc_fields", None) or {}
        structlog.get_logger(record.name).log(record.levelno, event, **fields)


def _route_stdlib(level: int) -> None:
    log = logging.getLogger("vplc")
    log.handlers = [h for h in log.handlers if not isinstance(h, _ToStructlog)]
    log.addHandler(_ToStructlog())
    log.setLevel(level)
    log.propagate = False
