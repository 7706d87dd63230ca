"""Where a daemon's files live under /run, and reading its run-state record.

Owns: the default control socket, the control socket of a `keepalived`
compat daemon (it follows the pid file), the run-state file beside a
control socket, and reading that record and telling whether the daemon that
wrote it still runs. The record itself is written by
pyvrrpd.shell.ops.runstate.

Standard library only, on purpose: `pyvrrpd release-vips` (cli/release.py)
reads the record and acts on it right after a daemon died, before any heavy
import (README "After a crash"), and `pyvrrpd --help` shows the default
socket without loading the control server.
Must not: import asyncio, structlog, pyroute2 or another pyvrrpd layer.
"""

from __future__ import annotations

import json
import os
from typing import Any

DEFAULT_SOCKET = "/run/pyvrrpd/pyvrrpd.sock"
KEEPALIVED_PID = "/run/keepalived.pid"
FORMAT = 1


def control_socket_for(pid_file: str | None) -> str:
    """The control socket of a `keepalived` compat daemon whose main pid file is `pid_file`.

    It follows the pid file, so two daemons with distinct pid files (two
    namespaces sharing /run) get distinct sockets: /run/ka1.pid ->
    /run/ka1.pyvrrpd.sock. keepalived's default pid file keeps pyvrrpd's
    default socket, so plain `pyvrrpd status` finds a plain compat daemon.
    """
    if not pid_file or os.path.abspath(pid_file) == KEEPALIVED_PID:
        return DEFAULT_SOCKET
    stem = pid_file[:-4] if pid_file.endswith(".pid") else pid_file
    return f"{stem}.pyvrrpd.sock"


def state_file_for(control_socket: str | None) -> str:
    """The run-state file beside a daemon's control socket.

    The socket already follows the pid file (`control_socket_for`), so two
    daemons sharing /run never share a state file: /run/ka1.pyvrrpd.sock ->
    /run/ka1.pyvrrpd.state, /run/pyvrrpd/pyvrrpd.sock -> /run/pyvrrpd/pyvrrpd.state.
    """
    path = control_socket or DEFAULT_SOCKET
    stem = path[:-5] if path.endswith(".sock") else path
    return f"{stem}.state"


def process_start(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and ')': split after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def writer_alive(record: dict[str, Any]) -> int | None:
    """The pid of the daemon that wrote `record` if that very process still runs
    (the start time tells a reused pid from the daemon)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    start = process_start(pid)
    if start is None or start != record.get("start"):
        return None
    return pid


def read(path: str) -> dict[str, Any] | None:
    """The record at `path`; None if there is none. ValueError if unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pyvrrpd run-state file (format {FORMAT})")
    return data
