"""Timeline scripts for one VirtualRouter: RFC 3768 section 6 with keepalived semantics."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pyvrrpd.core.actions import (
    AddVips,
    Dropped,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    SendGarp,
    StateChanged,
    Warned,
)
from pyvrrpd.core.events import (
    LinkChanged,
    PacketReceived,
    ShutdownRequested,
    Started,
    TimerFired,
    TrackerChanged,
)
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert

ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
LOWER_PEER = IPv4Address("192.0.2.5")
VIP = IPv4Address("192.0.2.10")


def cfg(**kw: object) -> RouterConfig:
    base: dict[str, object] = {
        "name": "VI_1",
        "vrid": 51,
        "priority": 100,
        "vips": (VIP,),
        "auth_type": int(AuthType.PASS),
        "auth_data": b"1111\0\0\0\0",
    }
    base.update(kw)
    return RouterConfig(**base)  # type: ignore[arg-type]


def advert(prio: int, src: IPv4Address = PEER, **kw: object) -> PacketReceived:
    payload = encode_advert(
        int(kw.get("vrid", 51)),  # type: ignore[call-overload]
        prio,
        kw.get("vips", (VIP,)),  # type: ignore[arg-type]
        int(kw.get("advert_int", 1)),  # type: ignore[call-overload]
        int(kw.get("auth_type", AuthType.PASS)),  # type: ignore[call-overload]
        kw.get("auth", b"1111"),  # type: ignore[arg-type]
    )
    return PacketReceived(build_ipv4(src, VRRP_GROUP, payload, ttl=int(kw.get("ttl", 255))))  # type: ignore[call-overload]


def started(config: RouterConfig, now: float = 0.0) -> VirtualRouter:
    vr = VirtualRouter(config)
    vr.handle(Started(ME), now)
    return vr


def fire(vr: VirtualRouter) -> tuple[float, list[object]]:
    now = vr.next_deadline()
    assert now is not None
    return now, list(vr.handle(TimerFired(), now))


def test_backup_becomes_master_after_master_down_interval() -> None:
    vr = VirtualRouter(cfg())
    actions = vr.handle(Started(ME), 0.0)
    assert actions == [RemoveVips(), StateChanged(State.INIT, State.BACKUP, "startup")]
    # RFC 3768 6.1: 3 * 1 + (256 - 100) / 256 = 3.609375
    assert vr.next_deadline() == pytest.approx(3.609375)
    now, actions = fire(vr)
    assert actions[:4] == [
        SendAdvert(100),
        StateChanged(State.BACKUP, State.MASTER, "master_down_timer"),
        AddVips(),
        SendGarp(5),
    ]
    assert vr.state is State.MASTER
    # Adverts every advert_int.
    assert vr.next_deadline() == pytest.approx(now + 1.0)
    _, actions = fire(vr)
    assert actions == [SendAdvert(100)]


def test_second_garp_burst_after_garp_master_delay() -> None:
    vr = started(cfg())
    t0, _ = fire(vr)
    sent = []
    while (d := vr.next_deadline()) is not None and d <= t0 + 5.0:
        sent += vr.handle(TimerFired(), d)
    assert SendGarp(5) in sent
    assert sent.count(SendAdvert(100)) == 5


def test_backup_resets_timer_on_higher_priority_advert() -> None:
    vr = started(cfg(priority=90))
    vr.handle(advert(100), 2.0)
    assert vr.next_deadline() == pytest.approx(2.0 + 3 + (256 - 90) / 256)
    assert vr.status().master == PEER


def test_priority_zero_makes_backup_take_over_after_skew_time() -> None:
    vr = started(cfg(priority=90))
    vr.handle(advert(100), 1.0)
    vr.handle(advert(0), 1.5)
    # RFC 3768 6.4.2: Master_Down_Timer = Skew_Time = (256 - 90) / 256 = 0.6484375
    assert vr.next_deadline() == pytest.approx(1.5 + 0.6484375)
    assert vr.stats["pri_zero_rcvd"] == 1


def test_preempting_backup_ignores_lower_priority_and_takes_over() -> None:
    vr = started(cfg(priority=150))
    vr.handle(advert(100), 1.0)
    # Lower priority adverts are discarded: the timer keeps running from start.
    assert vr.next_deadline() == pytest.approx(3 + (256 - 150) / 256)
    assert vr.status().master is None


def test_nopreempt_backup_accepts_lower_priority_master() -> None:
    vr = started(cfg(priority=150, preempt=False))
    vr.handle(advert(100), 1.0)
    assert vr.next_deadline() == pytest.approx(1.0 + 3 + (256 - 150) / 256)
    assert vr.status().master == PEER


def test_preempt_delay_accepts_lower_priority_until_it_expires() -> None:
    vr = started(cfg(priority=150, preempt_delay=10.0))
    for t in range(1, 10):
        vr.handle(advert(100), float(t))
    assert vr.state is State.BACKUP
    assert vr.next_deadline() == pytest.approx(9.0 + 3.4140625)
    vr.handle(advert(100), 11.0)  # delay over: discarded, the timer runs out
    assert vr.next_deadline() == pytest.approx(9.0 + 3.4140625)


def test_master_steps_down_for_higher_priority_without_priority_zero() -> None:
    vr = started(cfg())
    fire(vr)
    actions = vr.handle(advert(200), 10.0)
    assert actions[0] == RemoveVips()
    assert (
        StateChanged(State.MASTER, State.BACKUP, f"higher priority advert from {PEER}") in actions
    )
    assert SendAdvert(0) not in actions
    assert vr.stats["release_master"] == 1


def test_equal_priority_won_by_higher_primary_ip() -> None:
    vr = started(cfg())
    fire(vr)
    # Lower address, same priority: we stay master and re-assert.
    actions = vr.handle(advert(100, src=LOWER_PEER), 10.0)
    assert vr.state is State.MASTER
    assert SendAdvert(100) in actions
    # Higher address, same priority: we yield.
    vr.handle(advert(100, src=PEER), 11.0)
    assert vr.state is State.BACKUP


def test_master_answers_priority_zero_with_an_advert() -> None:
    vr = started(cfg(garp_master_delay=0.0))
    fire(vr)
    actions = vr.handle(advert(0), 10.0)
    assert actions == [SendAdvert(100)]
    assert vr.next_deadline() == pytest.approx(11.0)


def test_shutdown_from_master_sends_priority_zero_and_removes_vips() -> None:
    vr = started(cfg())
    fire(vr)
    actions = vr.handle(ShutdownRequested(), 20.0)
    assert actions[:2] == [SendAdvert(0), RemoveVips()]
    assert vr.state is State.INIT
    assert vr.next_deadline() is None
    assert vr.stats["pri_zero_sent"] == 1


def test_owner_with_state_master_starts_as_master() -> None:
    vr = VirtualRouter(cfg(priority=255, initial_master=True))
    actions = vr.handle(Started(ME), 0.0)
    assert vr.state is State.MASTER
    assert SendAdvert(255) in actions


def test_non_owner_state_master_waits_like_a_backup() -> None:
    vr = started(cfg(priority=150, initial_master=True))
    assert vr.state is State.BACKUP


def test_weight_zero_tracker_holds_init_until_first_result() -> None:
    vr = VirtualRouter(cfg(trackers=(TrackerSpec("chk", 0),)))
    assert vr.handle(Started(ME), 0.0) == [RemoveVips()]
    assert vr.state is State.INIT
    vr.handle(TrackerChanged("chk", True), 0.1)
    assert vr.state is State.BACKUP


def test_weight_zero_tracker_failure_from_master_is_fault_with_priority_zero() -> None:
    vr = VirtualRouter(cfg(trackers=(TrackerSpec("chk", 0),)))
    vr.handle(Started(ME), 0.0)
    vr.handle(TrackerChanged("chk", True), 0.0)
    fire(vr)
    actions = vr.handle(TrackerChanged("chk", False), 10.0)
    assert actions[:4] == [
        SendAdvert(0),  # twice, as keepalived (see test_core_edge_cases.py)
        SendAdvert(0),
        RemoveVips(),
        StateChanged(State.MASTER, State.FAULT, "tracker chk failed"),
    ]
    assert vr.next_deadline() is None
    # FAULT ignores adverts; recovery goes to BACKUP with a full timer.
    assert vr.handle(advert(100), 11.0) == []
    actions = vr.handle(TrackerChanged("chk", True), 12.0)
    assert actions == [StateChanged(State.FAULT, State.BACKUP, "tracker chk succeeded")]
    assert vr.next_deadline() == pytest.approx(12.0 + 3.609375)


@pytest.mark.parametrize(
    ("weight", "reverse", "ok", "expected"),
    [
        (20, False, True, 120),
        (20, False, False, 100),
        (-20, False, True, 100),
        (-20, False, False, 80),
        (20, True, True, 80),
        (20, True, False, 100),
        (-20, True, True, 100),
        (-20, True, False, 120),
    ],
)
def test_weight_table(weight: int, reverse: bool, ok: bool, expected: int) -> None:
    vr = started(cfg(trackers=(TrackerSpec("chk", weight, reverse),)))
    vr.handle(TrackerChanged("chk", ok), 1.0)
    assert vr.effective_priority == expected


def test_effective_priority_clamped_and_owner_never_adjusted() -> None:
    vr = started(cfg(priority=250, trackers=(TrackerSpec("a", 20),)))
    actions = vr.handle(TrackerChanged("a", True), 1.0)
    assert PriorityChanged(250, 254) in actions
    vr2 = started(cfg(priority=10, trackers=(TrackerSpec("a", -50),)))
    vr2.handle(TrackerChanged("a", False), 1.0)
    assert vr2.effective_priority == 1
    owner = started(cfg(priority=255, trackers=(TrackerSpec("a", -50),)))
    owner.handle(TrackerChanged("a", False), 1.0)
    assert owner.effective_priority == 255


def test_backup_timer_shifts_with_skew_when_priority_changes() -> None:
    vr = started(cfg(trackers=(TrackerSpec("a", 50),)))
    before = vr.next_deadline()
    assert before is not None
    vr.handle(TrackerChanged("a", True), 1.0)
    after = vr.next_deadline()
    assert after == pytest.approx(before - 50 / 256)


def test_link_down_is_fault_and_up_is_backup() -> None:
    vr = started(cfg())
    vr.handle(LinkChanged(False, ME), 1.0)
    assert vr.state is State.FAULT
    assert vr.status().fault_reasons == ("interface down",)
    vr.handle(LinkChanged(True, ME), 2.0)
    assert vr.state is State.BACKUP


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"ttl": 64}, "ip_ttl_err"),
        ({"auth": b"wrong"}, "auth_failure"),
        ({"auth_type": 0}, "authtype_mismatch"),
        ({"advert_int": 2}, "advert_interval_err"),
        ({"vrid": 52}, "vrid_mismatch"),
    ],
)
def test_bad_adverts_are_dropped_and_counted_without_state_change(
    kw: dict[str, object], reason: str
) -> None:
    vr = started(cfg(priority=90))
    deadline = vr.next_deadline()
    actions = vr.handle(advert(200, **kw), 1.0)
    assert len(actions) == 1 and isinstance(actions[0], Dropped)
    assert actions[0].reason == reason
    assert vr.stats[reason] == 1
    assert vr.next_deadline() == deadline
    assert vr.stats["advert_rcvd"] == 0


def test_truncated_packet_dropped_as_length_error() -> None:
    vr = started(cfg())
    data = advert(200).datagram
    actions = vr.handle(PacketReceived(data[:-3]), 1.0)
    assert [type(a) for a in actions] == [Dropped]
    assert vr.stats["packet_len_err"] == 1


def test_vip_list_mismatch_accepted_with_warning() -> None:
    vr = started(cfg(priority=90))
    actions = vr.handle(advert(100, vips=(IPv4Address("192.0.2.99"),)), 1.0)
    assert any(isinstance(a, Warned) and a.reason == "addr_list_err" for a in actions)
    assert vr.stats["addr_list_err"] == 1
    assert vr.status().master == PEER


def test_packets_ignored_in_init() -> None:
    vr = VirtualRouter(cfg())
    assert vr.handle(advert(100), 0.0) == []


def test_preempt_delay_applies_again_after_losing_mastership() -> None:
    vr = started(cfg(priority=150, preempt_delay=10.0))
    for t in range(1, 13):
        vr.handle(advert(100), float(t))
    fire(vr)  # delay over, the lower master's adverts were discarded: we take over
    assert vr.state is State.MASTER
    vr.handle(advert(200, src=IPv4Address("192.0.2.3")), 20.0)
    assert vr.state is State.BACKUP
    # The 100 router is master again later; a fresh 10 s delay starts.
    vr.handle(advert(100), 30.0)
    vr.handle(advert(100), 35.0)
    assert vr.next_deadline() == pytest.approx(35.0 + 3.4140625)
    assert vr.status().master == PEER


def test_skip_check_adv_addr_trusts_the_known_master() -> None:
    vr = started(cfg(priority=90, skip_check_adv_addr=True))
    other = (IPv4Address("192.0.2.99"),)
    first = vr.handle(advert(100, vips=other), 1.0)
    assert any(isinstance(a, Warned) for a in first)  # new master: checked
    again = vr.handle(advert(100, vips=other), 2.0)
    assert not any(isinstance(a, Warned) for a in again)  # same master: skipped
    assert vr.stats["addr_list_err"] == 1


def test_vip_removed_externally_is_put_back_only_by_the_master() -> None:
    from pyvrrpd.core.events import VipRemoved

    vr = started(cfg())
    assert vr.handle(VipRemoved(VIP), 1.0) == []  # backup: not ours to hold
    fire(vr)
    actions = vr.handle(VipRemoved(VIP), 10.0)
    assert actions[-1] == AddVips()
    assert any(isinstance(a, Warned) and a.reason == "vip_removed" for a in actions)
    assert vr.state is State.MASTER
