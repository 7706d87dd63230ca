"""Sync-group handovers that must not leave a VIP on no box (tests/sim/grouplan.py).

Two boxes, one member per LAN (VI_0 on 192.0.2.0/24, VI_1 on
198.51.100.0/24) in one sync group. What a user sees: which box holds each
VIP, and for how long neither does.
"""

from __future__ import annotations

import heapq
import random
from ipaddress import IPv4Address

import pytest

from pyvrrpd.core.actions import SendAdvert
from pyvrrpd.core.events import LinkChanged
from pyvrrpd.core.router import RouterConfig
from pyvrrpd.core.timers import master_down_interval, skew_time
from tests.sim.grouplan import Box, GroupNet
from tests.sim.lan import advert

VIP0 = IPv4Address("192.0.2.10")
VIP1 = IPv4Address("198.51.100.10")


def members(p0: int, p1: int) -> list[RouterConfig]:
    return [
        RouterConfig(name="VI_0", vrid=51, priority=p0, vips=(VIP0,)),
        RouterConfig(name="VI_1", vrid=52, priority=p1, vips=(VIP1,)),
    ]


def both(net: GroupNet) -> tuple[list[str], list[str]]:
    return net.holders(0), net.holders(1)


def run_until_held(
    net: GroupNet, limit: float, box: str | None = None, step: float = 0.01
) -> float:
    """Run until one box (`box`, if given) holds both VIPs; return how long that took."""
    t0 = net.now
    while net.now - t0 < limit:
        net.run_for(step)
        h0, h1 = both(net)
        if len(h0) == 1 and h0 == h1 and box in (None, h0[0]):
            return net.now - t0
    raise AssertionError(f"no box holds both VIPs after {limit} s: {both(net)}")


def test_member_resigning_takes_the_group_over_within_skew_time() -> None:
    """lb1's VI_1 interface is re-created: it resigns with priority 0, and the
    group demotion of VI_0 must resign too, so lb2 takes both VIPs within
    Skew_Time (keepalived_netlink.c set_vrrp_backup() sends priority 0 for
    every member), not after VI_1's partner's full Master_Down_Interval."""
    net = GroupNet()
    net.add("lb1", ["192.0.2.11", "198.51.100.11"], members(100, 100))
    lb2 = net.add("lb2", ["192.0.2.12", "198.51.100.12"], members(90, 90))
    net.start("lb1")
    net.start("lb2")
    net.run_for(5)
    assert both(net) == (["lb1"], ["lb1"])
    lb1 = net.boxes["lb1"]
    t0 = net.now
    net._feed(lb1, "VI_1", LinkChanged(True, lb1.ips[1], present=True, reset=True))
    zeros = {n for t, n, a in lb1.log if t == t0 and a == SendAdvert(0)}
    assert zeros == {"VI_0", "VI_1"}, "every member leaving MASTER must send priority 0"
    took = run_until_held(net, limit=5.0)
    assert both(net) == (["lb2"], ["lb2"])
    assert took <= skew_time(90, 1.0) + 0.05, f"{took:.2f} s without a VIP holder"
    assert lb2.group.state.name == "MASTER"


def test_group_demoted_by_a_higher_advert_does_not_resign() -> None:
    """A preempting peer (higher priority) takes the group: the members that
    only follow their group step down quietly (keepalived vrrp_sync_backup())."""
    net = GroupNet()
    net.add("lb1", ["192.0.2.11", "198.51.100.11"], members(90, 90))
    net.start("lb1")
    net.run_for(5)
    assert both(net) == (["lb1"], ["lb1"])
    net.add("lb2", ["192.0.2.12", "198.51.100.12"], members(100, 100))
    t0 = net.now
    net.start("lb2")
    run_until_held(net, limit=10.0, box="lb2")
    net.run_for(1)
    assert both(net) == (["lb2"], ["lb2"])
    assert not [a for t, n, a in net.boxes["lb1"].log if t >= t0 and a == SendAdvert(0)]


def _jittered(net: GroupNet, rng: random.Random) -> None:
    """Deliver each advert after 0.1-2 ms instead of a fixed latency."""

    def broadcast(src: Box, lan: int, cfg: RouterConfig, priority: int) -> None:
        datagram = advert(src.ips[lan], cfg, priority)
        for dst in net.boxes.values():
            if dst is not src and dst.link_up[lan]:
                when = net.now + rng.uniform(0.0001, 0.002)
                heapq.heappush(net._heap, (when, next(net._seq), dst.name, lan, datagram))

    net._broadcast = broadcast  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("ips1", "ips2", "jitter_seed"),
    [
        (("192.0.2.11", "198.51.100.11"), ("192.0.2.12", "198.51.100.12"), None),
        (("192.0.2.11", "198.51.100.11"), ("192.0.2.12", "198.51.100.12"), 1),
        (("192.0.2.11", "198.51.100.11"), ("192.0.2.12", "198.51.100.12"), 4),
        (("192.0.2.2", "198.51.100.2"), ("192.0.2.3", "198.51.100.3"), None),
        (("192.0.2.200", "198.51.100.7"), ("192.0.2.201", "198.51.100.9"), 2),
    ],
)
def test_crossed_priorities_started_together_converge(
    ips1: tuple[str, str], ips2: tuple[str, str], jitter_seed: int | None
) -> None:
    """lb1 prefers VI_0, lb2 VI_1, both start at the same instant: both groups
    promote, the crossing adverts demote both; the re-armed timers must not
    stay in step (which left no VIP anywhere for minutes) but converge on one
    box holding both VIPs within a few Master_Down_Intervals, and stay."""
    net = GroupNet()
    net.add("lb1", list(ips1), members(100, 90))
    net.add("lb2", list(ips2), members(90, 100))
    if jitter_seed is not None:
        _jittered(net, random.Random(jitter_seed))
    net.start("lb1")
    net.start("lb2")
    limit = 3 * master_down_interval(90, 1.0)
    while True:
        run_until_held(net, limit=limit - net.now)
        holder = both(net)
        net.run_for(1.5)  # a blip (both groups promoted, crossing adverts) does not count
        if both(net) == holder:
            break
    for _ in range(600):  # a minute more: the holder keeps both VIPs
        net.run_for(0.1)
        assert both(net) == holder
