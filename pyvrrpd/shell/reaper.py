"""Reaping orphans of scripts, so none piles up as a zombie.

The daemon makes itself a child subreaper at start, as keepalived 2.2.7 does
(its parent process calls prctl(PR_SET_CHILD_SUBREAPER) in
start_keepalived() and reaps with waitpid on SIGCHLD): whatever a script
leaves behind (``sh -c 'sleep 100 &'``, a daemon it double-forks) is
reparented to us instead of to PID 1 or systemd. So the daemon behaves the
same in a container, where it may itself be PID 1 with nobody else to reap,
and outside one. A script's double-forked daemon thus becomes our child, as
under keepalived; it keeps running and is reaped when it exits.

Owns: the subreaper flag and a periodic sweep that reaps zombie children
nobody else is waiting for. Must not steal an exit status: asyncio's child
watcher waits for each script by PID, so the sweep never calls waitpid(-1).
It skips the scripts it knows (`pyvrrpd.io.children.OWNED`) and reaps a zombie
only once it has stayed a zombie for ``grace`` seconds, which also protects
any other spawner's child (its waiter collects it within milliseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from pyvrrpd.io import children

log = structlog.get_logger("pyvrrpd.reaper")

#: seconds between sweeps while there is no zombie (reading /proc/self/task/*/children)
INTERVAL = 0.5
#: seconds a zombie must have been seen before we reap it; the next sweep
#: comes this soon when one is waiting
GRACE = 0.2
#: zombies reaped per sweep at most (bounds a sweep's time)
MAX_PER_SWEEP = 1024


class Reaper:
    """Sweeps for orphaned zombie children every ``interval`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        interval: float = INTERVAL,
        grace: float = GRACE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._loop = loop
        self.interval = interval
        self.grace = grace
        self._clock = clock or loop.time
        self._seen: dict[int, float] = {}
        self._handle: asyncio.TimerHandle | None = None
        #: orphans reaped since start
        self.reaped = 0

    def start(self, subreaper: bool = True) -> None:
        """Become a subreaper (unless told not to) and start sweeping."""
        if subreaper:
            why = children.become_subreaper()
            if why is not None:
                log.warning("subreaper_unavailable", error=why, detail="orphans go to PID 1")
        self._handle = self._loop.call_later(self.interval, self._tick)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        try:
            self.sweep()
        except Exception as exc:  # a bug here must not stop the daemon
            log.error("reaper_failed", error=repr(exc))
        delay = min(self.grace, self.interval) if self._seen else self.interval
        self._handle = self._loop.call_later(delay, self._tick)

    def sweep(self) -> int:
        """Reap the zombies seen at least ``grace`` ago that nobody owns; how many."""
        now = self._clock()
        if children.proc_is_ours():
            zombies = children.zombie_children()
        else:
            # /proc belongs to another PID namespace: peek one at a time.
            pid = children.peek_exited()
            zombies = [] if pid is None else [pid]
        reaped = 0
        current = set()
        for pid in zombies[:MAX_PER_SWEEP]:
            if pid in children.OWNED:
                continue
            current.add(pid)
            first = self._seen.setdefault(pid, now)
            if now - first < self.grace:
                continue
            status = children.reap(pid)
            current.discard(pid)
            if status is not None:
                reaped += 1
                log.debug("orphan_reaped", pid=pid, status=status)
        # Forget PIDs that are gone (reaped by their owner, or by us).
        self._seen = {pid: t for pid, t in self._seen.items() if pid in current}
        self.reaped += reaped
        return reaped
