"""The daemon's scheduling from global_defs, applied at start and raised when timers run late.

Owns: turning `vrrp_priority`, `vrrp_rt_priority`, `vrrp_rlimit_rttime` and
`vrrp_no_swap` into pyvrrpd.io.sched calls in keepalived's order and rules
(lib/process.c `set_process_priorities()`): the nice value only without
realtime scheduling, RLIMIT_RTTIME only with it, memory locked last. The
settings applied are logged once; each refusal (EPERM without CAP_SYS_NICE,
a container's policy) is one warning line and the daemon runs on at normal
priority: losing a scheduling hint must not cost the VIP.

Also keepalived's `max_auto_priority` (lib/scheduler.c, the check after
epoll_wait): a probe on the daemon's timer heap measures how late the heap's
timers run; past `min_auto_priority_delay` the daemon switches to SCHED_RR 1,
or one step higher if already realtime, up to `max_auto_priority`. A probe
every PROBE_INTERVAL rather than keepalived's check of every wake-up: the
lateness it sees is the same (one loop, one timer heap), measured a little
coarser.

RLIMIT_RTTIME default: keepalived sets 10 ms when `vrrp_rlimit_rttime` is
absent. A realtime task that runs that long without blocking is SIGKILLed by
the kernel; keepalived's parent then restarts its VRRP child, but pyvrrpd is
one process, and a SIGKILLed master keeps its VIPs and sends no priority 0 (two
masters). Python does far more work per event than keepalived's C, and under
a flood the loop may not block for much longer than 10 ms, so the default
here sets only the soft limit (SIGXCPU, logged by shell/signals.py, once per
second of realtime CPU without a pause) and no hard limit; the kernel's RT
throttling (sched_rt_runtime_us, 95% by default) still keeps a spinning daemon
from locking a core. An explicit `vrrp_rlimit_rttime N` is applied as
keepalived applies it (soft N/2, hard N, SIGKILL past N).

Must not: exit or raise for a refusal.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field

import structlog

from pyvrrpd.config.model import GlobalDefs
from pyvrrpd.io import sched
from pyvrrpd.shell.ratelimit import RateLimiter
from pyvrrpd.shell.timerheap import TimerHeap

log = structlog.get_logger("pyvrrpd")

#: seconds between probes of the timer heap's lateness (max_auto_priority)
PROBE_INTERVAL = 0.1
#: keepalived's default vrrp_rlimit_rttime (µs); here its half is the soft limit
KEEPALIVED_RLIMIT_RTTIME = 10_000
#: a "timers late" line that raises nothing is logged at most this often (s)
LATE_LOG_INTERVAL = 10.0
_PROBE_KEY = ("sched", "auto_priority")


@dataclass(slots=True)
class ProcessPriority:
    """The scheduling applied to the daemon, and the max_auto_priority probe."""

    gd: GlobalDefs
    rt_priority: int = 0  # current SCHED_RR priority (0: not realtime)
    nice: int | None = None  # the nice value we set, if any
    rttime: tuple[int, int] | None = None  # (soft, hard) µs we set
    memory_locked: bool = False
    refused: list[str] = field(default_factory=list)  # settings the kernel refused
    raises: int = 0  # automatic raises done
    auto: bool = False  # the probe is raising priority when timers run late
    _timers: TimerHeap | None = None
    _probe_due: float = 0.0
    _late_log: RateLimiter | None = None

    def apply(self) -> None:
        """Apply the configured settings; log them once, and each refusal."""
        gd = self.gd
        if gd.vrrp_rt_priority:
            self._go_realtime(gd.vrrp_rt_priority, "vrrp_rt_priority")
        elif gd.vrrp_priority is not None:
            err = sched.set_nice(gd.vrrp_priority)
            if err:
                self._refused(f"vrrp_priority {gd.vrrp_priority}", err)
            else:
                self.nice = gd.vrrp_priority
        if gd.vrrp_no_swap:
            err = sched.lock_memory()
            if err:
                self._refused("vrrp_no_swap", err)
            else:
                self.memory_locked = True
        self.auto = gd.max_auto_priority > 0
        if self.configured:
            log.info("process_scheduling", **self.describe())

    @property
    def configured(self) -> bool:
        gd = self.gd
        return bool(
            gd.vrrp_rt_priority
            or gd.vrrp_priority is not None
            or gd.vrrp_no_swap
            or gd.max_auto_priority
        )

    def describe(self) -> dict[str, object]:
        """The settings in force (the start line)."""
        out: dict[str, object] = {}
        if self.rt_priority:
            out["realtime"] = f"SCHED_RR {self.rt_priority}"
        if self.rttime is not None:
            soft, hard = self.rttime
            out["rlimit_rttime_us"] = f"soft {soft}, hard {_limit(hard)}"
        if self.nice is not None:
            out["nice"] = self.nice
        if self.gd.vrrp_no_swap:
            out["memory_locked"] = self.memory_locked
        if self.gd.max_auto_priority:
            out["max_auto_priority"] = self.gd.max_auto_priority
            out["min_auto_priority_delay_us"] = self.gd.min_auto_priority_delay
        if self.refused:
            out["refused"] = list(self.refused)
        return out

    def _go_realtime(self, priority: int, keyword: str) -> bool:
        err = sched.set_realtime(priority)
        if err:
            self._refused(f"{keyword} {priority}", err)
            return False
        self.rt_priority = priority
        if self.rttime is None:
            self._set_rttime()
        return True

    def _set_rttime(self) -> None:
        hard = self.gd.vrrp_rlimit_rttime
        if hard is not None:
            limits = sched.rttime_limits(hard)
        else:
            # The soft limit alone (module docstring): warnings, never a SIGKILL.
            soft = sched.rttime_limits(KEEPALIVED_RLIMIT_RTTIME)[0]
            limits = (soft, resource.RLIM_INFINITY)
        err = sched.set_rttime_limit(*limits)
        if err:
            self._refused(f"vrrp_rlimit_rttime {_limit(limits[1])}", err)
        else:
            self.rttime = limits

    def _refused(self, setting: str, error: str) -> None:
        self.refused.append(setting)
        log.warning("process_scheduling_refused", setting=setting, error=error)

    # -------------------------------------------------------- auto priority

    def start_probe(self, timers: TimerHeap, now: float) -> None:
        """Watch the timer heap's lateness, if max_auto_priority is set."""
        if not self.auto:
            return
        self._timers = timers
        self._late_log = RateLimiter(LATE_LOG_INTERVAL, time.monotonic)
        timers.register(_PROBE_KEY, self._probe)
        self._arm(now)

    def _arm(self, now: float) -> None:
        assert self._timers is not None
        self._probe_due = now + PROBE_INTERVAL
        self._timers.set(_PROBE_KEY, self._probe_due)

    def _probe(self, now: float) -> None:
        late = now - self._probe_due
        if late * 1e6 > self.gd.min_auto_priority_delay:
            self.timers_late(late)
        if self.auto:
            self._arm(now)
        elif self._timers is not None:
            self._timers.unregister(_PROBE_KEY)

    def timers_late(self, late: float) -> None:
        """keepalived's `increment_process_priority()`: go realtime, then one step up."""
        top = self.gd.max_auto_priority
        if self.rt_priority >= top:
            # Already as high as allowed: say so now and then, as keepalived
            # says "A thread timer expired" each time.
            assert self._late_log is not None
            suppressed = self._late_log.allow("late")
            if suppressed is not None:
                log.warning("timers_late", late_s=round(late, 3), suppressed=suppressed,
                            realtime_priority=self.rt_priority)  # fmt: skip
            return
        log.warning("timers_late", late_s=round(late, 3), realtime_priority=self.rt_priority)
        lowest = os.sched_get_priority_min(os.SCHED_RR)
        target = self.rt_priority + 1 if self.rt_priority else lowest
        if self._go_realtime(target, "max_auto_priority"):
            self.raises += 1
            log.info("realtime_priority_raised", priority=target, max_auto_priority=top)
        else:
            self.auto = False  # EPERM will not go away; the refusal was logged once


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def start(gd: GlobalDefs, timers: TimerHeap, now: float) -> ProcessPriority:
    """Apply `gd`'s scheduling now and start the max_auto_priority probe (daemon start)."""
    prio = ProcessPriority(gd)
    prio.apply()
    prio.start_probe(timers, now)
    return prio
