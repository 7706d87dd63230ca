"""Running track/notify scripts the way keepalived does, without blocking.

Owns: spawning a script in its own process group with output discarded
(or stderr read into a bounded :class:`StderrCapture`), a scrubbed
environment and optional user/group drop; enforcing its timeout by
signalling the whole group; classifying the outcome (:class:`ScriptResult`);
finding scripts in PATH (:func:`find_script`), the command actually executed
(:class:`ScriptCommand`: argv exactly as configured, plus the resolved file
that is executed) and keepalived's ``enable_script_security`` path check.

argv[0] is never rewritten: multi-call binaries choose what to do by the name
they were started as (Debian's ``pidof`` is a symlink to ``killall5``, busybox
applets), so ``script "pidof haproxy"`` runs ``/usr/sbin/killall5`` with argv
``["pidof", "haproxy"]``, as a shell would.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyvrrpd.io import children

__all__ = [
    "ScriptCommand",
    "ScriptResult",
    "StderrCapture",
    "find_script",
    "insecure_reason",
    "resolve_script",
    "run_script",
    "script_command",
    "search_path",
]

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
    argv: Sequence[str],
    executable: str | None,
    user: str | None,
    group: str | None,
    stderr_fd: int | None = None,
) -> asyncio.subprocess.Process:
    kwargs: dict[str, object] = {}
    if executable is not None:
        # execve(executable, argv): argv[0] stays as configured.
        kwargs["executable"] = executable
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
        # Notify hooks log their stderr (a StderrCapture pipe, read as it comes).
        stderr=asyncio.subprocess.DEVNULL if stderr_fd is None else stderr_fd,
        # Own session => own process group (pgid == pid), so a timeout can
        # signal the script and everything it started.
        start_new_session=True,
        env=_script_env(),
        close_fds=True,
        **kwargs,  # type: ignore[arg-type]
    )


class StderrCapture:
    """A pipe for a script's stderr, read as it comes: the first and the last
    ``keep`` bytes are kept, the rest only counted.

    A hook writing stderr in a loop must not fill the daemon's memory (a file
    or memfd would grow without bound), and a grandchild still holding the
    write end must not keep us waiting for EOF: :meth:`close` takes what is
    there and closes the read end (later writes get EPIPE). Use inside the
    event loop: ``cap = StderrCapture(); run_script(..., stderr_fd=cap.write_fd)``,
    then ``cap.close()`` and ``cap.text()``.
    """

    #: bytes read per readiness callback, so a chatty script cannot starve the loop.
    CHUNK = 65536

    def __init__(self, keep: int = 4096) -> None:
        self.keep = keep
        self.total = 0  # bytes the script wrote (kept or not)
        self._head = bytearray()
        self._tail = bytearray()
        self._loop = asyncio.get_running_loop()
        self._read_fd, self.write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._loop.add_reader(self._read_fd, self._drain)
        self._closed = False

    def spawned(self) -> None:
        """The child has its copy: drop ours, so EOF comes when it exits."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        """Take what the pipe still holds (bounded) and close it."""
        if self._closed:
            return
        self._drain(rounds=16)
        self._closed = True
        self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        self.spawned()

    def text(self) -> str:
        """The kept stderr on one line, with a note of how much was skipped."""
        head = self._head.decode("utf-8", "replace")
        tail = self._tail.decode("utf-8", "replace")
        skipped = self.total - len(self._head) - len(self._tail)
        gap = f" [... {skipped} bytes skipped ...] " if skipped else ""
        return " ".join(f"{head}{gap}{tail}".split())

    def _drain(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            try:
                data = os.read(self._read_fd, self.CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                if not self._closed:  # EOF: every writer is gone
                    self._loop.remove_reader(self._read_fd)
                return
            self._take(data)

    def _take(self, data: bytes) -> None:
        self.total += len(data)
        room = self.keep - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            del self._tail[: max(0, len(self._tail) - self.keep)]


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
    *,
    executable: str | None = None,
    stderr_fd: int | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> ScriptResult:
    """Run ``argv`` (no shell) with ``timeout`` seconds; never raises for failures.

    The file executed is ``executable`` when given (see :func:`script_command`),
    else ``argv[0]``, a bare name being looked up in PATH; either way the
    process sees ``argv`` unchanged. ``stderr_fd`` (default: /dev/null)
    receives the script's stderr; ``on_spawn`` is told the process (group)
    id once it runs. A file that is not a binary and has no
    ``#!`` line (ENOEXEC) is run by ``/bin/sh``, as ``execvp`` and keepalived's
    ``system()`` fallback would. Cancelling the coroutine SIGKILLs the script's
    process group before re-raising.
    """
    start = time.monotonic()
    if not argv:
        return ScriptResult(False, None, None, False, 0.0, "empty command")
    try:
        try:
            proc = await _spawn(argv, executable, user, group, stderr_fd)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            # execvp's fallback: /bin/sh FILE ARGS..., FILE being the path found.
            script = executable or find_script(argv[0]) or argv[0]
            proc = await _spawn(["/bin/sh", script, *argv[1:]], None, user, group, stderr_fd)
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
    if on_spawn is not None:
        on_spawn(proc.pid)
    # asyncio's child watcher collects this one by PID: the orphan reaper must not.
    children.OWNED.add(proc.pid)
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
    finally:
        children.OWNED.discard(proc.pid)
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


def search_path() -> str:
    """The PATH scripts are looked up in: keepalived's rule (lib/notify.c find_path()).

    The daemon's own ``PATH`` environment variable (under systemd, the
    manager's default ``/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin``,
    plus ``/sbin:/bin`` on split-usr systems); when it is unset, the C
    library's default ``confstr(_CS_PATH)`` (``/bin:/usr/bin`` on glibc).
    """
    path = os.environ.get("PATH")
    if path is not None:
        return path
    try:
        return os.confstr("CS_PATH") or os.defpath
    except (ValueError, OSError):
        return os.defpath


def _executable_by(st: os.stat_result, uid: int, gid: int) -> bool:
    """keepalived's is_executable(): may uid:gid execute a file with this mode?"""
    if uid == 0:
        return bool(st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.st_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def find_script(argv0: str, uid: int | None = None, gid: int | None = None) -> str | None:
    """The file ``argv0`` names, as ``execvp`` would find it; symlinks NOT resolved.

    A name containing ``/`` is taken as is (relative to the current
    directory); a bare name is searched in :func:`search_path`, the first
    regular file executable by ``uid:gid`` (default: ours) winning, as
    keepalived's find_path() does. Returns None when nothing usable is found.
    """
    if not argv0:
        return None
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    if "/" in argv0:
        candidates = [argv0]
    else:
        # An empty PATH element means the current directory (POSIX).
        candidates = [os.path.join(d, argv0) if d else argv0 for d in search_path().split(":")]
    for cand in candidates:
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and _executable_by(st, uid, gid):
            return cand
    return None


def resolve_script(argv0: str, uid: int | None = None, gid: int | None = None) -> str | None:
    """Absolute, symlink-resolved path of the file ``argv0`` names, or None.

    :func:`find_script`, then ``realpath`` (keepalived shows ``/bin/true`` as
    ``/usr/bin/true``). This is the file script security checks; it is not
    what argv[0] becomes.
    """
    found = find_script(argv0, uid, gid)
    return None if found is None else os.path.realpath(found)


@dataclass(frozen=True, slots=True)
class ScriptCommand:
    """What running a configured script executes."""

    #: The configured argv, argv[0] exactly as written (``pidof``, not its path).
    argv: tuple[str, ...]
    #: The absolute path execve() is given: the file PATH search found, its
    #: symlinks left for the kernel to follow (so ``/usr/bin/pidof``). Every
    #: link on the way was checked by :func:`insecure_reason` at start-up.
    executable: str


def script_command(
    argv: Sequence[str], uid: int | None = None, gid: int | None = None
) -> ScriptCommand | None:
    """The :class:`ScriptCommand` for a configured argv, or None if not found.

    keepalived 2.2.7 instead replaces argv[0] with the resolved path unless a
    file of the configured name sits beside it, which breaks ``pidof``
    (README, deliberate differences).
    """
    if not argv:
        return None
    found = find_script(argv[0], uid, gid)
    if found is None:
        return None
    # Absolute, but not normalised: "a/../b" must mean what the kernel makes of it.
    executable = found if os.path.isabs(found) else os.path.join(os.getcwd(), found)
    return ScriptCommand(tuple(argv), executable)


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


def _lookups(path: str) -> list[tuple[str, os.stat_result]]:
    """Every (path, lstat) the kernel visits resolving ``path``, links included.

    Walks one component at a time, following each symlink (at most 40, the
    kernel's limit), so a link in the chain, the directories holding it and
    the directories on its target's way are all listed. Raises OSError.
    """
    visited: list[tuple[str, os.stat_result]] = []
    pending = os.path.join(os.getcwd(), path).split("/")
    current = "/"
    links = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        step = os.path.join(current, name)
        st = os.lstat(step)
        visited.append((step, st))
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 40:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(step)
            if target.startswith("/"):
                current = "/"
            pending = target.split("/") + pending
        else:
            current = step
    return visited


def insecure_reason(path: str) -> str | None:
    """Why running ``path`` as root is unsafe (keepalived script security), or None.

    The path is resolved with realpath; the file and each directory up to ``/``
    must be owned by root and not writable by group (unless the group is root)
    or others; directories with the sticky bit are exempt from the write test.
    Then every symlink met on the way (``/usr/bin/pidof`` -> ``/sbin/killall5``,
    ``/sbin`` -> ``usr/sbin``) must be owned by root and every directory
    holding one must pass the same test: whoever could re-point a link could
    choose what root runs (keepalived checks the configured path and the
    resolved one the same way). Returns a one-line reason such as
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
            break
        component = parent
        kind = "directory"
    try:
        visited = _lookups(path)
    except OSError as exc:
        return f"{path}: cannot resolve: {os.strerror(exc.errno or 0)}"
    for step, lst in visited:
        if stat.S_ISLNK(lst.st_mode):
            # A link's own mode bits mean nothing; its owner can replace it.
            if lst.st_uid != 0:
                return f"{path}: symlink {step} is owned by uid {lst.st_uid}, not root"
            continue
        reason = _unsafe(lst)
        if reason is not None:
            kind = "directory" if stat.S_ISDIR(lst.st_mode) else "file"
            return f"{path}: {kind} {step} {reason}"
    return None
