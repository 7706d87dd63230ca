"""Timeline scripts for keepalived's timer and advert keywords in the core:
down_timer_adverts, higher_prio_send_advert, lower_prio_no_advert,
vrrp_startup_delay, dont_track_primary and interface trackers (issue 6)."""

from __future__ import annotations

import pytest

from pyvrrpd.core.actions import AddVips, RemoveVips, SendAdvert, StateChanged
from pyvrrpd.core.events import LinkChanged, Started, TrackerChanged
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import TrackerSpec
from tests.unit.test_core_router import ME, PEER, advert, cfg, fire, started


def master(**kw: object) -> VirtualRouter:
    vr = started(cfg(**kw))
    fire(vr)
    assert vr.state is State.MASTER
    return vr


@pytest.mark.parametrize(
    ("adverts", "expect"),
    # N * 1 s + (256 - 100) / 256
    [(1, 1.609375), (3, 3.609375), (5, 5.609375), (100, 100.609375)],
)
def test_down_timer_adverts_sets_master_down_interval(adverts: int, expect: float) -> None:
    vr = started(cfg(down_timer_adverts=adverts), now=10.0)
    assert vr.next_deadline() == pytest.approx(10.0 + expect)
    assert vr.master_down_interval == pytest.approx(expect)
    fire(vr)
    assert vr.state is State.MASTER
    # An accepted advert re-arms the same interval.
    vr2 = started(cfg(down_timer_adverts=adverts))
    vr2.handle(advert(150), 1.0)
    assert vr2.next_deadline() == pytest.approx(1.0 + expect)


def test_down_timer_adverts_with_priority_change_keeps_skew_rule() -> None:
    vr = started(cfg(down_timer_adverts=2, trackers=(TrackerSpec("chk", weight=-50),)))
    vr.handle(TrackerChanged("chk", True), 0.0)
    assert vr.next_deadline() == pytest.approx(2 + 156 / 256)
    vr.handle(TrackerChanged("chk", False), 1.0)  # priority 100 -> 50: skew grows
    assert vr.effective_priority == 50
    assert vr.next_deadline() == pytest.approx(2 + 206 / 256)


def test_higher_prio_send_advert_answers_before_stepping_down() -> None:
    vr = master(higher_prio_send_advert=True)
    actions = vr.handle(advert(150), 2.0)
    assert actions[0] == SendAdvert(100)
    assert RemoveVips() in actions
    assert vr.state is State.BACKUP
    assert actions.index(SendAdvert(100)) < actions.index(RemoveVips())


def test_without_higher_prio_send_advert_master_steps_down_silently() -> None:
    vr = master()
    actions = vr.handle(advert(150), 2.0)
    assert not any(isinstance(a, SendAdvert) for a in actions)
    assert vr.state is State.BACKUP


def test_higher_prio_send_advert_on_equal_priority_higher_address() -> None:
    vr = master(higher_prio_send_advert=True)
    assert int(PEER) > int(ME)
    actions = vr.handle(advert(100, PEER), 2.0)
    assert SendAdvert(100) in actions
    assert vr.state is State.BACKUP


def test_lower_prio_no_advert_keeps_master_quiet() -> None:
    vr = master(lower_prio_no_advert=True)
    actions = vr.handle(advert(50), 2.0)
    assert not any(isinstance(a, SendAdvert) for a in actions)
    assert vr.state is State.MASTER
    loud = master()
    assert SendAdvert(100) in loud.handle(advert(50), 2.0)


def test_startup_delay_holds_the_backup_timer() -> None:
    vr = started(cfg(startup_delay=10.0), now=0.0)
    assert vr.state is State.BACKUP
    # keepalived 2.2.7: the down timer counts from the end of the delay.
    assert vr.next_deadline() == pytest.approx(10 + 3.609375)
    # Adverts are still followed; each re-arms from the delay's end.
    vr.handle(advert(150), 4.0)
    assert vr.master_ip == PEER
    assert vr.next_deadline() == pytest.approx(10 + 3.609375)
    # Priority 0 during the delay: Skew_Time after the delay.
    vr.handle(advert(0), 5.0)
    assert vr.next_deadline() == pytest.approx(10 + 156 / 256)
    fire(vr)
    assert vr.state is State.MASTER
    # After the delay, timers are normal again.
    vr.handle(advert(150), 20.0)
    assert vr.state is State.BACKUP
    assert vr.next_deadline() == pytest.approx(20 + 3.609375)


def test_startup_delay_holds_the_address_owner() -> None:
    vr = VirtualRouter(cfg(priority=255, initial_master=True, startup_delay=2.5))
    actions = vr.handle(Started(ME), 1.0)
    assert StateChanged(State.INIT, State.BACKUP, "startup") in actions
    assert AddVips() not in actions
    assert vr.next_deadline() == pytest.approx(3.5)
    now, _ = fire(vr)
    assert now == pytest.approx(3.5)
    assert vr.state is State.MASTER


def test_no_startup_delay_owner_is_master_at_once() -> None:
    vr = VirtualRouter(cfg(priority=255, initial_master=True))
    vr.handle(Started(ME), 1.0)
    assert vr.state is State.MASTER


def test_interface_down_faults_unless_dont_track_primary() -> None:
    vr = master()
    actions = vr.handle(LinkChanged(False, ME), 2.0)
    assert vr.state is State.FAULT
    assert actions[:2] == [SendAdvert(0), SendAdvert(0)]
    quiet = master(dont_track_primary=True)
    assert quiet.handle(LinkChanged(False, ME), 2.0) == []
    assert quiet.state is State.MASTER
    assert quiet.fault_reasons() == ()
    # A vanished interface is still a fault (keepalived cleanup_lost_interface()).
    quiet.handle(LinkChanged(False, None, present=False), 3.0)
    assert quiet.state is State.FAULT


def test_dont_track_primary_starts_with_the_link_down() -> None:
    vr = VirtualRouter(cfg(dont_track_primary=True))
    vr.handle(Started(ME, link_up=False), 0.0)
    assert vr.state is State.BACKUP


def test_weight_zero_interface_tracker_faults_and_recovers() -> None:
    spec = TrackerSpec("interface:eth1")
    vr = VirtualRouter(cfg(trackers=(spec,)))
    vr.handle(TrackerChanged("interface:eth1", True), 0.0)  # initial state, before Started
    vr.handle(Started(ME), 0.0)
    fire(vr)
    assert vr.state is State.MASTER
    actions = vr.handle(TrackerChanged("interface:eth1", False), 5.0)
    assert vr.state is State.FAULT
    assert actions[:2] == [SendAdvert(0), SendAdvert(0)]
    assert vr.fault_reasons() == ("tracker interface:eth1 failed",)
    vr.handle(TrackerChanged("interface:eth1", True), 6.0)
    assert vr.state is State.BACKUP
    assert vr.next_deadline() == pytest.approx(6 + 3.609375)


def test_interface_tracker_down_at_start_is_fault() -> None:
    vr = VirtualRouter(cfg(trackers=(TrackerSpec("interface:eth1"),)))
    vr.handle(TrackerChanged("interface:eth1", False), 0.0)
    vr.handle(Started(ME), 0.0)
    assert vr.state is State.FAULT
    vr.handle(TrackerChanged("interface:eth1", True), 1.0)
    assert vr.state is State.BACKUP


@pytest.mark.parametrize(
    ("weight", "reverse", "up", "down"),
    # keepalived.md 2.2, the same table for interfaces (process_if_status_change())
    [(-20, False, 100, 80), (20, False, 120, 100), (20, True, 80, 100), (-20, True, 100, 120)],
)
def test_weighted_interface_tracker(weight: int, reverse: bool, up: int, down: int) -> None:
    vr = VirtualRouter(cfg(trackers=(TrackerSpec("interface:eth1", weight, reverse),)))
    vr.handle(TrackerChanged("interface:eth1", True), 0.0)
    vr.handle(Started(ME), 0.0)
    assert vr.effective_priority == up
    vr.handle(TrackerChanged("interface:eth1", False), 1.0)
    assert vr.effective_priority == down
    assert vr.state is State.BACKUP


def test_weighted_interface_tracker_lets_backup_preempt() -> None:
    # The netns scenario in numbers: master 100 with weight -20 drops to 80,
    # the backup (90) discards its adverts and takes over at its own timer.
    m = VirtualRouter(cfg(trackers=(TrackerSpec("interface:eth1", -20),)))
    m.handle(TrackerChanged("interface:eth1", True), 0.0)
    m.handle(Started(ME), 0.0)
    fire(m)
    m.handle(TrackerChanged("interface:eth1", False), 5.0)
    assert m.state is State.MASTER and m.effective_priority == 80
    b = started(cfg(priority=90), now=0.0)
    b.handle(advert(100), 4.0)
    b.handle(advert(80), 6.0)  # lower: discarded, timer keeps running from 4.0
    assert b.next_deadline() == pytest.approx(4.0 + 3 + 166 / 256)
    now, _ = fire(b)
    assert b.state is State.MASTER
    # The old master hears 90 > 80 and steps down.
    m.handle(advert(90), now)
    assert m.state is State.BACKUP
