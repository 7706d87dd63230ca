"""The chaos test's judge: from VIP-holder samples and a log of faults, find rule breaks.

Issue 5 item 12 states two rules; this module owns them and their exemptions,
and nothing else (pure: no clock, no I/O; every call carries ``t``, monotonic
seconds, so unit tests replay timelines).

1. **Never two holders.** The VIP is never on two boxes at once, except when
   one of them is *exempt*: its daemon was SIGKILLed or SIGSTOPped, from that
   signal until the box's next daemon has processed its start-up (a fresh
   daemon removes leftover VIPs first, keepalived.md 2.8) or until SIGCONT,
   plus a short grace (:data:`RESTART_GRACE`, :data:`CONT_GRACE`).
2. **Never none for long.** The VIP is never absent for longer than
   :data:`ABSENCE_BOUND` (Master_Down_Interval + 0.5 s) while a box is *able*:
   a daemon running and past its start-up (not stopped), HAProxy running, its
   link up, its interface present and its primary address on it. The clock
   for a box starts when the absence began or when the box became able,
   whichever is later; with no able box the rule is suspended.

A flood carrying *valid* lower-priority adverts for the guide's VRID also
suspends rule 2 until it ends: with ``nopreempt`` a backup resets its
Master_Down_Timer on any advert, whatever its priority (RFC 3768 6.4.2,
"If Preempt_Mode is False, or if the Priority ... is greater than or equal"),
so such a sender is a master as far as the protocol goes, and the backup
rightly waits one Master_Down_Interval after its last packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: RFC 3768 6.1: Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time,
#: Skew_Time = (256 - Priority) / 256. The guide: advert_int 1, lowest priority 90.
MASTER_DOWN = 3 * 1.0 + (256 - 90) / 256  # 3.6484375 s
#: Rule 2's bound: Master_Down_Interval plus 0.5 s for scheduling and netlink.
ABSENCE_BOUND = MASTER_DOWN + 0.5
#: After SIGCONT a daemon has a backlog: an overdue advert timer (RFC 3768
#: 6.4.3 Adver_Timer fires -> an advert goes out at once) and queued adverts
#: from the peer. Either one makes the lower-priority of the two masters see a
#: higher priority and step down to Backup (6.4.3, "greater than the local
#: Priority ... transition to the Backup state"): one advert and one receive,
#: a few ms on an idle LAN. 0.5 s covers a Python process descheduled on two
#: loaded cores and the checker's 20 ms sampling.
CONT_GRACE = 0.5
#: A restarted daemon removes leftover VIPs when it handles its start-up event,
#: before its first state change; the removal is one netlink round trip queued
#: in the same step. The supervisor notices that first state change by polling
#: the daemon's log every 50 ms; 0.5 s covers both.
RESTART_GRACE = 0.5
#: Conditions a box needs to be able to hold the VIP (rule 2).
CONDITIONS = ("daemon", "stopped", "haproxy", "link", "iface", "addr")
_CONTEXT_BEFORE = 12.0


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a fault, a recovery, a daemon exit or restart."""

    t: float
    host: str | None
    kind: str
    detail: str = ""
    fault: bool = False

    def describe(self) -> str:
        where = f" {self.host}" if self.host else ""
        tag = "FAULT " if self.fault else ""
        more = f" ({self.detail})" if self.detail else ""
        return f"{self.t:8.2f}s {tag}{self.kind}{where}{more}"


@dataclass(slots=True)
class Violation:
    """One rule break, from ``start`` to ``end`` (``None`` while it lasts)."""

    rule: str  # two_holders | no_holder | end_state
    start: float
    detail: str
    fault: Event | None
    context: tuple[Event, ...]
    end: float | None = None
    detected: float | None = None
    per_host: tuple[Event, ...] = ()  # the last fault on each box, when not ``fault``

    def describe(self) -> str:
        span = f"{self.end - self.start:.2f} s" if self.end is not None else "until the end"
        lines = [f"VIOLATION {self.rule} at {self.start:.2f} s (lasted {span}): {self.detail}"]
        lines.append(
            f"  fault before it: {self.fault.describe().strip() if self.fault else 'none'}"
        )
        lines += [f"  last fault on {e.host}: {e.describe().strip()}" for e in self.per_host]
        lines.append("  events before it:")
        lines += [f"    {e.describe()}" for e in self.context]
        return "\n".join(lines)


@dataclass(slots=True)
class Box:
    """What the judge knows about one load balancer."""

    name: str
    bad: set[str] = field(default_factory=set)  # failing CONDITIONS
    able_since: float | None = 0.0
    exempt_why: str | None = None  # "SIGKILL" / "SIGSTOP" while in effect
    exempt_until: float = float("-inf")  # grace after the exemption ended

    def exempt(self, t: float) -> bool:
        return self.exempt_why is not None or t < self.exempt_until


@dataclass(slots=True)
class Stats:
    """Figures of one pass."""

    samples: int = 0
    max_gap: float = 0.0  # longest time between two samples
    exempt_double: float = 0.0  # seconds with two holders, excused
    longest_absence: float = 0.0  # any absence
    longest_judged_absence: float = 0.0  # absence while a box was able


class Judge:
    """Feed it events and samples in time order; read :attr:`violations`."""

    def __init__(self, hosts: Iterable[str], t0: float = 0.0) -> None:
        self.boxes = {h: Box(h, able_since=t0) for h in hosts}
        self.events: list[Event] = []
        self.violations: list[Violation] = []
        self.stats = Stats()
        self._absent_since: float | None = None
        self._held_until = float("-inf")  # rule 2 suspended before this
        self._holding = False
        self._double: Violation | None = None
        self._none: Violation | None = None
        self._last_sample: float | None = None

    # ------------------------------------------------------------ the log
    def event(
        self, t: float, host: str | None, kind: str, detail: str = "", fault: bool = False
    ) -> Event:
        ev = Event(t, host, kind, detail, fault)
        self.events.append(ev)
        return ev

    def impair(self, t: float, host: str, cond: str) -> None:
        """``cond`` stops holding on ``host`` (it can no longer be the holder)."""
        assert cond in CONDITIONS, cond
        box = self.boxes[host]
        box.bad.add(cond)
        box.able_since = None

    def restore(self, t: float, host: str, cond: str) -> None:
        """``cond`` holds again on ``host``; the box is able once nothing fails."""
        assert cond in CONDITIONS, cond
        box = self.boxes[host]
        box.bad.discard(cond)
        if not box.bad and box.able_since is None:
            box.able_since = t

    def able(self, host: str) -> bool:
        return not self.boxes[host].bad

    def exempt(self, t: float, host: str, why: str) -> None:
        """Rule 1 is lifted for ``host`` (SIGKILL or SIGSTOP of its daemon)."""
        self.boxes[host].exempt_why = why

    def unexempt(self, t: float, host: str, grace: float) -> None:
        """The exemption ends (restart done, or SIGCONT), after ``grace``."""
        box = self.boxes[host]
        if box.exempt_why is not None:
            box.exempt_why = None
            box.exempt_until = t + grace

    def hold_absence(self, t: float) -> None:
        """A valid-advert flood started: rule 2 waits for it to end."""
        self._holding = True

    def release_absence(self, t: float) -> None:
        self._holding = False
        self._held_until = t

    # ------------------------------------------------------------ samples
    def sample(self, t: float, holders: Mapping[str, str]) -> None:
        """The VIP holders at ``t`` (``{host: interface}``)."""
        st = self.stats
        st.samples += 1
        dt = t - self._last_sample if self._last_sample is not None else 0.0
        st.max_gap = max(st.max_gap, dt)
        self._last_sample = t
        self._rule_double(t, holders, dt)
        self._rule_absent(t, holders)

    def _rule_double(self, t: float, holders: Mapping[str, str], dt: float) -> None:
        excused = [h for h in holders if self.boxes[h].exempt(t)]
        if len(holders) < 2 or excused:
            if len(holders) >= 2:
                self.stats.exempt_double += dt
            if self._double is not None:  # over, or an exemption began mid-violation
                self._double.end = t
                self._double = None
            return
        if self._double is None:
            notes = [f"{h} on {iface}" for h, iface in sorted(holders.items())]
            downs = [h for h in holders if {"link", "iface"} & self.boxes[h].bad]
            if downs:
                notes.append(f"link/interface down on {', '.join(downs)}")
            self._double = self._open("two_holders", t, "VIP on " + ", ".join(notes), t)

    def _rule_absent(self, t: float, holders: Mapping[str, str]) -> None:
        if holders:
            if self._absent_since is not None:
                self.stats.longest_absence = max(self.stats.longest_absence, t - self._absent_since)
            self._absent_since = None
            if self._none is not None:
                self._none.end = t
                self._none = None
            return
        if self._absent_since is None:
            self._absent_since = t
        if self._holding:
            return
        worst: tuple[float, str] | None = None
        for box in self.boxes.values():
            if box.bad or box.able_since is None:
                continue
            start = max(self._absent_since, box.able_since, self._held_until)
            if worst is None or t - start > worst[0]:
                worst = (t - start, box.name)
        if worst is None:
            return
        self.stats.longest_judged_absence = max(self.stats.longest_judged_absence, worst[0])
        if worst[0] > ABSENCE_BOUND and self._none is None:
            since = self.boxes[worst[1]].able_since
            self._none = self._open(
                "no_holder",
                self._absent_since,
                f"no box holds the VIP; {worst[1]} able since "
                f"{since:.2f} s, judged absence {worst[0]:.2f} s > {ABSENCE_BOUND:.2f} s",
                t,
            )

    def end_state(self, t: float, holders: Mapping[str, str], why: str) -> None:
        """At the end of a pass (everything recovered) exactly one box must hold the VIP."""
        if len(holders) != 1:
            v = self._open("end_state", t, f"{why}: holders {sorted(holders) or 'none'}", t)
            v.end = t

    def _open(self, rule: str, start: float, detail: str, detected: float) -> Violation:
        faults = [e for e in self.events if e.fault and e.t <= start]
        ctx = [e for e in self.events if start - _CONTEXT_BEFORE <= e.t <= detected]
        last = faults[-1] if faults else None
        per_host = []
        for box in self.boxes:
            mine = [e for e in faults if e.host == box]
            if mine and mine[-1] is not last:
                per_host.append(mine[-1])
        v = Violation(rule, start, detail, last, tuple(ctx[-16:]), per_host=tuple(per_host))
        v.detected = detected
        self.violations.append(v)
        return v

    def finish(self, t: float) -> None:
        """Close what is still open at the end of a pass."""
        if self._absent_since is not None:
            self.stats.longest_absence = max(self.stats.longest_absence, t - self._absent_since)
        for v in (self._double, self._none):
            if v is not None and v.end is None:
                v.end = t
