"""structlog configuration: console on a TTY, JSON lines otherwise.

Owns: how log events are rendered and where they go. Must not decide what
is logged (the daemon does).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from typing import Any

import structlog


def configure(*, json: bool | None = None, level: str = "info", syslog: bool = False) -> None:
    """Set up structlog; `json=None` picks console rendering when stderr is a TTY."""
    if json is None:
        json = not sys.stderr.isatty()
    lvl = getattr(logging, level.upper(), logging.INFO)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=False),
    ]
    if syslog and os.path.exists("/dev/log"):
        handler: logging.Handler = logging.handlers.SysLogHandler(address="/dev/log")
        handler.setFormatter(logging.Formatter("pyvrrpd[%(process)d]: %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(lvl)
        structlog.configure(
            processors=[
                *processors,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(lvl),
            logger_factory=structlog.stdlib.LoggerFactory(),
            cache_logger_on_first_use=True,
        )
        return
    # JSON lines carry a logged exception's traceback as one string field.
    tail: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
    structlog.configure(
        processors=[*processors, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger() -> Any:
    """The daemon's logger (for the few places outside the daemon that log)."""
    return structlog.get_logger("pyvrrpd")
