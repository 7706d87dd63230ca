"""A process's death as an event loop callback, through a pidfd (Linux >= 5.3).

Owns: opening a pidfd for a PID (`os.pidfd_open`), telling a process that
has already exited (a zombie's pidfd is readable at once) from a live one,
and registering the fd with `loop.add_reader` so exit is an event, not a
poll (peers.md 5: median 0.39 ms from SIGKILL to the callback). The fd is
bound to that process instance, so a reused PID never fires it; it stays
valid across exec (an HAProxy master re-executing itself on reload keeps it).
Must not: decide what a death means (pyvrrpd.trackers.process does).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
from collections.abc import Callable


def open_live(pid: int, proc_pid: int | None = None, proc_root: str = "/proc") -> int | None:
    """A pidfd for `pid`, or None if it is gone or has already exited (zombie).

    `proc_pid`: the same process's PID as `proc_root` lists it, when that
    /proc belongs to an ancestor PID namespace; the pidfd is kept only if
    the kernel says it is that process (fdinfo's Pid is shown in the PID
    namespace of the /proc it is read through).
    """
    try:
        fd = os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.EINVAL):  # ESRCH: no such process
            return None
        raise
    if exited(fd) or (proc_pid is not None and fdinfo_pid(fd, proc_root) != proc_pid):
        os.close(fd)
        return None
    return fd


def fdinfo_pid(fd: int, proc_root: str = "/proc") -> int | None:
    """The PID of pidfd `fd`'s process in `proc_root`'s PID namespace (None: unknown)."""
    try:
        with open(f"{proc_root}/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def exited(fd: int) -> bool:
    """Whether the process behind pidfd `fd` has exited (readable = exited)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


class PidWatch:
    """Calls `on_exit(pid)` once, from the loop, when the process exits."""

    __slots__ = ("_fd", "_loop", "_on_exit", "pid")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        fd: int,
        on_exit: Callable[[int], None],
    ) -> None:
        self.pid = pid
        self._loop = loop
        self._fd: int | None = fd
        self._on_exit = on_exit
        loop.add_reader(fd, self._fire)

    @classmethod
    def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        on_exit: Callable[[int], None],
        *,
        local: int | None = None,
        proc_root: str = "/proc",
    ) -> PidWatch | None:
        """Watch `pid`; None if it is already gone (nothing will be called).

        `local`: the process's PID in our namespace when `pid` comes from a
        /proc (`proc_root`) of an ancestor PID namespace; `on_exit` still
        gets `pid`.
        """
        if local is None or local == pid:
            fd = open_live(pid)
        else:
            fd = open_live(local, proc_pid=pid, proc_root=proc_root)
        return None if fd is None else cls(loop, pid, fd, on_exit)

    def has_exited(self) -> bool:
        """Whether the watched process has exited (its callback may not have run yet)."""
        return self._fd is None or exited(self._fd)

    def _fire(self) -> None:
        self.close()
        self._on_exit(self.pid)

    def close(self) -> None:
        """Stop watching (idempotent); the callback is not called after this."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._loop.remove_reader(fd)
        os.close(fd)


__all__ = ["PidWatch", "exited", "fdinfo_pid", "open_live"]
