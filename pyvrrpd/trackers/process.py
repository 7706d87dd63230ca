"""`vrrp_track_process`: how many matching processes run, as tracker events.

Owns (keepalived.md 1.5; keepalived core/track_process.c, man5 "VRRP track
processes"): matching a process against a block, counting the matching live
processes per block, the quorum test (OK <=> quorum <= count <= quorum_max),
fork_delay / terminate_delay, and the tracker names the core sees
(``process:NAME``) with their TrackerSpecs.

How it learns (event-driven, works unchanged in network and PID namespaces):
- death: every counted process is watched by a pidfd on the event loop
  (pyvrrpd.io.pidfd), never polled. The pidfd survives exec, so an HAProxy
  master re-executing itself on SIGUSR2 keeps counting throughout;
- birth, exec and renames: the kernel's process-events connector
  (pyvrrpd.io.cnproc) where the kernel gives it (initial network and PID
  namespace), plus a scan of /proc every SCAN_INTERVAL everywhere. The scan
  reads comm (and cmdline only if a block needs it) for PIDs it has not seen,
  re-reads PIDs first seen less than YOUNG seconds ago (a fork is often
  followed by an exec) and the counted ones (an exec away from the name),
  and re-reads everything every FULL_SCAN seconds. 1 s: a process started
  without the connector is counted within about a second; only the
  discovery of new processes depends on it, never the detection of a death.

Matching (keepalived `check_process()` / `check_params()`): without
full_command the block's name equals /proc/PID/comm (exact, no pattern;
comm keeps 15 characters, so a longer name is compared by those); with
full_command (implied by parameters or param_match) it equals argv[0] of
/proc/PID/cmdline, path included; parameters are then compared as written:
exact (all, nothing more), partial (the first n match exactly), initial (the
last may be longer). Zombies never count.

Failure modes: at most MAX_PIDFDS pidfds (the rest are counted, a zombie
among them until it is reaped, and their deaths seen by the connector or
the scan: a PID /proc stops listing has exited); /proc unreadable for a
moment (EMFILE) is "unknown", never "gone" (a start, or a reload's rebuild,
that cannot list it reports nothing until a scan can); an error in one scan does not
end the scanning; a /proc of an ancestor PID namespace (`unshare --pid`
without --mount-proc) is read through each process's NSpid line, and only
processes of our PID namespace count, as our own /proc would show them.

Delays as keepalived: a count change caused by a fork reaches the core after
fork_delay, one caused by an exit after terminate_delay, if the quorum
result still differs then; an exec, rename or scan is applied at once; a
change back cancels a pending delay.
Must not: decide states or priorities (pyvrrpd.core.tracking).
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from pyvrrpd.config.model import Config, VrrpInstance, VrrpTrackProcess
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io import cnproc
from pyvrrpd.io.pidfd import PidWatch
from pyvrrpd.trackers.base import OnChange, ref_specs

log = structlog.get_logger("pyvrrpd.track")

PREFIX = "process:"
SCAN_INTERVAL = 1.0
YOUNG = 5.0
FULL_SCAN = 30.0
ACK_TIMEOUT = 1.0  # no subscription ack by then: the kernel ignored us (PID namespace)
COMM_LEN = 15
CMDLINE_MAX = 65536
# pidfds held at most: each is a daemon fd, and a tracked name with thousands
# of processes (a fork bomb, a big prefork pool) must not use up
# RLIMIT_NOFILE (1024 by default) that sockets and script pipes need. The
# processes beyond it are still counted; their deaths are seen by the
# connector or the next scan instead.
MAX_PIDFDS = 256


def tracker_name(name: str) -> str:
    return PREFIX + name


def process_specs(inst: VrrpInstance, config: Config) -> tuple[TrackerSpec, ...]:
    """The instance's `track_process` entries as core trackers."""
    blocks = {p.name: (p.weight, p.weight_reverse) for p in config.track_processes}
    return ref_specs(inst.track_process, blocks, PREFIX)


def process_source(
    config: Config, on_change: OnChange, reloading: bool = False
) -> ProcessTracker | None:
    """A tracker for the blocks some instance references; None if none is."""
    used = {r.name for i in config.instances for r in i.track_process}
    blocks = tuple(p for p in config.track_processes if p.name in used)
    return ProcessTracker(blocks, on_change) if blocks else None


# ------------------------------------------------------------------ matching


def matches(block: VrrpTrackProcess, comm: str | None, cmdline: bytes | None) -> bool:
    """Whether a process with this comm / raw cmdline counts for `block`."""
    if not block.full_command:
        return comm is not None and comm == block.process[:COMM_LEN]
    if not cmdline:
        return False  # kernel threads and zombies have an empty cmdline
    argv = cmdline.split(b"\0")
    if argv and argv[-1] == b"":
        argv.pop()  # the terminating NUL
    if not argv or argv[0] != os.fsencode(block.process):
        return False
    if block.param_match is None:
        return True
    have = argv[1:]
    want = [os.fsencode(p) for p in block.params]
    if block.param_match == "exact":
        return have == want
    if len(have) < len(want):
        return False
    if block.param_match == "partial":
        return have[: len(want)] == want
    # initial: all but the last equal, the last a prefix of the process's.
    if not want:
        return True
    return have[: len(want) - 1] == want[:-1] and have[len(want) - 1].startswith(want[-1])


def count_now(block: VrrpTrackProcess, reader: ProcReader | None = None) -> int | None:
    """How many processes match `block` now, in one read of /proc (None: /proc
    cannot be listed). For the dumps' blocks no instance uses, which no
    tracker watches; unlike the tracker it cannot tell a zombie apart."""
    r = reader or ProcFs()
    try:
        pids = r.pids()
    except ProcReadError:
        return None
    n = 0
    for pid in pids:
        try:
            cmdline = r.cmdline(pid) if block.full_command else None
            n += matches(block, r.comm(pid), cmdline)
        except ProcReadError:
            continue
    return n


class ProcReadError(Exception):
    """/proc could not be read just now (EMFILE, ENOMEM ...): nothing can be
    concluded, least of all that a process is gone."""


_GONE = (errno.ENOENT, errno.ESRCH)  # the process (or its /proc entry) is gone


def _read_failed(exc: OSError) -> None:
    if exc.errno not in _GONE:
        raise ProcReadError(str(exc)) from exc


class ProcReader(Protocol):
    def comm(self, pid: int) -> str | None: ...
    def cmdline(self, pid: int) -> bytes | None: ...
    def pids(self) -> list[int]: ...


class ProcFs:
    """Reads /proc (or a fake tree under `root` in tests)."""

    def __init__(self, root: str = "/proc") -> None:
        self.root = root
        # How many PID namespaces this /proc is above ours: 0 normally; 1
        # after `unshare --pid --fork` without --mount-proc, where /proc lists
        # the parent namespace's PIDs and pidfd_open needs ours.
        self.ns_up = 0

    def detect_ns(self) -> int:
        """Work out `ns_up` from our own NSpid line (self resolves to us in any /proc)."""
        nspid = self.nspid("self")
        self.ns_up = len(nspid) - 1 if nspid else 0
        return self.ns_up

    def nspid(self, pid: int | str) -> list[int]:
        """The NSpid line of /proc/PID/status: the PID in this /proc's namespace
        first, then in each nested one down to the process's own."""
        try:
            with open(f"{self.root}/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"NSpid:"):
                        return [int(w) for w in line.split()[1:]]
        except (OSError, ValueError):
            pass
        return []

    def local_pid(self, pid: int) -> int | None:
        """`pid` (as this /proc lists it) in our PID namespace; None: not in it."""
        if self.ns_up == 0:
            return pid
        nspid = self.nspid(pid)
        return nspid[self.ns_up] if len(nspid) > self.ns_up else None

    def comm(self, pid: int) -> str | None:
        try:
            with open(f"{self.root}/{pid}/comm", "rb") as f:
                return f.read(64).rstrip(b"\n").decode("utf-8", "replace")
        except OSError as exc:
            _read_failed(exc)
            return None

    def cmdline(self, pid: int) -> bytes | None:
        try:
            with open(f"{self.root}/{pid}/cmdline", "rb") as f:
                return f.read(CMDLINE_MAX)
        except OSError as exc:
            _read_failed(exc)
            return None

    def pids(self) -> list[int]:
        try:
            with os.scandir(self.root) as it:
                return [int(e.name) for e in it if e.name.isdigit()]
        except OSError as exc:
            raise ProcReadError(str(exc)) from exc


def _proc_is_ours(root: str) -> bool:
    """Whether `root` shows this PID namespace (its `self` is our PID)."""
    try:
        return os.readlink(f"{root}/self") == str(os.getpid())
    except OSError:
        return True  # a fake tree, or no /proc/self: nothing to say


# ------------------------------------------------------------------ tracker

_DELAY_NAMES = {"fork": "fork", "exit": "terminate"}

Watcher = Callable[[int, Callable[[int], None]], "PidWatch | None"]


@dataclass(slots=True)
class _Block:
    cfg: VrrpTrackProcess
    name: str
    pids: set[int] = field(default_factory=set)
    reported: bool | None = None
    reported_count: int | None = None
    timer: asyncio.TimerHandle | None = None
    timer_cause: str = ""  # what started `timer`: "fork" or "exit"

    def quorum_ok(self) -> bool:
        n = len(self.pids)
        qmax = self.cfg.quorum_max
        return self.cfg.quorum <= n and (qmax is None or n <= qmax)


class ProcessTracker:
    """Counts matching processes for every vrrp_track_process block."""

    def __init__(
        self,
        blocks: tuple[VrrpTrackProcess, ...],
        on_change: OnChange,
        *,
        reader: ProcReader | None = None,
        watcher: Watcher | None = None,
        use_connector: bool = True,
        scan_interval: float = SCAN_INTERVAL,
    ) -> None:
        self._blocks = [_Block(b, tracker_name(b.name)) for b in blocks]
        self._on_change = on_change
        self._reader = reader or ProcFs()
        self._watcher = watcher
        self._use_connector = use_connector
        self._scan_interval = scan_interval
        self._need_cmdline = any(b.full_command for b in blocks)
        self._watches: dict[int, PidWatch | None] = {}  # counted pid -> its pidfd watch
        self._nfds = 0  # watches in _watches that hold a pidfd (not None)
        self._seen: dict[int, float] = {}  # pid -> when first read
        self._conn: cnproc.ProcConnector | None = None
        self.connector = "off" if not use_connector else "pending"
        self._scan_task: asyncio.Task[None] | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._last_full = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.scans = 0
        self.scan_error: str | None = None  # why /proc could not be listed, while it lasts

    # -- lifecycle (the TrackerSource contract) -----------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        if isinstance(self._reader, ProcFs) and not _proc_is_ours(self._reader.root):
            # `unshare --pid` without --mount-proc: /proc lists another PID
            # namespace's PIDs, which pidfd_open would read as ours; each is
            # translated through its NSpid line (and the pidfd checked).
            up = self._reader.detect_ns()
            log.warning(
                "track_process_proc_mismatch",
                reason="/proc belongs to another PID namespace; mount a /proc of this one",
                action=f"PIDs translated through NSpid ({up} namespace(s) up)"
                if up
                else "no NSpid line: PIDs used as they are",
            )
        if self._use_connector:
            self._open_connector(loop)
        self.scan(full=True)
        if self.scan_error is None:
            # /proc unlisted is not "none running": the first scan that can
            # list it reports (scan), the instances keep what they had.
            for b in self._blocks:
                self._report(b, b.quorum_ok())
        self._scan_task = loop.create_task(self._scan_loop())

    def stop(self) -> None:
        if self._scan_task is not None:
            self._scan_task.cancel()
            self._scan_task = None
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        for b in self._blocks:
            if b.timer is not None:
                b.timer.cancel()
                b.timer = None
        for w in self._watches.values():
            if w is not None:
                w.close()
        self._watches.clear()
        self._nfds = 0
        if self._conn is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._conn.fileno())
            self._conn.close()
            self._conn = None

    def describe(self) -> dict[str, dict[str, object]]:
        return {
            b.name: {
                "pids": sorted(b.pids),
                "count": len(b.pids),
                "quorum": b.cfg.quorum,
                "quorum_max": b.cfg.quorum_max,
                "connector": self.connector,
                **({"scan_error": self.scan_error} if self.scan_error else {}),
                # A fork_delay / terminate_delay running (keepalived's dump shows which).
                **({"delay_pending": _DELAY_NAMES[b.timer_cause]} if b.timer is not None else {}),
            }
            for b in self._blocks
        }

    # -- connector ------------------------------------------------------------

    def _open_connector(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._conn = cnproc.ProcConnector()
        except OSError as exc:
            self.connector = "unavailable: " + cnproc.describe_error(exc)
            log.info("process_events_unavailable", reason=self.connector, fallback="scan")
            return
        loop.add_reader(self._conn.fileno(), self._on_connector)
        self._ack_timer = loop.call_later(ACK_TIMEOUT, self._no_ack)

    def _no_ack(self) -> None:
        if self.connector == "pending":
            self.connector = (
                "unavailable: subscription not acknowledged (not in the initial PID namespace?)"
            )
            log.info("process_events_unavailable", reason=self.connector, fallback="scan")
            self._close_connector()

    def _close_connector(self) -> None:
        if self._conn is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._conn.fileno())
            self._conn.close()
            self._conn = None

    def _on_connector(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            events, lost = conn.recv_events()
        except OSError as exc:
            self.connector = "unavailable: " + cnproc.describe_error(exc)
            log.warning("process_events_failed", reason=self.connector, fallback="scan")
            self._close_connector()
            return
        for ev in events:
            if conn.is_ack(ev):
                if self.connector == "pending":
                    self.connector = "active"
            elif self.connector == "active":
                # Before the ack, events may be another listener's, in PIDs of
                # another PID namespace (the kernel multicasts to every
                # socket bound to the group in this network namespace).
                self.on_event(ev)
        if lost:
            # keepalived re-reads /proc after ENOBUFS; so does the next scan.
            log.warning("process_events_lost", action="rescan")
            self._seen.clear()

    def on_event(self, ev: cnproc.ProcEvent) -> None:
        """One connector event (also fed by tests from a recorded stream)."""
        if ev.what == cnproc.PROC_EVENT_FORK:
            # Threads (pid != tgid) are not processes; an untracked parent's
            # child is not either until it execs (keepalived: same).
            if ev.pid == ev.tgid and ev.parent_tgid in self._watches:
                self.check(ev.tgid, "fork")
        elif ev.what in (cnproc.PROC_EVENT_EXEC, cnproc.PROC_EVENT_COMM):
            if ev.pid == ev.tgid:
                self.check(ev.tgid, "exec")
        elif ev.what == cnproc.PROC_EVENT_EXIT and ev.pid == ev.tgid and ev.tgid in self._watches:
            # The pidfd is the authority (it fires at the same moment); trust the
            # event only for a process it says has exited, or one without a pidfd
            # that /proc no longer shows.
            w = self._watches[ev.tgid]
            try:
                gone = w.has_exited() if w is not None else self._reader.comm(ev.tgid) is None
            except ProcReadError:
                gone = False  # the next scan tells
            if gone:
                self.exited(ev.tgid)

    # -- scanning ---------------------------------------------------------------

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self._scan_interval)
            try:
                self.scan()
            except Exception as exc:  # a bug must not end discovery for good
                log.error("track_process_scan_error", error=repr(exc))

    def scan(self, full: bool = False) -> None:
        """Read the PIDs not seen before (and the young and the counted ones)."""
        now = time.monotonic()
        if now - self._last_full >= FULL_SCAN:
            full = True
        if full:
            self._last_full = now
        self.scans += 1
        try:
            pids = self._reader.pids()
        except ProcReadError as exc:
            # Not "no processes": nothing to conclude until /proc reads again.
            if self.scan_error is None:  # once, not every second
                log.warning("track_process_scan_failed", error=str(exc))
            self.scan_error = str(exc)
            return
        unreported = [b for b in self._blocks if b.reported is None]
        if self.scan_error is not None:
            log.info("track_process_scan_recovered")
            self.scan_error = None
        else:
            unreported = []  # start() reports them after its scan
        # A counted process without a pidfd (over MAX_PIDFDS, pidfd_open
        # failed) is taken out when /proc stops listing it: nothing else
        # would, and a dead HAProxy would count as running for ever.
        listed = set(pids)
        for pid in [p for p, w in self._watches.items() if w is None and p not in listed]:
            self.exited(pid)
        seen = self._seen
        fresh: dict[int, float] = {}
        for pid in pids:
            first = seen.get(pid)
            if first is None:
                fresh[pid] = now
                self.check(pid, "scan")
            else:
                fresh[pid] = first
                if full or now - first < YOUNG or pid in self._watches:
                    self.check(pid, "scan")
        self._seen = fresh
        for b in unreported:  # a start that could not list /proc
            self._report(b, b.quorum_ok())

    # -- counting ---------------------------------------------------------------

    def check(self, pid: int, cause: str) -> None:
        """Read `pid` and count it for the blocks it matches now."""
        try:
            comm = self._reader.comm(pid)
            cmdline = self._reader.cmdline(pid) if self._need_cmdline else None
        except ProcReadError:
            return  # unreadable just now: leave it as it is, a later scan re-reads it
        now_in = {b.name for b in self._blocks if matches(b.cfg, comm, cmdline)}
        if now_in and self._watches.get(pid) is None:
            # New, or counted without a pidfd: (try to) watch it now.
            known = pid in self._watches
            try:
                watch = self._watch(pid, quiet=known)
            except ProcReadError:
                return
            if watch is False:
                if known:
                    self.exited(pid)  # an unwatched one has exited (a zombie now)
                return  # gone, or a zombie: never counted
            self._watches[pid] = None if isinstance(watch, bool) else watch
            self._nfds += self._watches[pid] is not None
        changed = []
        for b in self._blocks:
            if b.name in now_in and pid not in b.pids:
                b.pids.add(pid)
                changed.append(b)
            elif b.name not in now_in and pid in b.pids:
                b.pids.discard(pid)
                changed.append(b)
        if not now_in and pid in self._watches:
            self._unwatch(pid)
        for b in changed:
            self._settle(b, cause)

    def exited(self, pid: int) -> None:
        """`pid` has exited (its pidfd fired, or the connector said so)."""
        self._unwatch(pid)
        hit = [b for b in self._blocks if pid in b.pids]
        for b in hit:
            b.pids.discard(pid)
        if any(not b.quorum_ok() for b in hit):
            # Before calling the quorum lost, look for a successor started
            # before this one exited (`haproxy -sf` hands over to a new
            # process, a supervisor restarts fast): without the connector the
            # periodic scan would find it only after the VIP had moved.
            self.discover()
        for b in hit:
            self._settle(b, "exit")

    def discover(self) -> None:
        """Read the PIDs never seen before (a fraction of a millisecond)."""
        now = time.monotonic()
        try:
            pids = self._reader.pids()
        except ProcReadError:
            return
        for pid in pids:
            if pid not in self._seen:
                self._seen[pid] = now
                self.check(pid, "scan")

    def _unwatch(self, pid: int) -> None:
        w = self._watches.pop(pid, None)
        if w is not None:
            self._nfds -= 1
            w.close()

    def _watch(self, pid: int, quiet: bool = False) -> PidWatch | bool | None:
        """A pidfd watch; False if the process is gone or already exited;
        None: counted unwatched (over MAX_PIDFDS, or pidfd_open failed)."""
        if self._nfds >= MAX_PIDFDS:
            return None  # check() has just read it: it is there
        if self._watcher is not None:
            return self._watcher(pid, self.exited) or False
        assert self._loop is not None
        reader = self._reader
        try:
            if isinstance(reader, ProcFs) and reader.ns_up:
                local = reader.local_pid(pid)
                watch = None
                if local is not None:
                    watch = PidWatch.open(
                        self._loop, pid, self.exited, local=local, proc_root=reader.root
                    )
                # None: outside our PID namespace (another container's process of
                # the same name, which our own /proc would not list): not ours.
                return watch or False
            return PidWatch.open(self._loop, pid, self.exited) or False
        except OSError as exc:  # EMFILE and the like: count it, unwatched
            if not quiet:
                log.warning("pidfd_failed", pid=pid, error=str(exc))
            return None

    def _settle(self, b: _Block, cause: str) -> None:
        ok = b.quorum_ok()
        if b.reported is None:
            return  # start() reports the first result
        if ok == b.reported:
            if b.timer is not None:  # changed back before the delay ran out
                b.timer.cancel()
                b.timer = None
            self._report(b, ok)
            return
        if b.timer is not None:
            return  # already waiting to report this change
        delay = {"fork": b.cfg.fork_delay, "exit": b.cfg.terminate_delay}.get(cause, 0.0)
        if delay > 0 and self._loop is not None:
            b.timer = self._loop.call_later(delay, self._delayed, b)
            b.timer_cause = cause
            return
        self._report(b, ok)

    def _delayed(self, b: _Block) -> None:
        b.timer = None
        self._report(b, b.quorum_ok())

    def _report(self, b: _Block, ok: bool) -> None:
        count = len(b.pids)
        if (b.reported, b.reported_count) == (ok, count):
            return
        if b.reported != ok:
            log.info(
                "track_process",
                name=b.cfg.name,
                state="up" if ok else "down",
                count=count,
                quorum=b.cfg.quorum,
                quorum_max=b.cfg.quorum_max,
            )
        b.reported, b.reported_count = ok, count
        self._on_change(b.name, ok, count)


__all__ = [
    "PREFIX",
    "ProcFs",
    "ProcReadError",
    "ProcessTracker",
    "count_now",
    "matches",
    "process_source",
    "process_specs",
    "tracker_name",
]
