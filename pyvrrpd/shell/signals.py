"""The daemon's signal handling: keepalived's signals, and no signal that kills silently.

Owns: which signal does what, installing that on the event loop, and the
numbers ``keepalived --signum=NAME`` prints. An HA daemon killed by a signal's
default action leaves its VIPs in place and sends no priority 0, so the
backup takes over and both boxes hold the VIP (issue 5). So every catchable
signal whose default action ends the process either stops the daemon the way
SIGTERM does (priority 0 advert, VIPs removed, exit 0) or is ignored, with a
log line either way (but for PIPE, XFSZ, 32 and 33: see the table).

keepalived 2.2.7 (lib/signals.c ``signal_handler_parent_init()``, core/main.c
``signal_init()``, vrrp/vrrp_daemon.c ``vrrp_signal_init()``) sets every
signal it does not handle to SIG_IGN, except ILL, FPE, SEGV and BUS. Those
kill its parent, whose VRRP child then gets SIGTERM (PR_SET_PDEATHSIG) and
shuts down cleanly: for ``kill -SEGV $(cat /run/keepalived.pid)`` the
observable result is a clean stop. pyvrrpd is one process:

======================  ==========================================  ===========================
signal                  pyvrrpd                                     keepalived 2.2.7
======================  ==========================================  ===========================
TERM, INT               stop (STOP)                                 same
HUP                     ``Daemon._on_sighup`` (RELOAD)              reload
USR1                    write keepalived.data (DATA)                same
USR2                    write keepalived.stats (STATS)              same
RTMIN+2 (36)            write keepalived.json (JSON)                same (built --enable-json)
RTMAX-1 (63)            write keepalived.stats, clear (STATS_CLEAR) same
QUIT, ABRT              stop, like TERM                             ignored
BUS, FPE, ILL, SEGV     sent by kill/sigqueue: stop, like TERM;     parent dies, VRRP child
                        a real fault still kills (core dump)        stops cleanly
TRAP, ALRM, VTALRM,     ignored, logged                             ignored silently
PROF, IO, PWR, SYS,
STKFLT, XCPU (logged
with a rlimit hint),
other RT signals
(34-64, RTMAX = TDUMP
in debug builds only)
PIPE, XFSZ              ignored, not logged (Python's SIG_IGN:      ignored
                        our own writes raise them; the failing
                        call reports EPIPE/EFBIG)
32, 33                  ignored, not logged (see below)             parent dies, VRRP child
                                                                    stops cleanly
======================  ==========================================  ===========================

Not touched: CHLD, CONT, URG, WINCH (default: ignore; CHLD reaping is the
daemon's), TSTP, TTIN, TTOU (default: stop the process; keepalived ignores
them), KILL and STOP (cannot be caught).

QUIT and ABRT stop rather than being ignored: an operator pressing Ctrl-\\,
or systemd's watchdog sending SIGABRT, means "end it", and ending it cleanly
keeps one VIP holder; a real ``abort()`` still ends the process (glibc
re-raises with the default action). Signals nobody sends to mean "stop"
(timers, I/O, power, the rest) keep the daemon running, as keepalived does.

32 and 33 are glibc's own (SIGCANCEL, SIGSETXID): its sigaction() refuses
them, and until glibc installs its handlers (33 when the first thread starts,
32 on a pthread_cancel, which CPython never calls) their default action ends
the process: keepalived's parent dies of ``kill -32``. They are set to SIG_IGN
with the raw rt_sigaction system call; glibc still installs its own handler
over that when it needs one, and that handler discards signals from other
processes. Scripts inherit SIG_IGN for 32 (glibc programs take it back the
same way when they cancel a thread).

How: ordinary handlers through ``loop.add_signal_handler`` (reset to the
default in scripts at exec, unlike SIG_IGN, which children would inherit).
BUS, FPE, ILL and SEGV cannot be caught that way: a handler that returns from
a real fault re-runs the faulting instruction forever. They are blocked
instead and read from a signalfd, which only ever sees the ones sent by a
process; a real fault with the signal blocked makes the kernel kill the
process with the default action. The mask is per thread and inherited, so it
is set before the daemon starts its threads (``block_fault_signals`` is
called again on install in case); children inherit it too (harmless: the
kernel overrides a blocked synchronous fault).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import platform
import signal
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from pyvrrpd.shell.ops.dumps import Dumper

if TYPE_CHECKING:
    from pyvrrpd.shell.daemon import Daemon

log = structlog.get_logger("pyvrrpd")

# keepalived's names for its extra signals (lib/signals.h).
SIG_JSON = signal.SIGRTMIN + 2
SIG_STATS_CLEAR = signal.SIGRTMAX - 1
SIG_TDUMP = signal.SIGRTMAX  # only handled by keepalived's debug builds

#: ``keepalived --signum=NAME``: 2.2.7's ``get_signum()``. TDUMP is absent:
#: Debian's keepalived is built without THREAD_DUMP and answers
#: "Unknown sigfunc TDUMP" (checked).
SIGNUM: dict[str, int] = {
    "STOP": signal.SIGTERM,
    "RELOAD": signal.SIGHUP,
    "DATA": signal.SIGUSR1,
    "STATS": signal.SIGUSR2,
    "STATS_CLEAR": SIG_STATS_CLEAR,
    "JSON": SIG_JSON,
}

STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT)
FAULT_SIGNALS: tuple[int, ...] = (signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGSEGV)
DUMP_SIGNALS: tuple[int, ...] = (signal.SIGUSR1, signal.SIGUSR2, SIG_JSON, SIG_STATS_CLEAR)
IGNORED_SIGNALS: tuple[int, ...] = (
    signal.SIGTRAP,
    signal.SIGALRM,
    signal.SIGSTKFLT,
    signal.SIGXCPU,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGIO,
    signal.SIGPWR,
    signal.SIGSYS,
    *(
        n
        for n in range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
        if n not in (SIG_JSON, SIG_STATS_CLEAR)
    ),
)
#: Left at Python's SIG_IGN (our own writes raise them; see the table).
SILENT_SIGNALS: tuple[int, ...] = (signal.SIGPIPE, signal.SIGXFSZ)

# At most one "ignored" line per signal per this many seconds (a loop sending
# signals must not flood the log); the next line says how many were skipped.
IGNORED_LOG_INTERVAL = 10.0

_SFD_NONBLOCK = os.O_NONBLOCK
_SFD_CLOEXEC = os.O_CLOEXEC
_SIGINFO_SIZE = 128  # struct signalfd_siginfo
#: glibc's SIGCANCEL and SIGSETXID (see the module docstring).
GLIBC_SIGNALS: tuple[int, ...] = (32, 33)
# rt_sigaction's number; struct kernel_sigaction is {handler, flags, restorer,
# mask} on both.
_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}


def signal_name(signum: int) -> str:
    """``SIGTERM``; realtime signals as ``kill -l`` writes them (``SIGRTMIN+2``)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        pass
    lo, hi = signal.SIGRTMIN, signal.SIGRTMAX
    if lo <= signum <= hi:
        if signum - lo <= hi - signum:
            return "SIGRTMIN" if signum == lo else f"SIGRTMIN+{signum - lo}"
        return "SIGRTMAX" if signum == hi else f"SIGRTMAX-{hi - signum}"
    return f"signal {signum}"


def block_fault_signals() -> None:
    """Block BUS, FPE, ILL and SEGV in this thread (and threads it starts later).

    Call it before any thread is started: a process-directed signal goes to
    any thread that has it unblocked, and there its default action would end
    the whole process.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, FAULT_SIGNALS)


def ignore_glibc_signals() -> bool:
    """SIG_IGN for 32 and 33 through the raw system call; False where unsupported."""
    nr = _SYS_RT_SIGACTION.get(platform.machine())
    if nr is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    sig_ign = (ctypes.c_ulong * 4)(1, 0, 0, 0)
    return all(libc.syscall(nr, signum, sig_ign, None, 8) == 0 for signum in GLIBC_SIGNALS)


class _FaultSignalFd:
    """Reads kill-sent BUS/FPE/ILL/SEGV from a signalfd (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_signal: Callable[[int, int], None]):
        self._loop = loop
        self._on_signal = on_signal
        self.fd = _signalfd(FAULT_SIGNALS)
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, _SIGINFO_SIZE * 8)
        except (BlockingIOError, InterruptedError):
            return
        for off in range(0, len(data) - _SIGINFO_SIZE + 1, _SIGINFO_SIZE):
            signo, _errno, _code, pid = struct.unpack_from("=IiiI", data, off)
            self._on_signal(signo, pid)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _signalfd(signums: tuple[int, ...]) -> int:
    """signalfd(2) through libc (the standard library has no wrapper)."""
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ctypes.create_string_buffer(128)  # glibc's sigset_t: 1024 bits
    libc.sigemptyset(mask)
    for signum in signums:
        libc.sigaddset(mask, signum)
    fd = int(libc.signalfd(-1, mask, _SFD_NONBLOCK | _SFD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


class SignalHandlers:
    """Everything `install` set up; `close` undoes it (tests, in-process runs)."""

    def __init__(self, daemon: Daemon, loop: asyncio.AbstractEventLoop) -> None:
        self._daemon = daemon
        self._loop = loop
        self.dumper = Dumper.for_daemon(daemon)
        self._installed: list[int] = []
        self._faults: _FaultSignalFd | None = None
        self._last_logged: dict[int, float] = {}
        self._skipped: dict[int, int] = {}

    def install(self) -> None:
        loop = self._loop
        for signum in STOP_SIGNALS:
            self._add(signum, self._stop, signum)
        self._add(signal.SIGHUP, self._reload)
        self._add(signal.SIGUSR1, self._dump, self.dumper.write_data, signal.SIGUSR1)
        self._add(signal.SIGUSR2, self._dump, self.dumper.write_stats, signal.SIGUSR2)
        self._add(SIG_JSON, self._dump, self.dumper.write_json, SIG_JSON)
        self._add(SIG_STATS_CLEAR, self._dump, self._stats_clear, SIG_STATS_CLEAR)
        for signum in IGNORED_SIGNALS:
            self._add(signum, self._ignored, signum)
        if not ignore_glibc_signals():
            log.warning("glibc_signals_default", detail="kill -32/-33 would end the daemon")
        try:
            block_fault_signals()
            self._faults = _FaultSignalFd(loop, self._fault)
        except (OSError, AttributeError) as exc:
            # Not fatal: these four keep their default action (as keepalived's).
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FAULT_SIGNALS)
            log.warning("fault_signals_default", error=str(exc))

    def close(self) -> None:
        for signum in self._installed:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(signum)
        self._installed.clear()
        if self._faults is not None:
            self._faults.close()
            self._faults = None
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FAULT_SIGNALS)
        self.dumper.close()

    # ------------------------------------------------------------ handlers

    def _add(self, signum: int, callback: Callable[..., None], *args: object) -> None:
        self._loop.add_signal_handler(signum, self._guarded, callback, *args)
        self._installed.append(signum)

    def _guarded(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception as exc:  # a signal must never end the daemon by accident
            log.error("signal_handler_failed", error=repr(exc))

    def _stop(self, signum: int) -> None:
        self._daemon.request_stop(signal_name(signum))

    def _reload(self) -> None:
        self._daemon._on_sighup()

    def _dump(self, write: Callable[[str], None], signum: int) -> None:
        write(signal_name(signum))

    def _stats_clear(self, why: str) -> None:
        self.dumper.write_stats(why, clear=True)

    def _fault(self, signum: int, pid: int) -> None:
        name = signal_name(signum)
        log.warning("signal_received", signal=name, sender_pid=pid, action="stop")
        self._daemon.request_stop(name)

    def _ignored(self, signum: int) -> None:
        now = time.monotonic()
        last = self._last_logged.get(signum)
        if last is not None and now - last < IGNORED_LOG_INTERVAL:
            self._skipped[signum] = self._skipped.get(signum, 0) + 1
            return
        self._last_logged[signum] = now
        extra: dict[str, object] = {}
        skipped = self._skipped.pop(signum, 0)
        if skipped:
            extra["repeated"] = skipped
        if signum == signal.SIGXCPU:
            # keepalived logs this one too: a CPU-time rlimit (RLIMIT_CPU, or
            # RLIMIT_RTTIME under realtime scheduling) was reached.
            extra["detail"] = "CPU time limit reached; check the process's rlimits"
        log.warning("signal_ignored", signal=signal_name(signum), **extra)


def install(daemon: Daemon, loop: asyncio.AbstractEventLoop) -> SignalHandlers:
    """Install the daemon's handlers for every signal in the module's table."""
    handlers = SignalHandlers(daemon, loop)
    handlers.install()
    return handlers
