"""Running track/notify scripts the way keepalived does, without blocking.

Owns: spawning a script in its own process group with output discarded, a
scrubbed environment and optional user/group drop; enforcing its timeout by
signalling the whole group; classifying the outcome (:class:`ScriptResult`);
resolving script paths and keepalived's ``enable_script_security`` path check.

Must not: interpret results as tracker state (rise/fall counting is in
``pyvrrpd.core``), log, or raise for a failing script: every outcome, including
"could not exec", is a :class:`ScriptResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import signal
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ScriptResult", "insecure_reason", "resolve_script", "run_script"]

# keepalived unsets these before exec (core/notify.c): a field separator or a
# preloaded library inherited from the daemon's environment must not alter
# what a root script does.
_SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")
# Grace period between SIGTERM and SIGKILL of a timed-out script's group.
KILL_GRACE = 2.0
_POLL = 0.05


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """Outcome of one script run."""

    #: True only for exit status 0 (keepalived: anything else is a failure).
    ok: bool
    #: The exit status if the process exited normally, else None.
    exit_status: int | None
    #: The signal that killed the process (ours after a timeout, or external).
    signal: int | None
    #: The script overran its timeout and was killed by us.
    timed_out: bool
    #: Wall-clock seconds from spawn to exit (or to the spawn failure).
    duration: float
    #: Why the script could not be started (exec failure, unknown user), else None.
    error: str | None


def _script_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key in _SCRUBBED_ENV:
        env.pop(key, None)
    return env


def _group_alive(pgid: int) -> bool:
    """True if a live (non-zombie) process is still in process group ``pgid``.

    ``killpg(pgid, 0)`` is not enough: an orphaned grandchild that died is a
    zombie until PID 1 reaps it, and some inits (containers, microVMs) reap
    late, which would make a finished group look alive for seconds.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # members exist but belong to another user; scan /proc
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid pgrp ..."; comm may contain spaces/parens.
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _spawn(
    argv: Sequence[str], user: str | None, group: str | None
) -> asyncio.subprocess.Process:
    kwargs: dict[str, object] = {}
    if user is not None:
        kwargs["user"] = user
        if group is None:
            # subprocess's user= changes only the uid; without this the
            # script would keep gid 0. Use the user's primary group, as
            # keepalived does (setgid before setuid).
            group = str(pwd.getpwnam(user).pw_gid)
    if group is not None:
        kwargs["group"] = int(group) if group.isdigit() else group
    if (user is not None or group is not None) and os.geteuid() == 0:
        # Drop root's supplementary groups too (keepalived only keeps them
        # with set_supplementary_groups, which pyvrrpd does not support).
        kwargs["extra_groups"] = []
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        # Own session => own process group (pgid == pid), so a timeout can
        # signal the script and everything it started.
        start_new_session=True,
        env=_script_env(),
        close_fds=True,
        **kwargs,  # type: ignore[arg-type]
    )


async def _terminate_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the group; SIGKILL whatever is left after KILL_GRACE seconds."""
    pgid = proc.pid
    _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        if proc.returncode is not None and not _group_alive(pgid):
            return
        await asyncio.sleep(_POLL)
    # The leader or a grandchild ignored SIGTERM.
    _killpg(pgid, signal.SIGKILL)
    await proc.wait()


async def run_script(
    argv: Sequence[str],
    timeout: float,
    user: str | None = None,
    group: str | None = None,
) -> ScriptResult:
    """Run ``argv`` (no shell) with ``timeout`` seconds; never raises for failures.

    ``argv[0]`` may be absolute or a bare name looked up in PATH. A file that
    is not a binary and has no ``#!`` line (ENOEXEC) is run by ``/bin/sh``,
    as ``execvp`` and keepalived's ``system()`` fallback would. Cancelling the
    coroutine SIGKILLs the script's process group before re-raising.
    """
    start = time.monotonic()
    if not argv:
        return ScriptResult(False, None, None, False, 0.0, "empty command")
    try:
        try:
            proc = await _spawn(argv, user, group)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            proc = await _spawn(["/bin/sh", *argv], user, group)
    except (OSError, KeyError, ValueError, subprocess.SubprocessError) as exc:
        # KeyError: unknown user/group name; SubprocessError: failure in the
        # child before exec (e.g. setuid refused).
        return ScriptResult(
            ok=False,
            exit_status=None,
            signal=None,
            timed_out=False,
            duration=time.monotonic() - start,
            error=_spawn_error(argv[0], exc, user, group),
        )

    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        timed_out = True
        try:
            await _terminate_group(proc)
        except asyncio.CancelledError:
            _killpg(proc.pid, signal.SIGKILL)
            raise
    except asyncio.CancelledError:
        _killpg(proc.pid, signal.SIGKILL)
        raise
    duration = time.monotonic() - start
    rc = proc.returncode
    assert rc is not None  # wait() returned or _terminate_group waited
    if rc < 0:
        return ScriptResult(False, None, -rc, timed_out, duration, None)
    return ScriptResult(rc == 0 and not timed_out, rc, None, timed_out, duration, None)


def _spawn_error(argv0: str, exc: BaseException, user: str | None, group: str | None) -> str:
    if isinstance(exc, KeyError):
        who = f"user {user!r}" if user is not None else f"group {group!r}"
        if user is not None and group is not None:
            who = f"user {user!r} or group {group!r}"
        return f"cannot run {argv0}: unknown {who}"
    if isinstance(exc, FileNotFoundError):
        return f"cannot run {argv0}: not found"
    if isinstance(exc, PermissionError):
        return f"cannot run {argv0}: permission denied"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"cannot run {argv0}: {os.strerror(exc.errno)}"
    return f"cannot run {argv0}: {' '.join(str(exc).split()) or type(exc).__name__}"


def resolve_script(argv0: str) -> str | None:
    """Absolute, symlink-resolved path of an executable ``argv0``, or None.

    A name without ``/`` is looked up in PATH (like keepalived and execvp);
    a relative path with ``/`` is taken relative to the current directory.
    Symlinks are resolved (keepalived shows ``/bin/true`` as ``/usr/bin/true``).
    """
    if not argv0:
        return None
    if "/" in argv0:
        candidates = [argv0]
    else:
        path = os.environ.get("PATH") or os.defpath
        candidates = [os.path.join(d or ".", argv0) for d in path.split(os.pathsep)]
    for cand in candidates:
        real = os.path.realpath(cand)
        if os.path.isfile(real) and os.access(real, os.X_OK):
            return real
    return None


def _unsafe(st: os.stat_result) -> str | None:
    """keepalived's per-component rule; the reason phrase or None."""
    if st.st_uid != 0:
        return f"is owned by uid {st.st_uid}, not root"
    is_dir = stat.S_ISDIR(st.st_mode)
    if is_dir and st.st_mode & stat.S_ISVTX:
        # Sticky directories (/tmp) only let owners rename/delete entries.
        return None
    if st.st_mode & stat.S_IWOTH:
        return "is world-writable"
    # Group write by the root group grants nothing to non-root users beyond
    # what membership of gid 0 already implies; keepalived accepts it too.
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0:
        return f"is group-writable (gid {st.st_gid})"
    return None


def insecure_reason(path: str) -> str | None:
    """Why running ``path`` as root is unsafe (keepalived script security), or None.

    The path is resolved with realpath; the file and each directory up to ``/``
    must be owned by root and not writable by group (unless the group is root)
    or others; directories with the sticky bit are exempt from the write test.
    Returns a one-line reason such as
    ``/tmp/x/check.sh: directory /tmp/x is world-writable``.
    """
    real = os.path.realpath(path)
    component = real
    kind = "file"
    while True:
        try:
            st = os.stat(component)
        except OSError as exc:
            return f"{path}: cannot stat {component}: {os.strerror(exc.errno or 0)}"
        if kind == "file" and stat.S_ISDIR(st.st_mode):
            kind = "directory"
        reason = _unsafe(st)
        if reason is not None:
            return f"{path}: {kind} {component} {reason}"
        parent = os.path.dirname(component)
        if parent == component:
            return None
        component = parent
        kind = "directory"
