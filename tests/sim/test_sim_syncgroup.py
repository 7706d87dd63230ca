"""vrrp_sync_group on the in-memory network (tests/sim/grouplan.py).

Two boxes, each with one instance on LAN 0 (VIP 192.0.2.10) and one on
LAN 1 (VIP 198.51.100.10) in one sync group; lb1 has priority 100, lb2 90.
What a user sees: which box holds each VIP, and the group's notifies.
"""

from __future__ import annotations

import heapq
from ipaddress import IPv4Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvrrpd.core.actions import SendAdvert, StateChanged
from pyvrrpd.core.router import RouterConfig
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, encode_advert
from tests.sim.grouplan import GroupNet

VIP0 = IPv4Address("192.0.2.10")
VIP1 = IPv4Address("198.51.100.10")
M, B, F = State.MASTER, State.BACKUP, State.FAULT


def members(prio: int, trackers: tuple[TrackerSpec, ...] = ()) -> list[RouterConfig]:
    return [
        RouterConfig(name="VI_0", vrid=51, priority=prio, vips=(VIP0,), trackers=trackers),
        RouterConfig(name="VI_1", vrid=52, priority=prio, vips=(VIP1,), trackers=trackers),
    ]


def pair(trackers: tuple[TrackerSpec, ...] = ()) -> GroupNet:
    net = GroupNet()
    net.add("lb1", ["192.0.2.11", "198.51.100.11"], members(100, trackers))
    net.add("lb2", ["192.0.2.12", "198.51.100.12"], members(90, trackers))
    return net


def elected(net: GroupNet) -> None:
    net.start("lb1")
    net.start("lb2")
    net.run_for(5)
    assert net.holders(0) == net.holders(1) == ["lb1"]
    assert net.states("lb1") == [M, M] and net.states("lb2") == [B, B]


def inject(net: GroupNet, box: str, lan: int, vrid: int, prio: int, src: str) -> None:
    """An advert from a third router on LAN `lan`, delivered to `box` now."""
    vips = (VIP0,) if lan == 0 else (VIP1,)
    data = build_ipv4(IPv4Address(src), VRRP_GROUP, encode_advert(vrid, prio, vips, 1, 0, b""))
    heapq.heappush(net._heap, (net.now, next(net._seq), box, lan, data))
    net.run_for(0.001)


def test_election_moves_both_and_group_notifies() -> None:
    net = pair()
    elected(net)
    assert net.group_states("lb1") == [B, M]
    assert net.group_states("lb2") == [B]


def test_one_link_down_moves_both_vips_then_back() -> None:
    net = pair()
    elected(net)
    t0 = net.now
    net.link("lb1", 1, up=False)
    # The whole group on lb1 is FAULT at once; VI_0 resigns with priority 0.
    assert net.states("lb1") == [F, F]
    assert net.holders(0) == net.holders(1) == []
    zero = [a for t, n, a in net.boxes["lb1"].log if t == t0 and a == SendAdvert(0)]
    assert zero, "the MASTER held in FAULT by its group must resign with priority 0"
    # lb2's VI_1 hears nothing (the link is down): it takes over after its
    # Master_Down_Interval; VI_0 (priority 0 seen) waits for it, then both go.
    net.run_for(3.7)
    assert net.holders(0) == net.holders(1) == ["lb2"]
    assert net.group_states("lb1")[-1] is F and net.group_states("lb2")[-1] is M
    first = min(t for t, n, a in net.boxes["lb2"].log if isinstance(a, StateChanged) and a.new is M)
    assert first - t0 < 3.0 * 1 + (256 - 90) / 256 + 0.01
    # Recovery: lb1 (priority 100, preempt) takes both back.
    net.link("lb1", 1, up=True)
    assert net.states("lb1") == [B, B]
    net.run_for(5)
    assert net.holders(0) == net.holders(1) == ["lb1"]
    assert net.states("lb2") == [B, B]


def test_sigterm_of_master_moves_both_within_skew() -> None:
    net = pair()
    elected(net)
    t0 = net.now
    net.stop("lb1")
    assert net.group_states("lb1")[-1] is None  # STOP
    net.run_for(1.0)
    assert net.holders(0) == net.holders(1) == ["lb2"]
    took = [t for t, n, a in net.boxes["lb2"].log if isinstance(a, StateChanged) and a.new is M]
    assert max(took) - t0 < (256 - 90) / 256 + 0.01


def test_higher_priority_advert_on_one_member_takes_group_to_backup() -> None:
    net = pair()
    elected(net)
    inject(net, "lb1", 0, 51, 200, "192.0.2.99")
    assert net.states("lb1") == [B, B]
    assert net.holders(0) == net.holders(1) == []
    # VI_1 stepped down without a priority-0 advert (keepalived's advF false).
    last = [a for t, n, a in net.boxes["lb1"].log if n == "VI_1" and t == net.now - 0.001]
    assert SendAdvert(0) not in last
    assert net.group_states("lb1")[-1] is B


def test_member_wanting_master_is_held_while_the_other_follows_a_master() -> None:
    net = GroupNet()
    net.add("lb2", ["192.0.2.12", "198.51.100.12"], members(90))
    net.start("lb2")
    # A stronger master on LAN 0 only: VI_0 follows it, VI_1 hears nobody.
    for _ in range(8):
        inject(net, "lb2", 0, 51, 200, "192.0.2.99")
        net.run_for(0.999)
    assert net.states("lb2") == [B, B]
    assert net.boxes["lb2"].routers["VI_1"].wants_master
    assert net.holders(1) == []
    # The stranger goes away: VI_0 times out too, and both become MASTER together.
    net.run_for(4)
    assert net.states("lb2") == [M, M]
    assert net.holders(0) == net.holders(1) == ["lb2"]


def test_a_failing_weight0_tracker_on_one_member_faults_the_group() -> None:
    net = pair(trackers=(TrackerSpec("chk", 0),))
    for box in ("lb1", "lb2"):
        for member in ("VI_0", "VI_1"):
            net.tracker(box, member, "chk", True)
    elected(net)
    net.tracker("lb1", "VI_0", "chk", False)
    assert net.states("lb1") == [F, F]
    net.run_for(4)
    assert net.holders(0) == net.holders(1) == ["lb2"]
    # The other member's own health is fine, but it stays FAULT with the group.
    net.run_for(5)
    assert net.states("lb1") == [F, F]
    net.tracker("lb1", "VI_0", "chk", True)
    net.run_for(5)
    assert net.holders(0) == net.holders(1) == ["lb1"]


def test_group_fault_at_startup_and_both_links_down() -> None:
    net = pair()
    net.boxes["lb1"].link_up[0] = False
    elected_lb2 = net
    elected_lb2.start("lb1")
    elected_lb2.start("lb2")
    net.run_for(5)
    assert net.states("lb1") == [F, F]
    assert net.group_states("lb1") == [F]
    assert net.holders(0) == net.holders(1) == ["lb2"]
    # A second member failing and the first recovering: still FAULT.
    net.link("lb1", 1, up=False)
    net.link("lb1", 0, up=True)
    assert net.states("lb1") == [F, F]
    net.link("lb1", 1, up=True)
    assert net.states("lb1") == [B, B]
    assert net.group_states("lb1") == [F, B]


step = st.tuples(
    st.sampled_from(["down", "up", "stop", "start"]),
    st.sampled_from(["lb1", "lb2"]),
    st.integers(0, 1),
    st.floats(0.0, 3.0),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=10))
def test_property_members_stay_together(steps: list[tuple[str, str, int, float]]) -> None:
    """After any links failing and healing and boxes stopping and starting, once
    quiet: no VIP on two boxes, a box holds both VIPs or none, and when a box is
    running with both links up, one box holds both."""
    net = pair()
    net.start("lb1")
    net.start("lb2")
    net.run_for(5)
    for what, box, lan, dt in steps:
        b = net.boxes[box]
        if what in ("down", "up"):
            if b.alive:
                net.link(box, lan, up=what == "up")
            else:
                b.link_up[lan] = what == "up"
        elif what == "stop" and b.alive:
            net.stop(box)
        elif what == "start" and not b.alive:
            net.restart(box)
        net.run_for(dt)
    net.run_for(10)
    for lan in (0, 1):
        assert len(net.holders(lan)) <= 1
    for b in net.boxes.values():
        assert len(b.vips) in (0, 2), (b.name, b.vips)
    healthy = [b for b in net.boxes.values() if b.alive and all(b.link_up)]
    if healthy:
        assert net.holders(0) == net.holders(1) != []
