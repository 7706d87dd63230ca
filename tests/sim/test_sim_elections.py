"""Multi-router elections on the in-memory LAN (tests/sim/lan.py)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvrrpd.core.router import RouterConfig
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import TrackerSpec
from tests.sim.lan import Lan

VIP = IPv4Address("192.0.2.10")


def guide_pair(lan: Lan) -> None:
    """The guide's section 5.3/5.4 pair: both BACKUP, nopreempt, PASS 1111, weight-0 check."""
    for name, ip, prio in (("lb1", "192.0.2.11", 100), ("lb2", "192.0.2.12", 90)):
        lan.add(
            name,
            ip,
            RouterConfig(
                name="VI_1",
                vrid=51,
                priority=prio,
                vips=(VIP,),
                preempt=False,
                auth_type=1,
                auth_data=b"1111",
                trackers=(TrackerSpec("check_haproxy", 0),),
            ),
        )


def test_guide_walkthrough_in_simulation() -> None:
    lan = Lan()
    guide_pair(lan)
    for n in ("lb1", "lb2"):
        lan.start(n)
        lan.tracker(n, "check_haproxy", True)
    lan.run_for(5.0)
    assert lan.vip_holders() == ["lb1"]  # 6.1: priority 100 wins
    # 6.2: HAProxy dies on lb1; its check kills keepalived (SIGTERM: priority 0).
    t0 = lan.now
    lan.stop("lb1")
    lan.run_for(0.7)
    assert lan.vip_holders() == ["lb2"]
    took = [t for t, old, new in lan.transitions("lb2") if new is State.MASTER][-1] - t0
    assert took == pytest.approx((256 - 90) / 256, abs=0.01)  # Skew_Time of priority 90
    # 6.3: lb1 comes back: nopreempt keeps the VIP on lb2.
    lan.start("lb1")
    lan.tracker("lb1", "check_haproxy", True)
    lan.run_for(10.0)
    assert lan.vip_holders() == ["lb2"]
    # 6.4: HAProxy dies on lb2: the VIP goes back to lb1.
    lan.stop("lb2")
    lan.run_for(1.0)
    assert lan.vip_holders() == ["lb1"]


def test_crash_of_master_fails_over_within_master_down_interval() -> None:
    lan = Lan()
    guide_pair(lan)
    for n in ("lb1", "lb2"):
        lan.start(n)
        lan.tracker(n, "check_haproxy", True)
    lan.run_for(5.0)
    t0 = lan.now
    lan.crash("lb1")
    lan.run_for(5.0)
    became = [t for t, _, new in lan.transitions("lb2") if new is State.MASTER][-1] - t0
    mdi = 3 + (256 - 90) / 256
    assert mdi - 1.0 < became <= mdi + 0.01


def test_higher_priority_preempts_after_master_down_interval() -> None:
    lan = Lan()
    for name, ip, prio in (("a", "192.0.2.1", 100), ("b", "192.0.2.2", 150)):
        lan.add(name, ip, RouterConfig(name="VI", vrid=7, priority=prio, vips=(VIP,)))
    lan.start("a")
    lan.run_for(5.0)
    assert lan.masters() == ["a"]
    t0 = lan.now
    lan.start("b")
    lan.run_for(5.0)
    assert lan.masters() == ["b"]
    became = [t for t, _, new in lan.transitions("b") if new is State.MASTER][-1] - t0
    assert became == pytest.approx(3 + (256 - 150) / 256, abs=0.01)


def test_weighted_tracker_failure_moves_master_after_master_down_interval() -> None:
    lan = Lan()
    for name, ip, prio in (("a", "192.0.2.1", 100), ("b", "192.0.2.2", 90)):
        lan.add(
            name,
            ip,
            RouterConfig(
                name="VI", vrid=7, priority=prio, vips=(VIP,), trackers=(TrackerSpec("t", -20),)
            ),
        )
        lan.start(name)
        lan.tracker(name, "t", True)
    lan.run_for(5.0)
    assert lan.masters() == ["a"]
    lan.tracker("a", "t", False)  # 100 - 20 = 80 < 90
    lan.run_for(5.0)
    assert lan.masters() == ["b"]


ROUTERS = [("r1", "192.0.2.1", 100), ("r2", "192.0.2.2", 150), ("r3", "192.0.2.3", 150)]

step = st.tuples(
    st.sampled_from(["crash", "stop", "start", "fail", "heal"]),
    st.sampled_from([r[0] for r in ROUTERS]),
    st.floats(0.0, 3.0),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=12), st.floats(0.0, 0.2), st.integers(0, 1000))
def test_one_master_with_highest_priority_once_quiet(
    steps: list[tuple[str, str, float]], loss: float, seed: int
) -> None:
    """After any failures and recoveries, one quiet master-down interval later there is
    exactly one MASTER and it has the highest effective priority. (Among equal
    priorities RFC 3768 6.4.2 lets a running master stay: a backup only preempts
    on strictly higher priority, so the higher address wins only contested elections.)"""
    lan = Lan(loss=loss, seed=seed)
    for name, ip, prio in ROUTERS:
        lan.add(
            name,
            ip,
            RouterConfig(
                name="VI", vrid=9, priority=prio, vips=(VIP,), trackers=(TrackerSpec("t", -60),)
            ),
        )
        lan.start(name)
    for op, name, dt in steps:
        alive = lan.nodes[name].alive
        if op == "crash" and alive:
            lan.crash(name)
        elif op == "stop" and alive:
            lan.stop(name)
        elif op == "start" and not alive:
            lan.start(name)
        elif op in ("fail", "heal") and alive:
            lan.tracker(name, "t", op == "heal")
        lan.run_for(dt)
    if not any(n.alive for n in lan.nodes.values()):
        lan.start("r1")
    # Quiet and loss-free from here on.
    lan.loss = 0.0
    lan.run_for(2 * (3 + 1) + 1)
    masters = lan.masters()
    assert len(masters) == 1
    best = max(n.router.effective_priority for n in lan.nodes.values() if n.alive)
    assert lan.nodes[masters[0]].router.effective_priority == best


def test_simultaneous_start_equal_priority_won_by_higher_address() -> None:
    lan = Lan()
    for name, ip in (("low", "192.0.2.1"), ("high", "192.0.2.2")):
        lan.add(name, ip, RouterConfig(name="VI", vrid=3, priority=100, vips=(VIP,)))
        lan.start(name)
    lan.run_for(10.0)
    assert lan.masters() == ["high"]
    assert lan.vip_holders() == ["high"]
