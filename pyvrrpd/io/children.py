"""Our own child processes as the kernel sees them: subreaper flag, zombies, reaping.

Owns: ``prctl(PR_SET_CHILD_SUBREAPER)`` (via ctypes), listing which of our
children are zombies (from /proc, all of them at once), and collecting one
child's exit status by PID. Must not decide which zombies may be reaped:
that policy (never a child someone else is waiting for) is
`pyvrrpd.shell.reaper`'s. Never ``waitpid(-1)``: asyncio's child watcher
waits for each script by PID, and a blanket wait would steal its status.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

__all__ = [
    "OWNED",
    "become_subreaper",
    "peek_exited",
    "proc_is_ours",
    "reap",
    "zombie_children",
]

# <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> str | None:
    """Adopt orphaned descendants (Linux 3.4+); None on success, else why not."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        return str(exc)
    return None


def proc_is_ours() -> bool:
    """/proc shows PIDs of our PID namespace (not true under a foreign /proc mount)."""
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _state(pid: int | str) -> tuple[str, int] | None:
    """(state letter, ppid) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 2:
        return None
    return fields[0].decode("ascii", "replace"), int(fields[1])


def _children() -> set[int]:
    me = os.getpid()
    kids: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{me}/task")
    except OSError:
        tids = []
    found = False
    for tid in tids:
        # Needs CONFIG_PROC_CHILDREN (Debian, Ubuntu, RHEL kernels have it).
        with contextlib.suppress(OSError):
            with open(f"/proc/{me}/task/{tid}/children") as f:
                kids.update(int(p) for p in f.read().split())
            found = True
    if found:
        return kids
    for entry in os.listdir("/proc"):  # slow path: every process's parent
        if entry.isdigit():
            st = _state(entry)
            if st is not None and st[1] == me:
                kids.add(int(entry))
    return kids


def zombie_children() -> list[int]:
    """PIDs of our children that have exited and wait to be reaped.

    Requires :func:`proc_is_ours`; returns [] when /proc cannot be read.
    """
    try:
        kids = _children()
    except OSError:
        return []
    out = []
    for pid in sorted(kids):
        st = _state(pid)
        if st is not None and st[0] == "Z":
            out.append(pid)
    return out


def reap(pid: int) -> int | None:
    """Collect ``pid``'s exit status if it has exited; None if not (or not ours)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None  # someone else reaped it meanwhile
    return status if got == pid else None


def peek_exited() -> int | None:
    """PID of one exited child, left unreaped (waitid WNOWAIT); None if none.

    Works without /proc, but shows a single child at a time.
    """
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return None if info is None else info.si_pid


#: PIDs of children this process spawned and is waiting for itself
#: (`pyvrrpd.io.scripts` registers each script); never reaped by the reaper.
OWNED: set[int] = set()
