"""The guide's section 6 as a reusable scenario with structured results.

Steps (both LBs are ``state BACKUP`` + ``nopreempt``, priorities 100 and 90):

1. start HAProxy on both, the VRRP daemon on lb1 then lb2 -> VIP on lb1;
2. stop HAProxy on lb1 -> its check script runs ``killall keepalived``, the daemon
   exits sending priority 0 -> VIP on lb2, the daemon on lb1 is gone;
3. start HAProxy and the daemon on lb1 again -> VIP stays on lb2 (nopreempt);
4. stop HAProxy on lb2 -> VIP back on lb1.

Each step yields a :class:`StepResult` (VIP holders per LB, expected holder,
client outage, client answered, timings). :func:`measure_takeover` times a
SIGTERM/SIGKILL of the master daemon. Used by the demo and the netns tests;
nothing here prints.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyvrrpd.lab.netns import LBS, wait_for
from pyvrrpd.lab.probe import Probe, backends, ok_at_end, outage
from pyvrrpd.lab.services import Services

# generous bounds: the protocol's own figures are in the step results
ELECTION_TIMEOUT = 10.0  # master down interval 3.61 s + daemon start-up
FAILOVER_TIMEOUT = 8.0  # check interval 2 s + skew 0.65 s + slack
CLIENT_TIMEOUT = 5.0
NOPREEMPT_HOLD = 5.0  # longer than lb1's master down interval (3.61 s)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a user would see after one walkthrough step."""

    number: int
    name: str
    expected: str  # the LB the guide shows holding the VIP
    holders: tuple[str, ...]  # LBs with the VIP on eth0 at the end of the step
    states: dict[str, str]  # VRRP state per LB ("down" if its daemon is not running)
    daemons: dict[str, bool]  # daemon running per LB
    outage_s: float  # longest client unavailability during the step
    client_ok: bool  # the client is answered at the end of the step
    backends: tuple[str, ...]  # backends that answered the client during the step
    vip_after_s: float | None  # action -> expected LB is the only holder (None: never)
    duration_s: float  # the whole step
    initial: bool = False  # step 1: outage_s is "time to first answer"
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Exactly one holder, the expected one, and the client answered."""
        return self.holders == (self.expected,) and self.client_ok and not self.notes


def _only(svc: Services, lb: str) -> Callable[[], bool]:
    return lambda: svc.lab.vip_holders() == [lb]


def _finish(
    svc: Services,
    probe: Probe,
    number: int,
    name: str,
    expected: str,
    t_action: float,
    vip_after: float | None,
    notes: list[str],
    initial: bool = False,
) -> StepResult:
    wait_for(probe.answered, CLIENT_TIMEOUT, 0.05)
    samples = probe.stop()
    holders = tuple(svc.lab.vip_holders())
    if initial:
        first = next((s.t for s in samples if s.ok), None)
        out = (first - samples[0].t) if first is not None and samples else float("nan")
    else:
        out = outage(samples)
    return StepResult(
        number=number,
        name=name,
        expected=expected,
        holders=holders,
        states={lb: svc.vrrp_state(lb) for lb in LBS},
        daemons={lb: svc.daemon_running(lb) for lb in LBS},
        outage_s=out,
        client_ok=ok_at_end(samples),
        backends=tuple(backends(samples)),
        vip_after_s=vip_after,
        duration_s=time.monotonic() - t_action,
        initial=initial,
        notes=tuple(notes),
    )


def step_start_both(svc: Services) -> StepResult:
    """Step 1 (guide 6.1): HAProxy on both, daemon on lb1 then lb2 -> VIP on lb1."""
    notes: list[str] = []
    for lb in LBS:
        svc.check_haproxy_config(lb)
        if not svc.haproxy_running(lb):
            svc.start_haproxy(lb)
    probe = Probe(svc.lab, "step1")
    t0 = time.monotonic()
    # lb1 first and up before lb2, as in the guide (lb2 was started 16 min later):
    # both are BACKUP and their master-down timers differ by only 39 ms (3.609 s
    # vs 3.648 s), so two daemons started "at once" race on start-up time.
    for lb in LBS:
        svc.start_daemon(lb)
        if not svc.wait_daemon_ready(lb):
            notes.append(f"daemon on {lb} not in BACKUP/MASTER after 10 s")
    ok, took = wait_for(_only(svc, "lb1"), ELECTION_TIMEOUT)
    if not ok:
        notes.append(f"VIP not on lb1 alone after {ELECTION_TIMEOUT:.0f} s")
    return _finish(
        svc, probe, 1, "start HAProxy + daemon on both", "lb1", t0, took if ok else None,
        notes, initial=True,
    )  # fmt: skip


def _stop_haproxy_step(svc: Services, number: int, victim: str, survivor: str) -> StepResult:
    notes: list[str] = []
    probe = Probe(svc.lab, f"step{number}")
    if not wait_for(probe.answered, CLIENT_TIMEOUT, 0.05)[0]:
        notes.append("client not answered before the step")
    t0 = time.monotonic()
    svc.stop_haproxy(victim)
    ok, took = wait_for(_only(svc, survivor), FAILOVER_TIMEOUT)
    if not ok:
        notes.append(f"VIP not on {survivor} alone after {FAILOVER_TIMEOUT:.0f} s")
    if not svc.wait_daemon_exit(victim, 5.0):
        notes.append(f"daemon on {victim} still running (check script did not kill it)")
    return _finish(
        svc, probe, number, f"stop HAProxy on {victim}", survivor, t0, took if ok else None, notes
    )


def step_stop_lb1(svc: Services) -> StepResult:
    """Step 2 (guide 6.2): stop HAProxy on lb1 -> its daemon is killed -> VIP on lb2."""
    return _stop_haproxy_step(svc, 2, "lb1", "lb2")


def step_restart_lb1(svc: Services) -> StepResult:
    """Step 3 (guide 6.3): HAProxy and daemon on lb1 again -> VIP stays on lb2."""
    notes: list[str] = []
    probe = Probe(svc.lab, "step3")
    wait_for(probe.answered, CLIENT_TIMEOUT, 0.05)
    t0 = time.monotonic()
    svc.start_haproxy("lb1")
    svc.start_daemon("lb1")
    # watch for NOPREEMPT_HOLD seconds that lb2 stays the only holder
    moved, when = wait_for(lambda: svc.lab.vip_holders() != ["lb2"], NOPREEMPT_HOLD, 0.05)
    if moved:
        notes.append(f"VIP holders became {svc.lab.vip_holders()} after {when:.2f} s")
    if not svc.daemon_running("lb1"):
        notes.append("daemon on lb1 exited")
    return _finish(
        svc, probe, 3, "start HAProxy + daemon on lb1", "lb2", t0, None if moved else 0.0, notes
    )


def step_stop_lb2(svc: Services) -> StepResult:
    """Step 4 (guide 6.3 end): stop HAProxy on lb2 -> VIP back on lb1."""
    return _stop_haproxy_step(svc, 4, "lb2", "lb1")


STEPS: tuple[Callable[[Services], StepResult], ...] = (
    step_start_both,
    step_stop_lb1,
    step_restart_lb1,
    step_stop_lb2,
)


def run_walkthrough(
    svc: Services,
    on_step: Callable[[StepResult], None] | None = None,
    stop_on_failure: bool = False,
) -> list[StepResult]:
    """Run the four steps in order (backends are started first if needed)."""
    svc.start_backends()
    results: list[StepResult] = []
    for step in STEPS:
        r = step(svc)
        results.append(r)
        if on_step:
            on_step(r)
        if stop_on_failure and not r.ok:
            break
    return results


@dataclass(frozen=True, slots=True)
class Takeover:
    """How fast the other LB took the VIP after a signal to the master's daemon."""

    signal: str
    victim: str
    survivor: str
    seconds: float | None  # signal -> survivor has the VIP (None: not within timeout)
    outage_s: float
    client_ok: bool
    holders: tuple[str, ...]


def measure_takeover(
    svc: Services, victim: str, sig: signal.Signals, timeout: float = 8.0
) -> Takeover:
    """Signal the daemon on ``victim`` (by the PID we started) and time the takeover.

    The other LB's ``ip addr`` is polled every 20 ms; the client probe runs throughout.
    """
    survivor = next(lb for lb in LBS if lb != victim)
    probe = Probe(svc.lab, f"takeover-{sig.name}")
    wait_for(probe.answered, CLIENT_TIMEOUT, 0.05)
    t0 = time.monotonic()
    svc.signal_daemon(victim, sig)
    ok, took = wait_for(lambda: svc.lab.has_vip(survivor), timeout, 0.02)
    wait_for(probe.answered, CLIENT_TIMEOUT, 0.05)
    samples = probe.stop()
    return Takeover(
        signal=sig.name,
        victim=victim,
        survivor=survivor,
        seconds=took if ok else None,
        outage_s=outage([s for s in samples if s.t >= t0 - 0.1]),
        client_ok=ok_at_end(samples),
        holders=tuple(svc.lab.vip_holders()),
    )


def format_step(r: StepResult) -> str:
    """One readable line per step, e.g. ``step 2  stop HAProxy on lb1  VIP: lb2 ...``."""
    vip = ",".join(r.holders) or "none"
    if r.initial:
        timing = f"first answer {r.outage_s:5.2f} s"
    else:
        timing = f"outage {r.outage_s:5.2f} s      "
    client = f"client OK ({', '.join(r.backends)})" if r.client_ok else "client NOT answered"
    mark = "" if r.ok else f"   <-- expected VIP on {r.expected}"
    states = ", ".join(f"{lb} {st}" for lb, st in r.states.items())
    line = f"step {r.number}  {r.name:32s} VIP: {vip:8s} {timing}   {client}   [{states}]{mark}"
    for note in r.notes:
        line += f"\n        ! {note}"
    return line
