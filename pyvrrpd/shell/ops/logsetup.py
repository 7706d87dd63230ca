"""structlog configuration: console on a TTY, JSON lines otherwise.

Owns: how log events are rendered and where they go, the keepalived text
of an event (`msg`, from shell/ops/katext.py) and the `keepalived` compat
command's look: syslog identifier `Keepalived_vrrp`, and each line starting
with keepalived 2.2.7's text (console lines with keepalived -l's ctime
prefix), followed by the event's JSON fields, so both keepalived log
alerts and JSON consumers work. Must not decide what is logged (the daemon does).
"""

from __future__ import annotations

import json as jsonlib
import logging
import logging.handlers
import os
import sys
import time
from typing import Any

import structlog

from pyvrrpd.shell.ops.katext import KEEPALIVED_IDENT, keepalived_text


def add_keepalived_text(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: `msg` = what keepalived 2.2.7 logs for this event, if anything."""
    text = keepalived_text(str(event_dict.get("event")), event_dict)
    if text is not None:
        event_dict["msg"] = text
    return event_dict


def render_compat(event_dict: dict[str, Any], *, ctime: bool) -> str:
    """The compat command's line: keepalived's text (if any), then the event as JSON.

    keepalived -l prints "Wed Nov 25 01:33:20 2026: (VI_1) Entering MASTER
    STATE"; with `ctime` we print the same prefix. A JSON consumer reads the
    object from the first "{" on.
    """
    body = jsonlib.dumps(event_dict, default=str)
    text = event_dict.get("msg")
    line = f"{text} {body}" if text else body
    return f"{time.ctime()}: {line}" if ctime else line


def stderr_is_journal() -> bool:
    """Whether stderr is systemd's journal stream (JOURNAL_STREAM is "dev:inode" of it)."""
    want = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return want == f"{st.st_dev}:{st.st_ino}"


def configure(
    *,
    json: bool | None = None,
    level: str = "info",
    syslog: bool = False,
    keepalived: bool = False,
    syslog_address: str = "/dev/log",
) -> None:
    """Set up structlog; `json=None` picks console rendering when stderr is a TTY.

    `keepalived`: the compat command's identifier and line layout (module docstring).
    """
    if json is None:
        json = not sys.stderr.isatty()
    lvl = getattr(logging, level.upper(), logging.INFO)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=False),
        add_keepalived_text,
    ]
    ident = KEEPALIVED_IDENT if keepalived else "pyvrrpd"
    if syslog and os.path.exists(syslog_address):
        handler: logging.Handler = logging.handlers.SysLogHandler(address=syslog_address)
        # journald and rsyslog take SYSLOG_IDENTIFIER from "ident[pid]: ".
        handler.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(lvl)
        renderer: Any = (
            (lambda _l, _n, ed: render_compat(ed, ctime=False))
            if keepalived
            else structlog.processors.JSONRenderer()
        )
        structlog.configure(
            processors=[*processors, structlog.processors.format_exc_info, renderer],
            wrapper_class=structlog.make_filtering_bound_logger(lvl),
            logger_factory=structlog.stdlib.LoggerFactory(),
            cache_logger_on_first_use=True,
        )
        return
    # JSON lines carry a logged exception's traceback as one string field.
    tail: list[Any]
    if keepalived:
        # keepalived -l: "ctime: text" lines; journald stamps its own.
        ctime = not stderr_is_journal()
        tail = [
            structlog.processors.format_exc_info,
            lambda _l, _n, ed: render_compat(ed, ctime=ctime),
        ]
    elif json:
        tail = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        tail = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[*processors, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger() -> Any:
    """The daemon's logger (for the few places outside the daemon that log)."""
    return structlog.get_logger("pyvrrpd")
