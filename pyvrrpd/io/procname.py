"""Process name (``/proc/self/comm``) for keepalived compatibility.

Owns: ``prctl(PR_SET_NAME)`` through ctypes, so that ``pidof keepalived`` and
``killall keepalived`` (which match the kernel's ``comm``) can find a Python
process started as our keepalived-compatible command.

Must not: touch argv or ``/proc/self/cmdline`` (not writable from Python
without a C extension), or fail the daemon: a failure is reported as HostError
and the caller may ignore it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from pyvrrpd.io.errors import HostError

__all__ = ["set_process_name"]

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
