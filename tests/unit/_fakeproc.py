"""A fake /proc and pidfd watcher for ProcessTracker unit tests (no real processes).

`FakeProc` is a /proc the test edits (pid -> comm); its watcher "opens a
pidfd" for any listed PID and says the process has exited once the test
removed it. `make` builds a tracker on it without the proc connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyvrrpd.config.model import VrrpTrackProcess
from pyvrrpd.trackers.base import OnChange
from pyvrrpd.trackers.process import ProcessTracker

Events = list[tuple[str, bool | None, int | None]]


def block(process: str = "haproxy", **kw: Any) -> VrrpTrackProcess:
    """A vrrp_track_process block named `p`."""
    return VrrpTrackProcess("p", process, **kw)


def cmd(*argv: str) -> bytes:
    """A /proc/PID/cmdline."""
    return b"".join(a.encode() + b"\0" for a in argv)


@dataclass
class FakeProc:
    """A /proc the test edits, and pidfd watches it fires by hand."""

    comms: dict[int, str] = field(default_factory=dict)
    watched: set[int] = field(default_factory=set)

    def comm(self, pid: int) -> str | None:
        return self.comms.get(pid)

    def cmdline(self, pid: int) -> bytes | None:
        c = self.comms.get(pid)
        return None if c is None else cmd(c)

    def pids(self) -> list[int]:
        return list(self.comms)

    def watcher(self, pid: int, on_exit: object) -> object:
        if pid not in self.comms:
            return None
        self.watched.add(pid)
        return _Watch(self, pid)


class _Watch:
    def __init__(self, proc: FakeProc, pid: int) -> None:
        self.proc, self.pid = proc, pid

    def close(self) -> None:
        pass

    def has_exited(self) -> bool:
        return self.pid not in self.proc.comms


def make(
    proc: FakeProc,
    *,
    scan_interval: float = 3600,
    on_change: OnChange | None = None,
    **kw: Any,
) -> tuple[ProcessTracker, Events]:
    """A tracker of `block(**kw)` on `proc`, no connector; the events it
    reports (unless `on_change` takes them)."""
    events: Events = []
    tr = ProcessTracker(
        (block(**kw),),
        on_change or (lambda n, ok, v: events.append((n, ok, v))),
        reader=proc,
        watcher=proc.watcher,  # type: ignore[arg-type]
        use_connector=False,
        scan_interval=scan_interval,
    )
    return tr, events
