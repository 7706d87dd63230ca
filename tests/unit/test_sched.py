"""Process scheduling: the system calls (io/sched.py), what the daemon applies (shell/priority.py).

The system calls are mocked here, but for two checks in a child process as
root: scripts do not inherit the realtime policy, and memory gets locked.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from pyvrrpd.config.model import GlobalDefs
from pyvrrpd.io import sched
from pyvrrpd.shell import priority
from pyvrrpd.shell.priority import PROBE_INTERVAL, ProcessPriority

EPERM = "Operation not permitted (EPERM)"


def _raise(code: int) -> Callable[..., Any]:
    def fail(*_args: object) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


# ------------------------------------------------------------------ io/sched.py


def test_set_realtime_asks_for_round_robin_reset_on_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int]] = []

    def setscheduler(pid: int, policy: int, param: os.sched_param) -> None:
        calls.append((pid, policy, param.sched_priority))

    monkeypatch.setattr(os, "sched_setscheduler", setscheduler)
    assert sched.set_realtime(50) is None
    assert calls == [(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, 50)]


def test_set_realtime_refused_is_a_reason_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_setscheduler", _raise(errno.EPERM))
    assert sched.set_realtime(50) == EPERM


def test_set_nice_keeps_the_policy_and_resets_children(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr(os, "setpriority", lambda *a: calls.append(("nice", a)))
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_BATCH)
    monkeypatch.setattr(
        os, "sched_setscheduler", lambda pid, pol, p: calls.append(("policy", (pid, pol)))
    )
    assert sched.set_nice(-10) is None
    assert calls == [
        ("nice", (os.PRIO_PROCESS, 0, -10)),
        ("policy", (0, os.SCHED_BATCH | os.SCHED_RESET_ON_FORK)),
    ]


def test_set_nice_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "setpriority", _raise(errno.EACCES))
    assert sched.set_nice(-10) == "Permission denied (EACCES)"


def test_set_nice_leaves_a_realtime_policy_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "setpriority", lambda *a: None)
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_FIFO)
    monkeypatch.setattr(os, "sched_setscheduler", _raise(errno.EINVAL))
    assert sched.set_nice(5) is None


def test_rttime_limit_is_soft_half_hard_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda res, lim: got.append((res, lim)))
    assert sched.rttime_limits(10_000) == (5_000, 10_000)
    assert sched.rttime_limits(2) == (1, 2)
    assert sched.set_rttime_limit(*sched.rttime_limits(10_000)) is None
    assert got == [(resource.RLIMIT_RTTIME, (5_000, 10_000))]
    monkeypatch.setattr(resource, "setrlimit", _raise(errno.EPERM))
    assert sched.set_rttime_limit(1, 2) == EPERM


def test_lock_memory_as_keepalived_with_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    flags: list[int] = []
    results = iter([errno.EINVAL, 0])

    def mlockall(f: int) -> int:
        flags.append(f)
        return next(results)

    monkeypatch.setattr(sched, "_libc_mlockall", mlockall)
    assert sched.lock_memory() is None
    both = sched.MCL_CURRENT | sched.MCL_FUTURE
    assert flags == [both | sched.MCL_ONFAULT, both]  # old kernels refuse MCL_ONFAULT
    monkeypatch.setattr(sched, "_libc_mlockall", lambda f: errno.EPERM)
    assert sched.lock_memory() == EPERM


# ------------------------------------------------------------------ shell/priority.py


@dataclass
class FakeSched:
    """Records io.sched calls; `refuse` names the calls that fail with EPERM."""

    refuse: set[str] = field(default_factory=set)
    calls: list[tuple[str, object]] = field(default_factory=list)

    def install(self, mp: pytest.MonkeyPatch) -> None:
        def make(name: str) -> Callable[..., str | None]:
            def call(*args: object) -> str | None:
                self.calls.append((name, args[0] if len(args) == 1 else args))
                return EPERM if name in self.refuse else None

            return call

        for name in ("set_nice", "set_realtime", "set_rttime_limit", "lock_memory"):
            mp.setattr(sched, name, make(name))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSched:
    f = FakeSched()
    f.install(monkeypatch)
    return f


def apply(gd: GlobalDefs) -> tuple[ProcessPriority, list[MutableMapping[str, Any]]]:
    prio = ProcessPriority(gd)
    with capture_logs() as logs:
        prio.apply()
    return prio, logs


def test_nothing_configured_touches_nothing(fake: FakeSched) -> None:
    _, logs = apply(GlobalDefs())
    assert fake.calls == [] and logs == []


def test_realtime_with_keepalived_order_and_one_line(fake: FakeSched) -> None:
    gd = GlobalDefs(vrrp_priority=-10, vrrp_rt_priority=50, vrrp_no_swap=True)
    prio, logs = apply(gd)
    # keepalived applies the nice value only without realtime scheduling.
    assert fake.calls == [
        ("set_realtime", 50),
        ("set_rttime_limit", (5_000, resource.RLIM_INFINITY)),
        ("lock_memory", ()),
    ]
    assert logs == [
        {
            "event": "process_scheduling",
            "log_level": "info",
            "realtime": "SCHED_RR 50",
            "rlimit_rttime_us": "soft 5000, hard unlimited",
            "memory_locked": True,
        }
    ]
    assert prio.rt_priority == 50


def test_explicit_rlimit_is_applied_as_keepalived_does(fake: FakeSched) -> None:
    prio, _ = apply(GlobalDefs(vrrp_rt_priority=10, vrrp_rlimit_rttime=200_000))
    assert ("set_rttime_limit", (100_000, 200_000)) in fake.calls
    assert prio.rttime == (100_000, 200_000)


def test_nice_alone(fake: FakeSched) -> None:
    prio, logs = apply(GlobalDefs(vrrp_priority=-15))
    assert fake.calls == [("set_nice", -15)]
    assert logs[0]["nice"] == -15 and prio.rt_priority == 0


def test_refusals_are_warnings_and_the_rest_still_applies(fake: FakeSched) -> None:
    fake.refuse = {"set_realtime", "lock_memory"}
    prio, logs = apply(GlobalDefs(vrrp_rt_priority=50, vrrp_no_swap=True))
    assert [(e["event"], e.get("setting"), e.get("error")) for e in logs] == [
        ("process_scheduling_refused", "vrrp_rt_priority 50", EPERM),
        ("process_scheduling_refused", "vrrp_no_swap", EPERM),
        ("process_scheduling", None, None),
    ]
    assert logs[-1]["refused"] == ["vrrp_rt_priority 50", "vrrp_no_swap"]
    # No realtime, so no RLIMIT_RTTIME either.
    assert [c[0] for c in fake.calls] == ["set_realtime", "lock_memory"]
    assert prio.rt_priority == 0


@dataclass
class FakeTimers:
    """The two TimerHeap calls the probe uses."""

    callbacks: dict[Hashable, Callable[[float], None]] = field(default_factory=dict)
    deadlines: dict[Hashable, float | None] = field(default_factory=dict)

    def register(self, key: Hashable, cb: Callable[[float], None]) -> None:
        self.callbacks[key] = cb

    def unregister(self, key: Hashable) -> None:
        self.callbacks.pop(key, None)
        self.deadlines[key] = None

    def set(self, key: Hashable, deadline: float | None) -> None:
        self.deadlines[key] = deadline

    def fire(self, late: float) -> float:
        """Run the probe `late` seconds after its deadline; returns that time."""
        ((key, deadline),) = [(k, d) for k, d in self.deadlines.items() if d is not None]
        now = deadline + late
        self.callbacks[key](now)
        return now


def start_auto(gd: GlobalDefs) -> tuple[ProcessPriority, FakeTimers]:
    timers = FakeTimers()
    with capture_logs():
        prio = priority.start(gd, timers, 0.0)  # type: ignore[arg-type]
    return prio, timers


def test_no_probe_without_max_auto_priority(fake: FakeSched) -> None:
    _, timers = start_auto(GlobalDefs(vrrp_rt_priority=5))
    assert timers.callbacks == {}


def test_late_timers_raise_to_realtime_then_step_by_step(fake: FakeSched) -> None:
    prio, timers = start_auto(GlobalDefs(max_auto_priority=3, min_auto_priority_delay=500_000))
    assert fake.calls == []  # nothing until timers run late
    assert list(timers.deadlines.values()) == [pytest.approx(PROBE_INTERVAL)]
    with capture_logs() as logs:
        now = timers.fire(0.4)  # under min_auto_priority_delay: nothing
        assert timers.deadlines[("sched", "auto_priority")] == pytest.approx(now + PROBE_INTERVAL)
        for _ in range(5):
            timers.fire(0.7)
    assert [c for c in fake.calls if c[0] == "set_realtime"] == [
        ("set_realtime", 1),  # sched_get_priority_min(SCHED_RR), as keepalived
        ("set_realtime", 2),
        ("set_realtime", 3),
    ]
    # RLIMIT_RTTIME once, when first going realtime.
    assert [c[0] for c in fake.calls].count("set_rttime_limit") == 1
    assert prio.rt_priority == 3 and prio.raises == 3
    raised = [e["priority"] for e in logs if e["event"] == "realtime_priority_raised"]
    assert raised == [1, 2, 3]
    late = [e for e in logs if e["event"] == "timers_late"]
    # Three raises, then at the top one line per LATE_LOG_INTERVAL.
    assert len(late) == 4 and late[0]["late_s"] == 0.7


def test_auto_starts_from_the_configured_realtime_priority(fake: FakeSched) -> None:
    prio, timers = start_auto(GlobalDefs(vrrp_rt_priority=50, max_auto_priority=60))
    with capture_logs():
        timers.fire(2.0)
    assert prio.rt_priority == 51


def test_auto_refused_stops_probing(fake: FakeSched) -> None:
    fake.refuse = {"set_realtime"}
    prio, timers = start_auto(GlobalDefs(max_auto_priority=10))
    with capture_logs() as logs:
        timers.fire(1.5)
    assert [e["event"] for e in logs] == ["timers_late", "process_scheduling_refused"]
    assert prio.auto is False
    assert timers.callbacks == {}  # the probe is gone


# ------------------------------------------------------------------ real kernel, as root

CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from pyvrrpd.io import sched
    assert sched.set_realtime(10) is None
    assert sched.lock_memory() is None
    status = open("/proc/self/status").read()
    locked = [l for l in status.splitlines() if l.startswith("VmLck:")][0].split()[1]

    async def child_policy() -> bytes:
        # As io/scripts.py spawns scripts.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "import os; print(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out

    out = asyncio.run(child_policy()).decode().split()
    print(os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, int(locked) > 0, *out)
    """
)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SYS_NICE, CAP_IPC_LOCK)")
def test_real_kernel_realtime_not_inherited_by_scripts_and_memory_locked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == [str(os.SCHED_RR), "True", str(os.SCHED_OTHER), "0"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SYS_NICE)")
def test_real_kernel_negative_nice_not_inherited_by_scripts() -> None:
    code = (
        "import os, subprocess, sys\n"
        "from pyvrrpd.io import sched\n"
        "assert sched.set_nice(-12) is None\n"
        "child = subprocess.run([sys.executable, '-c', "
        "'import os; print(os.getpriority(os.PRIO_PROCESS, 0))'], capture_output=True, text=True)\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), child.stdout.strip())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["-12", "0"]
