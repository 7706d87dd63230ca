"""Pid files: refuse to start over a live daemon, remove only what we wrote.

Owns: the pid files named on the command line (`--pid-file`, keepalived's
`-p`/`-r`). A file naming a live process other than us means another daemon
is running: that is an error, and its file is left alone.
"""

from __future__ import annotations

import contextlib
import os

from pyvrrpd.io.errors import HostError


def _live_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            pid = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid == os.getpid() or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


class PidFiles:
    """Write our pid to each path; `release()` removes the ones we wrote."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = [p for p in paths if p]
        self._written: list[str] = []

    def acquire(self) -> None:
        for path in self.paths:
            other = _live_pid(path)
            if other is not None:
                raise HostError(f"daemon already running (pid {other} in {path})")
        for path in self.paths:
            directory = os.path.dirname(path)
            try:
                if directory:
                    os.makedirs(directory, exist_ok=True)
                with open(path, "w", encoding="ascii") as fh:
                    fh.write(f"{os.getpid()}\n")
            except OSError as exc:
                raise HostError(f"cannot write pid file {path}: {exc.strerror}") from exc
            self._written.append(path)

    def release(self) -> None:
        for path in self._written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._written.clear()
