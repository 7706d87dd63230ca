"""The guide's section 6, end to end, in network namespaces (root).

Client -> VIP 192.0.2.10 -> HAProxy on lb1/lb2 -> ecs1..3, with the guide's
keepalived.conf (both BACKUP + nopreempt, priorities 100/90, check script every
2 s). Run with our daemon (``pyvrrpd``) and, as ``interop``, with the real
keepalived (``-k keepalived``), which validates the lab itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyvrrpd.lab.services import DaemonKind, Services
from pyvrrpd.lab.walkthrough import StepResult, format_step, run_walkthrough

pytestmark = pytest.mark.netns

DAEMONS = ["pyvrrpd", pytest.param("keepalived", marks=pytest.mark.interop)]
GUIDE = {1: "lb1", 2: "lb2", 3: "lb2", 4: "lb1"}  # who holds the VIP after each step


@pytest.mark.parametrize("daemon", DAEMONS)
def test_guide_walkthrough(
    lab_services: Callable[[DaemonKind], Services], daemon: DaemonKind
) -> None:
    svc = lab_services(daemon)
    results: list[StepResult] = run_walkthrough(svc, on_step=lambda r: print(format_step(r)))
    assert [r.number for r in results] == [1, 2, 3, 4]
    for r in results:
        where = f"step {r.number} ({r.name}): {format_step(r)}"
        assert len(r.holders) == 1, f"exactly one VIP holder expected; {where}"
        assert r.holders == (GUIDE[r.number],), where
        assert r.client_ok, f"client not answered; {where}"
        assert r.backends, where
    s1, s2, s3, s4 = results
    # 6.2: the check script killed the daemon on lb1; lb2 is master
    assert not s2.daemons["lb1"] and s2.daemons["lb2"], s2.daemons
    # 6.3: lb1 is back (daemon running) but does not preempt: no outage at all
    assert s3.daemons["lb1"] and s3.daemons["lb2"], s3.daemons
    assert s3.vip_after_s == 0.0 and s3.outage_s == 0.0, format_step(s3)
    # 6.3 end: stopping HAProxy on lb2 gives the VIP back to lb1
    assert not s4.daemons["lb2"] and s4.daemons["lb1"], s4.daemons
    assert s1.states["lb1"] == "MASTER" and s4.states["lb1"] == "MASTER"
    print(
        f"[{daemon}] election {s1.vip_after_s:.2f} s; failover lb1->lb2 "
        f"{s2.vip_after_s:.2f} s (outage {s2.outage_s:.2f} s); lb2->lb1 "
        f"{s4.vip_after_s:.2f} s (outage {s4.outage_s:.2f} s)"
    )
