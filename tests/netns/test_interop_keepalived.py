"""pyvrrpd and the real keepalived (Debian 12's 2.2.7) in one VRRP group.

The adverts are the same bytes (tests/unit/test_wire_vrrp.py has the golden
one): each accepts the other's adverts without a drop, and a priority-0
resignation hands over within the backup's Skew_Time either way.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.netns._pair import Pair, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.interop]

SKEW_90 = (256 - 90) / 256


@pytest.fixture(autouse=True)
def _need_keepalived() -> None:
    if not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed (apt-get install keepalived)")


def test_keepalived_master_pyvrrpd_backup(pair: Pair) -> None:
    pair.start_keepalived("lb1", 100)
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    pair.start("lb2", 90)
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=5.0) is not None
    # Several master-down intervals: pyvrrpd follows keepalived, no drops.
    assert wait_for(lambda: pair.holders() != ["lb1"], timeout=5.0) is None
    st = pair.status("lb2")
    stats = st["stats"]
    assert isinstance(stats, dict)
    assert st["master"] == {"address": "192.0.2.11", "priority": 100}
    assert stats["advert_rcvd"] >= 4
    drops = {k: v for k, v in stats.items() if k.endswith(("_err", "_mismatch", "failure")) and v}
    assert drops == {}
    # keepalived stopping sends priority 0: pyvrrpd takes over after Skew_Time.
    t0 = time.monotonic()
    pair.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=3.0)
    print(f"keepalived SIGTERM -> pyvrrpd holds the VIP after {took} s (skew {SKEW_90:.3f})")
    assert took is not None and took < SKEW_90 + 0.6
    assert wait_for(lambda: not pair.has_vip("lb1"), timeout=3.0) is not None
    assert time.monotonic() - t0 < 5


def test_pyvrrpd_master_keepalived_backup(pair: Pair) -> None:
    pair.start("lb1", 100)
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    pair.start_keepalived("lb2", 90)
    # keepalived accepts our adverts: it never claims the VIP.
    assert wait_for(lambda: pair.holders() != ["lb1"], timeout=6.0) is None
    assert "received an invalid passwd" not in pair.log("lb2")
    t0 = time.monotonic()
    pair.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=3.0)
    print(f"pyvrrpd SIGTERM -> keepalived holds the VIP after {took} s")
    assert took is not None and took < SKEW_90 + 0.6
    assert time.monotonic() - t0 < 5
