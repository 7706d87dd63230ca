"""pyvrrpd daemons in namespaces: election, status, SIGTERM/SIGKILL hand-over, crash leftovers."""

from __future__ import annotations

import signal
import time

import pytest

from tests.netns._pair import Pair, ip, wait_for

pytestmark = pytest.mark.netns

# RFC 3768 6.1 for the backup at priority 90: Skew_Time 0.648 s, Master_Down_Interval 3.648 s.
SKEW_90 = (256 - 90) / 256
MDI_90 = 3 + SKEW_90


def elect(pair: Pair) -> None:
    pair.start("lb1", 100)
    pair.start("lb2", 90)
    took = wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0)
    assert took is not None, f"holders after 8 s: {pair.holders()}"
    # Stays elected: no second holder shows up.
    assert wait_for(lambda: pair.holders() != ["lb1"], timeout=1.5) is None


def test_election_status_and_sigterm_handover(pair: Pair) -> None:
    elect(pair)
    s1, s2 = pair.status("lb1"), pair.status("lb2")
    assert (s1["state"], s1["priority"], s1["vrid"], s1["interface"]) == ("MASTER", 100, 51, "eth0")
    assert s1["vips"] == ["192.0.2.10/32"]
    assert s2["state"] == "BACKUP"
    assert s2["master"] == {"address": "192.0.2.11", "priority": 100}
    assert s2["stats"]["advert_rcvd"] >= 1  # type: ignore[index]

    t0 = time.monotonic()
    pair.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=3.0)
    print(f"SIGTERM hand-over: backup holds the VIP after {took} s (Skew_Time {SKEW_90:.3f} s)")
    assert took is not None and took < SKEW_90 + 0.6
    assert pair.procs["lb1"].wait(timeout=2.0) == 0
    assert time.monotonic() - t0 < 2.0  # exited within about a second
    assert not pair.has_vip("lb1")
    assert pair.status("lb2")["stats"]["pri_zero_rcvd"] == 1  # type: ignore[index]


def test_sigkill_handover_and_leftover_vip_removed_on_restart(pair: Pair) -> None:
    elect(pair)
    pair.signal("lb1", signal.SIGKILL)
    pair.procs["lb1"].wait(timeout=2)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=6.0)
    print(
        f"SIGKILL hand-over: backup holds the VIP after {took} s "
        f"(Master_Down_Interval {MDI_90:.3f} s)"
    )
    assert took is not None and took < MDI_90 + 0.5
    # The killed daemon could not clean up: its VIP is still there (keepalived too).
    assert pair.has_vip("lb1")
    # On restart the leftover goes at once; then lb1 (100, preempt) takes over again.
    pair.start("lb1", 100)
    assert wait_for(lambda: not pair.has_vip("lb1"), timeout=2.0) is not None
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=6.0) is not None


def test_nopreempt_keeps_the_current_master(pair: Pair) -> None:
    pair.start("lb2", 90, extra="  nopreempt")
    assert wait_for(lambda: pair.holders() == ["lb2"], timeout=6.0) is not None
    pair.start("lb1", 100, extra="  nopreempt")
    assert wait_for(lambda: pair.state("lb1") == "BACKUP", timeout=3.0) is not None
    # Well past a master-down interval, the VIP has not moved.
    assert wait_for(lambda: pair.holders() != ["lb2"], timeout=5.0) is None
    assert pair.status("lb1")["master"] == {"address": "192.0.2.12", "priority": 90}


def test_primary_address_loss_is_fault_and_return_recovers(pair: Pair) -> None:
    excluded = "  virtual_ipaddress_excluded {\n    192.0.2.20/32\n  }"
    pair.start("lb1", 100, extra=excluded)
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=6.0) is not None
    ns = pair.ns("lb1")

    def addrs() -> str:
        return ip("-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").stdout

    assert " 192.0.2.20/32" in addrs()  # excluded VIPs are installed, not advertised
    ip("-n", ns, "addr", "del", "192.0.2.11/24", "dev", "eth0")
    assert wait_for(lambda: pair.state("lb1") == "FAULT", timeout=3.0) is not None
    assert not pair.has_vip("lb1") and " 192.0.2.20/32" not in addrs()
    st = pair.status("lb1")
    assert st["fault_reasons"] == ["no IPv4 address on interface"]
    ip("-n", ns, "addr", "add", "192.0.2.11/24", "dev", "eth0")
    assert wait_for(lambda: pair.state("lb1") == "BACKUP", timeout=3.0) is not None
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=6.0) is not None


def test_vip_deleted_by_hand_on_the_master_comes_back(pair: Pair) -> None:
    pair.start("lb1", 100)
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=6.0) is not None
    ip("-n", pair.ns("lb1"), "addr", "del", "192.0.2.10/32", "dev", "eth0")
    took = wait_for(lambda: pair.has_vip("lb1"), timeout=2.0)
    print(f"VIP re-added {took} s after an external delete")
    assert took is not None
    assert pair.state("lb1") == "MASTER"
