"""How the event-driven trackers fail (issue 8 review): a source that silently
stops reporting leaves a weight-0 tracker stuck "up" (the VIP stays on a box
that can't serve) or stuck "down" (no box holds it). Each test here is a way
one of them used to stop, or could stop, and asserts it keeps reporting."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvrrpd.config.model import TrackFile, VrrpTrackProcess
from pyvrrpd.io import cnproc, inotify
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.pidfd import PidWatch
from pyvrrpd.trackers import file as file_mod
from pyvrrpd.trackers import process as process_mod
from pyvrrpd.trackers.file import FileTracker
from pyvrrpd.trackers.process import ProcessTracker
from tests.unit._fakeproc import Events, FakeProc, make


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _wait(loop: asyncio.AbstractEventLoop, cond: Any, timeout: float) -> bool:
    async def run() -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            await asyncio.sleep(0.005)
        return bool(cond())

    return loop.run_until_complete(run())


@contextlib.contextmanager
def _counted_child(
    loop: asyncio.AbstractEventLoop, exe: Path, scan_interval: float
) -> Iterator[tuple[subprocess.Popen[bytes], ProcessTracker, Events]]:
    """A /bin/sleep child named `exe.name` (through that symlink) and a started
    ProcessTracker (no connector) that counts it: up, once. Both ended after."""
    exe.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(exe), "30"])
    events: Events = []
    tr = ProcessTracker(
        (VrrpTrackProcess("p", exe.name),),
        lambda n, ok, v: events.append((n, ok, v)),
        use_connector=False,
        scan_interval=scan_interval,
    )
    try:
        assert _wait(loop, lambda: process_mod.ProcFs().comm(child.pid) == exe.name, 2)
        loop.run_until_complete(tr.start())
        assert events == [("process:p", True, 1)]
        yield child, tr, events
    finally:
        child.kill()
        child.wait()
        tr.stop()


# -------------------------------------------------- process: unwatched PIDs


def test_a_counted_process_without_a_pidfd_is_dropped_when_it_dies(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pidfd_open failing (EMFILE) used to count the process for ever: nothing
    but its pidfd or the connector ever took it out, so a dead HAProxy stayed
    "up" and the VIP stayed on a box that can't serve."""

    def emfile(*_a: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(PidWatch, "open", emfile)
    with _counted_child(loop, tmp_path / "pvrev_emfile", 0.05) as (child, tr, events):
        child.kill()
        child.wait()  # reaped: gone from /proc, as a dead HAProxy is once its parent reaps it
        assert _wait(loop, lambda: events[-1][1] is False, 2.0), events
        assert tr.describe()["process:p"]["count"] == 0


def test_pidfds_are_capped_and_the_rest_still_counted(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A tracked name with thousands of processes (a fork bomb, a prefork pool)
    used to take one pidfd each until the daemon hit RLIMIT_NOFILE (1024) and
    could open nothing else (sockets, script pipes, the control socket)."""
    n = process_mod.MAX_PIDFDS + 5000
    proc = FakeProc({10 + i: "haproxy" for i in range(n)})
    tr, events = make(proc, quorum=n)
    loop.run_until_complete(tr.start())
    assert events == [("process:p", True, n)]
    assert len(proc.watched) == process_mod.MAX_PIDFDS
    # A scan re-reads every counted process: linear, not quadratic in their
    # number (it counted the open pidfds per process: 0.75 s per scan at 6000,
    # every second, in the loop that sends the adverts).
    t0 = time.perf_counter()
    tr.scan()
    assert time.perf_counter() - t0 < 0.3
    # One beyond the cap dies: the next scan sees it gone.
    del proc.comms[10 + n - 1]
    tr.scan()
    assert events[-1] == ("process:p", False, n - 1)
    tr.stop()


# ------------------------------------------- process: PID namespace, host /proc

_PIDNS_SCRIPT = """
import asyncio, subprocess, sys, time
from pyvrrpd.config.model import VrrpTrackProcess
from pyvrrpd.trackers.process import ProcessTracker, ProcFs

async def main() -> None:
    exe = sys.argv[1]
    child = subprocess.Popen([exe, "30"])
    end = time.monotonic() + 2
    while time.monotonic() < end and child.pid not in ProcFs().local_pids_seen():
        await asyncio.sleep(0.01)
    ev = []
    tr = ProcessTracker((VrrpTrackProcess("p", exe.rsplit("/", 1)[1]),),
                        lambda *a: ev.append((time.monotonic(), a[1])),
                        use_connector=False, scan_interval=0.1)
    await tr.start()
    print("START", ev[-1][1], tr.describe()["process:p"]["count"])
    t = time.monotonic()
    child.kill()
    child.wait()
    while time.monotonic() < t + 2 and ev[-1][1]:
        await asyncio.sleep(0.001)
    print("DOWN", ev[-1][1], round((ev[-1][0] - t) * 1000, 1))
    tr.stop()

asyncio.run(main())
"""


def test_a_pid_namespace_without_its_own_proc_still_counts_and_sees_deaths(
    tmp_path: Path,
) -> None:
    """`unshare --pid --fork` without --mount-proc: /proc lists the parent
    namespace's PIDs. pidfd_open used to get those numbers in our namespace
    (ESRCH, or another process), so a running HAProxy was never counted: a
    weight-0 tracker stuck down, the instance in FAULT, no VIP on this box.
    A process outside the namespace is not ours: it stays uncounted."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1)")
    exe = tmp_path / "pvrev_pidns"
    exe.symlink_to("/bin/sleep")
    script = tmp_path / "t.py"
    script.write_text(
        _PIDNS_SCRIPT.replace(
            "child.pid not in ProcFs().local_pids_seen()",
            # The child's own entry, exec'd: Popen may return before the
            # kernel renamed it (comm is set after the close-on-exec that
            # wakes Popen), and `outside` has the name from the start.
            f"not any(ProcFs().comm(p) == {exe.name!r} and ProcFs().nspid(p)[-1:] == [child.pid]"
            " for p in ProcFs().pids())",
        )
    )
    # The same name outside the namespace (another container's HAProxy, which
    # the namespace's own /proc would not list) must not count.
    outside = subprocess.Popen([str(exe), "30"])
    try:
        out = subprocess.run(
            ["unshare", "--pid", "--fork", sys.executable, str(script), str(exe)],
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        outside.kill()
        outside.wait()
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.stdout.splitlines() if ln[:1].isupper()}
    assert lines.get("START") == ["True", "1"], out.stdout + out.stderr
    down = lines.get("DOWN")
    assert down is not None and down[0] == "False", out.stdout + out.stderr
    assert float(down[1]) < 50, f"death seen after {down[1]} ms (pidfd, not the scan)"


def test_proc_unreadable_for_a_moment_is_not_a_death(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE (or ENOMEM) while reading /proc used to read as "no such
    process": the scan re-reads every counted PID, so one scan at the fd
    limit dropped them all and a running HAProxy was reported down (FAULT,
    a needless failover, or no VIP if the peer is down too)."""
    with _counted_child(loop, tmp_path / "pvrev_emfile2", 3600) as (child, tr, events):

        def emfile(*_a: object, **_k: object) -> None:
            raise OSError(errno.EMFILE, "Too many open files")

        with monkeypatch.context() as m:
            m.setattr(process_mod, "open", emfile, raising=False)
            m.setattr(os, "scandir", emfile)
            tr.scan(full=True)
            tr.scan()
            tr.discover()
            tr.check(child.pid, "exec")
            assert "Too many open files" in str(tr.describe()["process:p"]["scan_error"])
        assert events == [("process:p", True, 1)]
        tr.scan(full=True)  # readable again: still counted, and its death still seen
        assert "scan_error" not in tr.describe()["process:p"]
        child.kill()
        assert _wait(loop, lambda: events[-1][1] is False, 1.0), events


# -------------------------------------------------- track_file: unwatched files


class _Reports:
    def __init__(self) -> None:
        self.values: list[int | None] = []

    def __call__(self, name: str, ok: bool | None, value: int | None) -> None:
        self.values.append(value)


def _write(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


async def _until(cond: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.005)
    return bool(cond())


def test_track_file_without_inotify_still_follows_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify_init1 failing (EMFILE: fs.inotify.max_user_instances, 128 per
    user, is a known limit on hosts running many containers) used to leave
    the tracker at its first value for ever: a weight-0 track_file stuck at
    0 ("up") while the operator writes 1 to take the box out."""

    def fail() -> None:
        raise HostError("inotify_init1: Too many open files")

    monkeypatch.setattr(inotify, "Inotify", fail)
    monkeypatch.setattr(file_mod, "UNWATCHED_POLL", 0.05)
    path = tmp_path / "v"
    _write(path, "0\n")
    rep = _Reports()
    tr = FileTracker((TrackFile("f", str(path)),), rep)

    async def scenario() -> None:
        await tr.start()
        try:
            _write(path, "1\n")
            assert await _until(lambda: rep.values[-1] == 1, 2.0), rep.values
        finally:
            tr.stop()

    asyncio.run(scenario())
    assert rep.values == [0, 1]


def test_track_file_directory_created_or_recreated_later_is_watched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory missing at start (a /run/NAME a service creates later), or
    removed and created again, used to leave the tracker at 0 for ever."""
    monkeypatch.setattr(file_mod, "UNWATCHED_POLL", 0.05)
    d = tmp_path / "d"
    path = d / "v"
    rep = _Reports()
    tr = FileTracker((TrackFile("f", str(path)),), rep)

    async def scenario() -> None:
        await tr.start()
        try:
            assert rep.values == [0]
            d.mkdir()
            _write(path, "7\n")
            assert await _until(lambda: rep.values[-1] == 7, 2.0), rep.values
            assert "watch_error" not in tr.describe()["file:f"]
            _write(path, "8\n")  # watched again: seen through inotify
            assert await _until(lambda: rep.values[-1] == 8, 0.5), rep.values
            path.unlink()
            d.rmdir()
            assert await _until(lambda: "watch_error" in tr.describe()["file:f"], 2.0)
            d.mkdir()
            _write(path, "3\n")
            assert await _until(lambda: rep.values[-1] == 3, 5.0), rep.values
        finally:
            tr.stop()

    asyncio.run(scenario())


def test_an_error_in_one_scan_does_not_end_the_scanning(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The periodic scan is an asyncio task: an exception in one scan used to
    end it silently, and without the connector (any netns) a restarted
    HAProxy was then never found again: the tracker stuck down, no VIP."""
    proc = FakeProc({10: "haproxy"})
    failures: list[Exception] = []
    real_pids = proc.pids

    def pids() -> list[int]:
        if failures:
            raise failures.pop()
        return real_pids()

    proc.pids = pids  # type: ignore[method-assign]

    tr, events = make(proc, scan_interval=0.02)
    loop.run_until_complete(tr.start())
    del proc.comms[10]
    tr.exited(10)
    assert events[-1] == ("process:p", False, 0)
    failures.append(RuntimeError("a bug"))  # the next periodic scan fails
    proc.comms[11] = "haproxy"  # restarted; only a scan can find it here
    assert _wait(loop, lambda: events[-1] == ("process:p", True, 1), 1.0), events
    tr.stop()


# ---------------------------------------------------- connector: event floods


class _EndlessSock:
    """A connector socket under a fork bomb: never empty (capped for the test)."""

    def __init__(self) -> None:
        body = struct.pack("=IIQ", cnproc.PROC_EVENT_EXEC, 0, 0) + struct.pack("=II", 7, 7)
        cn = struct.pack("=IIIIHH", cnproc.CN_IDX_PROC, cnproc.CN_VAL_PROC, 0, 0, len(body), 0)
        nl = struct.pack("=IHHII", 16 + len(cn) + len(body), 3, 0, 0, 0)
        self.datagram = nl + cn + body
        self.reads = 0

    def recvfrom(self, _size: int) -> tuple[bytes, tuple[int, int]]:
        self.reads += 1
        if self.reads > 200_000:
            raise BlockingIOError
        return self.datagram, (0, 1)


def test_a_connector_flood_is_read_in_bounded_batches() -> None:
    """recv_events read until EAGAIN: with more cores forking than we can
    read, one callback never returned, the loop sent no advert, and the peer
    took the VIP while this box still held it. Now one call reads at most
    MAX_BATCH datagrams and the loop comes back for the rest."""
    conn = object.__new__(cnproc.ProcConnector)
    sock = _EndlessSock()
    conn.sock = sock  # type: ignore[assignment]
    events, lost = conn.recv_events()
    assert not lost
    assert events and events[0].what == cnproc.PROC_EVENT_EXEC and events[0].pid == 7
    assert len(events) == sock.reads == cnproc.MAX_BATCH


def test_an_unwatched_file_with_junk_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-second read of an unwatched file must not log an invalid
    number every second (journald floods)."""
    warnings: list[str] = []

    class _Log:
        def warning(self, event: str, **_k: object) -> None:
            warnings.append(event)

        def info(self, event: str, **_k: object) -> None:
            pass

        error = info

    monkeypatch.setattr(file_mod, "log", _Log())
    monkeypatch.setattr(file_mod, "UNWATCHED_POLL", 0.02)

    def fail() -> None:
        raise HostError("inotify_init1: Too many open files")

    monkeypatch.setattr(inotify, "Inotify", fail)
    path = tmp_path / "v"
    _write(path, "99999999999999999999\n")  # beyond a C long: ignored
    rep = _Reports()
    tr = FileTracker((TrackFile("f", str(path)),), rep)

    async def scenario() -> None:
        await tr.start()
        await asyncio.sleep(0.3)  # ~15 reads
        _write(path, "2\n")
        assert await _until(lambda: rep.values[-1] == 2, 1.0), rep.values
        tr.stop()

    asyncio.run(scenario())
    assert warnings.count("track_file_invalid") == 1


# ------------------------------------------------ shutdown: nothing after stop


def test_no_source_reports_after_stop(tmp_path: Path) -> None:
    """The daemon stops the sources before it resigns: a report after stop()
    (a delayed process change, a probe in flight, a file event) would reach
    routers that are shutting down."""
    from pyvrrpd.config.model import TrackHttp
    from pyvrrpd.io.httpprobe import ProbeResult
    from pyvrrpd.trackers.http import HttpTracker

    after: list[str] = []
    stopped = False

    def record(name: str, _ok: bool | None, _v: int | None) -> None:
        if stopped:
            after.append(name)

    proc = FakeProc({10: "haproxy"})
    ptr, _ = make(proc, scan_interval=0.01, on_change=record, terminate_delay=0.05)
    path = tmp_path / "v"
    _write(path, "0\n")
    ftr = FileTracker((TrackFile("f", str(path)),), record)
    flip = [True]

    async def probe(_b: TrackHttp) -> ProbeResult:
        await asyncio.sleep(0.03)  # in flight when stop() comes
        flip[0] = not flip[0]
        return ProbeResult(flip[0], 200, "200", 0.03)

    htr = HttpTracker(
        [TrackHttp("h", "http://127.0.0.1/", host="127.0.0.1", interval=0.01, timeout=0.05)],
        record,
        probe,
    )

    async def scenario() -> None:
        nonlocal stopped
        for src in (ptr, ftr, htr):
            await src.start()
        del proc.comms[10]
        ptr.exited(10)  # down after terminate_delay: pending at stop()
        await asyncio.sleep(0.015)
        for src in (ptr, ftr, htr):
            src.stop()
        stopped = True
        _write(path, "5\n")
        proc.comms[11] = "haproxy"
        await asyncio.sleep(0.2)

    asyncio.run(scenario())
    assert after == []
