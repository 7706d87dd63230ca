"""systemd's notify protocol (Type=notify): READY, RELOADING, STOPPING and the watchdog.

Owns: the datagrams to $NOTIFY_SOCKET (sd_notify(3): one datagram of
newline-separated KEY=VALUE lines to an AF_UNIX socket; a name starting
with '@' is in the abstract namespace) and the watchdog pinger. Without
NOTIFY_SOCKET (not started by systemd) every call does nothing.

The watchdog (WATCHDOG_USEC, sd_watchdog_enabled(3)) is pinged from the
event loop every quarter of the interval, and only while the loop and the
daemon's timer heap (shell/timerheap.py) run on time: a master whose timers
fire late sends late adverts, and the backup takes over anyway; systemd
should then kill it (and ExecStopPost's release-vips remove its VIPs)
rather than leave two masters. The units' WatchdogSec (2 s) is shorter than
the shortest Master_Down_Interval minus one advert interval (RFC 3768 6.1:
3 * 1 s + Skew_Time >= 3.0078 s at priority 254, minus 1 s), so a master stuck right after
an advert is killed before a backup can have taken over.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Protocol

__all__ = ["Watchdog", "notify", "ready", "reloading", "stopping", "watchdog_usec"]

#: A ping is skipped when a timer (or the pinger itself) ran this much late.
LATE = 0.25

# Read once at import and taken out of the environment: scripts run by the
# daemon must not inherit the socket (NotifyAccess=main would ignore them,
# but a script talking to it would still be a confusing log line).
_SOCKET = os.environ.pop("NOTIFY_SOCKET", None)
_WATCHDOG_USEC = os.environ.pop("WATCHDOG_USEC", None)
_WATCHDOG_PID = os.environ.pop("WATCHDOG_PID", None)


def _address(name: str) -> str:
    return "\0" + name[1:] if name.startswith("@") else name


def notify(message: str) -> bool:
    """Send one notify datagram; False when there is no socket or it failed."""
    if not _SOCKET:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), _address(_SOCKET))
    except OSError:
        return False
    return True


def ready() -> bool:
    return notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=running")


def reloading() -> bool:
    """Before a reload: systemd (253+) waits for the next READY=1 to finish `systemctl reload`."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading")


def stopping() -> bool:
    return notify("STOPPING=1\nSTATUS=stopping")


def watchdog_usec() -> int | None:
    """The watchdog interval systemd asked for (for this process), or None."""
    if not _SOCKET or not _WATCHDOG_USEC:
        return None
    if _WATCHDOG_PID and str(os.getpid()) != _WATCHDOG_PID:
        return None
    try:
        usec = int(_WATCHDOG_USEC)
    except ValueError:
        return None
    return usec if usec > 0 else None


class _Heap(Protocol):
    def take_lateness(self) -> float: ...


class Watchdog:
    """WATCHDOG=1 every interval/4 while the loop and the timer heap are on time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, heap: _Heap, usec: int) -> None:
        self._loop = loop
        self._heap = heap
        self.period = usec / 4e6
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self.pings = 0
        self.skipped = 0

    @classmethod
    def start(cls, loop: asyncio.AbstractEventLoop, heap: _Heap) -> Watchdog | None:
        usec = watchdog_usec()
        if usec is None:
            return None
        dog = cls(loop, heap, usec)
        dog._tick(first=True)
        return dog

    def _tick(self, first: bool = False) -> None:
        now = self._loop.time()
        late = max(now - self._due, self._heap.take_lateness())
        if first or late < LATE:
            if notify("WATCHDOG=1"):
                self.pings += 1
        else:
            self.skipped += 1
        self._due = now + self.period
        self._handle = self._loop.call_at(self._due, self._tick)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
