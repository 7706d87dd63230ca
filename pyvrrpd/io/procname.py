"""Process name (``/proc/self/comm``) for keepalived compatibility.

Owns: ``prctl(PR_SET_NAME)`` through ctypes, so that ``pidof keepalived`` and
``killall keepalived`` (which match the kernel's ``comm``) can find a Python
process started as our keepalived-compatible command.

Also ``set_argv0``: sysvinit's ``pidof`` matches the first word of
``/proc/PID/cmdline``, not comm, so the command line's first word is rewritten
in place through ``/proc/self/mem`` (the argv area's bounds are fields 48/49
of ``/proc/self/stat``), as C daemons do with setproctitle.

Must not fail the daemon: a failure is reported as HostError and the caller
may ignore it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from pyvrrpd.io.errors import HostError

__all__ = ["set_argv0", "set_process_name"]

_PR_SET_NAME = 15  # <linux/prctl.h>
_TASK_COMM_LEN = 16  # 15 characters + NUL; the kernel truncates longer names.


def set_process_name(name: str) -> None:
    """Set the calling thread's ``comm`` (the main thread's is the process's).

    Names longer than 15 bytes are truncated by the kernel, exactly as for a
    C program; ``killall`` then falls back to matching the command line, so
    keep names short ("keepalived" is 10).
    """
    raw = name.encode()[: _TASK_COMM_LEN - 1]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    buf = ctypes.create_string_buffer(raw, _TASK_COMM_LEN)
    if libc.prctl(_PR_SET_NAME, buf, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise HostError(f"cannot set process name to {name!r}: errno {err}", errno_code=err)


def set_argv0(name: str) -> None:
    """Make ``/proc/self/cmdline`` read ``name`` followed by the real arguments.

    The interpreter and script path in front (``python3 /usr/bin/keepalived``)
    are replaced by ``name``; the new text is padded with NULs to the original
    length, so nothing outside the kernel's argv area is touched.
    """
    import sys

    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read()
        # Fields after the parenthesised comm; arg_start/arg_end are 48 and 49.
        fields = stat[stat.rindex(b")") + 2 :].split()
        arg_start, arg_end = int(fields[45]), int(fields[46])
        with open("/proc/self/cmdline", "rb") as fh:
            old = fh.read()
        new = b"\0".join([name.encode(), *(a.encode() for a in sys.argv[1:])]) + b"\0"
        size = arg_end - arg_start
        if len(new) > size or len(old) != size:
            return  # would not fit (or the area was already rewritten): leave it
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(arg_start)
            mem.write(new.ljust(size, b"\0"))
    except (OSError, ValueError, IndexError) as exc:
        raise HostError(f"cannot rewrite the command line: {exc}") from exc
