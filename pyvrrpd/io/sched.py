"""This process's CPU scheduling and memory locking (keepalived lib/process.c).

Owns: the system calls behind keepalived's `vrrp_priority` (nice),
`vrrp_rt_priority` (SCHED_RR), `vrrp_rlimit_rttime` (RLIMIT_RTTIME) and
`vrrp_no_swap` (mlockall), each returning None when done or the reason the
kernel refused (EPERM without CAP_SYS_NICE / CAP_IPC_LOCK, a container's
seccomp policy, ...). All act on the calling thread (Linux keeps policy and
nice per thread): call them from the event loop's thread.

Scripts must not inherit a realtime priority or a raised nice value:
keepalived resets both in the child before exec. A child of ours has no
hook for that (asyncio's subprocess may use posix_spawn), so the kernel does
it: SCHED_RESET_ON_FORK makes every child, thread or process, start with
SCHED_OTHER and a nice value of at least 0. Memory locks are never
inherited across fork or exec.

Must not: log, or raise for a refusal (the shell turns each into one line).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource

__all__ = [
    "MCL_CURRENT",
    "MCL_FUTURE",
    "MCL_ONFAULT",
    "current_nice",
    "lock_memory",
    "rttime_limits",
    "set_nice",
    "set_realtime",
    "set_rttime_limit",
]

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4  # Linux 4.4: lock pages as they are touched, not whole mappings
_NORMAL_POLICIES = (os.SCHED_OTHER, os.SCHED_BATCH, os.SCHED_IDLE)


def _why(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{exc.strerror or exc} ({code})"


def current_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def set_nice(value: int) -> str | None:
    """Set the nice value (-20..19), and have children start at 0 if it is negative.

    The flag is set with the current (non-realtime) policy kept; it is only
    a nicety for scripts, so its failure is not reported.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except OSError as exc:
        return _why(exc)
    try:
        policy = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
        if policy in _NORMAL_POLICIES:
            os.sched_setscheduler(0, policy | os.SCHED_RESET_ON_FORK, os.sched_param(0))
    except OSError:
        pass
    return None


def set_realtime(priority: int) -> str | None:
    """SCHED_RR at `priority` (1..99), children reset to SCHED_OTHER (keepalived does the same)."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as exc:
        return _why(exc)
    return None


def rttime_limits(hard_us: int) -> tuple[int, int]:
    """keepalived's (soft, hard) µs for `vrrp_rlimit_rttime hard_us`: the soft
    limit at half, for SIGXCPU warnings before the kernel's SIGKILL at the hard one."""
    return max(hard_us // 2, 1), hard_us


def set_rttime_limit(soft_us: int, hard_us: int) -> str | None:
    """RLIMIT_RTTIME: CPU time a realtime task may use without blocking.

    Past the soft limit the kernel sends SIGXCPU (then once a second), past
    the hard one SIGKILL; `hard_us` may be resource.RLIM_INFINITY.
    """
    try:
        resource.setrlimit(resource.RLIMIT_RTTIME, (soft_us, hard_us))
    except OSError as exc:
        return _why(exc)
    except ValueError as exc:  # soft above a hard limit set before us
        return str(exc)
    return None


def _libc_mlockall(flags: int) -> int:
    """mlockall(2); 0 or the errno (the stdlib has no binding)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(ctypes.c_int(flags)) == 0:
        return 0
    return ctypes.get_errno()


def lock_memory() -> str | None:
    """Keep every page of the process in RAM (`vrrp_no_swap`), as keepalived does.

    MCL_ONFAULT as keepalived: pages are locked as they are touched, so
    reserved but unused address space (thread stacks, arenas) costs nothing.
    Kernels before 4.4 refuse the flag with EINVAL: retried without it.
    """
    err = _libc_mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)
    if err == errno.EINVAL:
        err = _libc_mlockall(MCL_CURRENT | MCL_FUTURE)
    if err:
        return f"{os.strerror(err)} ({errno.errorcode.get(err, str(err))})"
    return None
