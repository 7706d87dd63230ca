"""Protocol edge cases found by review (issue 5 item 8), as timeline scripts.

Two address owners, priority 0 twice on MASTER -> FAULT, and the work a
lower-priority advert triggers: keepalived's GARP semantics, coalesced.
"""

from __future__ import annotations

import itertools

import pytest

from pyvrrpd.core.actions import (
    Action,
    LowerPriorityDiscarded,
    LowerPriorityHeard,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    SendGarp,
    StateChanged,
    Warned,
)
from pyvrrpd.core.events import Started, TimerFired, TrackerChanged
from pyvrrpd.core.router import LOWER_PRIO_ADVERT_GAP, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import TrackerSpec
from tests.unit.test_core_router import LOWER_PEER, ME, PEER, advert, cfg

HIGHER_OWNER = PEER  # 192.0.2.12 > ME 192.0.2.11
LOWER_OWNER = LOWER_PEER  # 192.0.2.5 < ME


def master(now: float = 0.0, **kw: object) -> VirtualRouter:
    """A router that is MASTER at `now` (an owner starts as master at once)."""
    vr = VirtualRouter(cfg(**kw))
    vr.handle(Started(ME), now)
    if vr.state is not State.MASTER:
        deadline = vr.next_deadline()
        assert deadline is not None
        vr.handle(TimerFired(), deadline)
    assert vr.state is State.MASTER
    return vr


def run_until(vr: VirtualRouter, t: float) -> list[tuple[float, Action]]:
    """Deliver every timer up to `t`; the actions with their times."""
    got: list[tuple[float, Action]] = []
    while (d := vr.next_deadline()) is not None and d <= t:
        got.extend((d, a) for a in vr.handle(TimerFired(), d))
    return got


def of(kind: type, actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]


# --- two address owners -----------------------------------------------------------------


def owner() -> VirtualRouter:
    return master(priority=255, initial_master=True)


def test_owner_with_lower_address_logs_the_conflict_and_yields() -> None:
    vr = owner()
    actions = vr.handle(advert(255, HIGHER_OWNER), 0.5)
    assert actions[0] == Warned(
        "owner_conflict",
        f"CONFIGURATION ERROR: local instance and {HIGHER_OWNER} are both configured"
        " as address owner, please resolve",
        HIGHER_OWNER,
    )
    assert vr.state is State.BACKUP  # RFC 3768 6.4.3 tie-break on the address
    assert vr.effective_priority == 255


def test_owner_with_higher_address_waits_then_backs_off_to_254() -> None:
    vr = owner()
    # First 255 advert from an owner with a lower address: log, stay master, answer.
    actions = vr.handle(advert(255, LOWER_OWNER), 0.5)
    assert of(Warned, actions) == [
        Warned(
            "owner_conflict",
            f"CONFIGURATION ERROR: local instance and {LOWER_OWNER} are both configured"
            " as address owner, please resolve",
            LOWER_OWNER,
        )
    ]
    assert SendAdvert(255) in actions and vr.state is State.MASTER
    # Its next advert: answered (our first advert since), no second log.
    assert of(Warned, vr.handle(advert(255, LOWER_OWNER), 0.9)) == []
    run_until(vr, 1.95)  # our second advert, periodic at 1.9: the 1.2 s window opens
    assert vr.state is State.MASTER
    # It is still advertising within the window: we act as 254 and yield.
    actions = vr.handle(advert(255, LOWER_OWNER), 2.5)
    assert actions[0] == Warned(
        "owner_conflict",
        f"{LOWER_OWNER} is still advertising as address owner, please resolve"
        " - reducing our priority",
        LOWER_OWNER,
    )
    assert PriorityChanged(255, 254) in actions
    assert RemoveVips() in actions
    assert vr.state is State.BACKUP
    assert vr.status().effective_priority == 254
    # It keeps advertising 255: we stay BACKUP at 254 (one master).
    assert of(PriorityChanged, vr.handle(advert(255, LOWER_OWNER), 4.5)) == []
    # keepalived restores 255 once the master changes or no longer claims 255.
    actions = vr.handle(advert(100, LOWER_OWNER), 5.5)
    assert PriorityChanged(254, 255) in actions
    assert vr.effective_priority == 255


def test_owner_conflict_that_stops_in_time_leaves_us_master_at_255() -> None:
    vr = owner()
    vr.handle(advert(255, LOWER_OWNER), 0.5)
    run_until(vr, 2.55)
    # Our adverts at 1.5 and 2.5; the 1.2 s window after the second passes quietly.
    run_until(vr, 10.0)
    assert vr.state is State.MASTER and vr.effective_priority == 255
    # A later 255 advert is a new conflict: logged again, no back-off yet.
    actions = vr.handle(advert(255, LOWER_OWNER), 10.5)
    assert [w.detail.split(":")[0] for w in of(Warned, actions)] == ["CONFIGURATION ERROR"]
    assert vr.state is State.MASTER


def test_non_owner_equal_priority_is_the_plain_tie_break() -> None:
    vr = master()
    assert of(Warned, vr.handle(advert(100, LOWER_PEER), 0.5)) == []
    assert vr.state is State.MASTER


# --- priority 0 twice on MASTER -> FAULT ------------------------------------------------


def test_master_to_fault_sends_priority_zero_twice_back_to_back() -> None:
    vr = VirtualRouter(cfg(trackers=(TrackerSpec("chk", 0),)))
    vr.handle(Started(ME), 0.0)
    vr.handle(TrackerChanged("chk", True), 0.0)
    run_until(vr, 4.0)
    assert vr.state is State.MASTER
    before = dict(vr.stats)
    actions = vr.handle(TrackerChanged("chk", False), 10.0)
    assert actions[:3] == [SendAdvert(0), SendAdvert(0), RemoveVips()]
    # keepalived's counters: two adverts sent, one priority-0 resignation.
    assert vr.stats["advert_sent"] - before["advert_sent"] == 2
    assert vr.stats["pri_zero_sent"] - before["pri_zero_sent"] == 1


def test_shutdown_still_sends_priority_zero_once() -> None:
    from pyvrrpd.core.events import ShutdownRequested

    vr = master()
    actions = vr.handle(ShutdownRequested(), 5.0)
    assert of(SendAdvert, actions) == [SendAdvert(0)]


# --- lower-priority adverts: keepalived's GARP semantics, coalesced -----------------------


def test_lower_priority_advert_gets_garp_lower_prio_repeat_and_a_second_burst() -> None:
    vr = master(
        garp_master_delay=0.0, garp_lower_prio_repeat=3, garp_lower_prio_delay=5.0, priority=150
    )
    actions = vr.handle(advert(100), 10.0)
    assert actions == [SendAdvert(150), SendGarp(3), LowerPriorityHeard(PEER, 100)]
    later = run_until(vr, 16.0)
    assert [(t, a) for t, a in later if isinstance(a, SendGarp)] == [(15.0, SendGarp(3))]


def test_lower_prio_delay_zero_means_no_second_burst() -> None:
    vr = master(garp_master_delay=0.0, garp_lower_prio_repeat=2, garp_lower_prio_delay=0.0)
    assert of(SendGarp, vr.handle(advert(50), 10.0)) == [SendGarp(2)]
    assert of(SendGarp, [a for _, a in run_until(vr, 30.0)]) == []


def test_lower_prio_repeat_zero_means_no_garp_at_all() -> None:
    vr = master(garp_master_delay=0.0, garp_lower_prio_repeat=0, garp_lower_prio_delay=5.0)
    actions = vr.handle(advert(50), 10.0) + [a for _, a in run_until(vr, 30.0)]
    assert of(SendGarp, actions) == []
    assert SendAdvert(100) in actions  # the immediate advert still goes out


def test_a_flood_of_lower_priority_adverts_is_coalesced() -> None:
    vr = master(garp_master_delay=0.0, garp_lower_prio_repeat=5, garp_lower_prio_delay=5.0)
    adverts_sent: list[float] = []
    garps: list[float] = []
    now = 10.0
    # 10 s at 1,000 valid lower-priority adverts a second, timers delivered on time.
    while now < 20.0:
        for t, a in run_until(vr, now):
            if isinstance(a, SendAdvert):
                adverts_sent.append(t)
            if isinstance(a, SendGarp):
                garps.append(t)
        for a in vr.handle(advert(50), now):
            if isinstance(a, SendAdvert):
                adverts_sent.append(now)
            if isinstance(a, SendGarp):
                garps.append(now)
        now = round(now + 0.001, 6)
    assert vr.state is State.MASTER
    adverts_sent = [t for t in adverts_sent if t >= 10.0]
    # One answer per LOWER_PRIO_ADVERT_GAP at most: ~100 adverts, not 10,000.
    assert len(adverts_sent) <= 10.0 / LOWER_PRIO_ADVERT_GAP + 2
    gaps = [b - a for a, b in itertools.pairwise(adverts_sent)]
    assert min(gaps) >= LOWER_PRIO_ADVERT_GAP - 1e-9
    assert max(gaps) <= 1.0  # never longer than advert_int either
    # GARP: the first burst, its second burst 5 s later, then one cycle per window.
    assert garps == pytest.approx([10.0, 15.0])


def test_lower_priority_gap_does_not_delay_the_periodic_advert() -> None:
    vr = master(priority=150, garp_master_delay=0.0)
    vr.handle(advert(100), 10.0)  # answered at 10.0; Adver_Timer re-armed to 11.0
    assert of(SendAdvert, vr.handle(advert(100), 10.05)) == []  # within the gap
    times = [t for t, a in run_until(vr, 12.5) if isinstance(a, SendAdvert)]
    assert times == [11.0, 12.0]


def test_lower_prio_garp_cycle_restarts_after_leaving_and_regaining_master() -> None:
    vr = master(garp_master_delay=0.0, garp_lower_prio_repeat=1, garp_lower_prio_delay=5.0)
    assert of(SendGarp, vr.handle(advert(50), 10.0)) == [SendGarp(1)]
    vr.handle(advert(200), 10.5)  # a higher-priority master: we yield
    assert vr.state is State.BACKUP
    assert vr.next_deadline() == pytest.approx(10.5 + vr.master_down_interval)
    run_until(vr, 20.0)  # it went silent: we are master again
    assert vr.state is State.MASTER
    assert of(SendGarp, vr.handle(advert(50), 20.5)) == [SendGarp(1)]


def test_backup_ignores_lower_prio_garp_settings() -> None:
    vr = VirtualRouter(cfg(garp_lower_prio_repeat=5))
    vr.handle(Started(ME), 0.0)
    # Discarded (RFC 3768 6.4.2), logged as keepalived does; no GARP.
    assert vr.handle(advert(50), 1.0) == [LowerPriorityDiscarded(PEER, 50)]
    assert vr.state is State.BACKUP


def test_priority_changed_is_not_emitted_for_owner_without_conflict() -> None:
    vr = owner()
    assert of(PriorityChanged, vr.handle(advert(100, LOWER_PEER), 1.0)) == []
    assert of(StateChanged, vr.handle(advert(100, LOWER_PEER), 1.5)) == []
