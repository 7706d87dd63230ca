"""`auth_type AH`: pyvrrpd and the real keepalived 2.2.7 in one AH-protected group.

Each accepts the other's AH adverts (HMAC-MD5-96 over IP header, AH header and
VRRP message; pyvrrpd/wire/ah.py), exactly one holds the VIP, a priority-0
resignation hands over within the backup's Skew_Time either way, a restarted
keepalived (sequence counter back at 0) takes the VIP back, and adverts under
a wrong key are dropped and counted as auth_failure.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.netns._pair import VIP, Pair, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.interop]

SKEW_90 = (256 - 90) / 256
SLACK = 0.6  # process scheduling and the netlink round trip, on a busy 2-core box

AH_CONF = """\
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  authentication {{
    auth_type AH
    auth_pass {key}
  }}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""


UNICAST = """\
  unicast_src_ip {src}
  unicast_ttl 64
  unicast_peer {{
    {peer}
  }}
"""


def conf(prio: int, key: str = "s3cret", unicast: tuple[str, str] | None = None) -> str:
    text = AH_CONF.format(prio=prio, key=key, vip=VIP)
    if unicast is not None:
        extra = UNICAST.format(src=unicast[0], peer=unicast[1])
        text = text.replace("  advert_int 1\n", "  advert_int 1\n" + extra)
    return text


@pytest.fixture(autouse=True)
def _need_keepalived() -> None:
    if not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed (apt-get install keepalived)")


def _stats(pair: Pair, host: str) -> dict[str, int]:
    stats = pair.status(host)["stats"]
    assert isinstance(stats, dict)
    return stats


def _drops(stats: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in stats.items() if k.endswith(("_err", "_mismatch", "failure")) and v}


def test_keepalived_master_pyvrrpd_backup_ah(pair: Pair) -> None:
    pair.start_keepalived("lb1", 100, conf_text=conf(100))
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    pair.start("lb2", 90, conf_text=conf(90))
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=5.0) is not None
    # Several advert intervals: pyvrrpd follows keepalived's AH adverts, no drops.
    assert wait_for(lambda: _stats(pair, "lb2")["advert_rcvd"] >= 3, timeout=5.0) is not None
    assert pair.holders() == ["lb1"]
    st = pair.status("lb2")
    assert st["master"] == {"address": "192.0.2.11", "priority": 100}
    assert _drops(_stats(pair, "lb2")) == {}
    # keepalived's priority-0 advert: pyvrrpd takes over after Skew_Time.
    pair.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=3.0)
    print(f"keepalived SIGTERM -> pyvrrpd holds the VIP after {took} s (skew {SKEW_90:.3f})")
    assert took is not None and took < SKEW_90 + SLACK
    assert wait_for(lambda: not pair.has_vip("lb1"), timeout=3.0) is not None
    pair.procs["lb1"].wait(timeout=5)
    # A restarted keepalived starts its sequence counter at 0: as a BACKUP it
    # learns pyvrrpd's numbers, then preempts with higher ones, which pyvrrpd accepts.
    pair.start_keepalived("lb1", 100, conf_text=conf(100))
    back = wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0)
    print(f"restarted keepalived took the VIP back after {back} s")
    assert back is not None
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=3.0) is not None
    assert wait_for(lambda: pair.holders() != ["lb1"], timeout=3.0) is None
    assert _drops(_stats(pair, "lb2")) == {}


def test_pyvrrpd_master_keepalived_backup_ah_and_wrong_key(pair: Pair) -> None:
    pair.start("lb1", 100, conf_text=conf(100))
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    pair.start_keepalived("lb2", 90, conf_text=conf(90))
    # A third box with the wrong key and a higher priority: its adverts fail
    # the ICV check on both, so neither steps down for it.
    pair.start_keepalived("inj", 250, conf_text=conf(250, key="wrong"))
    # keepalived accepts our AH adverts: it never claims the VIP.
    assert wait_for(lambda: pair.holders() != ["lb1"], timeout=6.0) is None
    assert wait_for(lambda: _stats(pair, "lb1")["auth_failure"] >= 2, timeout=5.0) is not None
    assert pair.state("lb1") == "MASTER"
    ka_log = pair.log("lb2")
    assert "invalid IPSEC HMAC-MD5" in ka_log  # the wrong-key box, logged by keepalived
    assert "sequence number" not in ka_log
    assert "Entering MASTER" not in ka_log
    # pyvrrpd resigns with priority 0: keepalived takes over after its Skew_Time.
    pair.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=3.0)
    print(f"pyvrrpd SIGTERM -> keepalived holds the VIP after {took} s")
    assert took is not None and took < SKEW_90 + SLACK
    assert wait_for(lambda: not pair.has_vip("lb1"), timeout=3.0) is not None


def test_unicast_ah_both_ways(pair: Pair) -> None:
    # Unicast adverts leave the TTL out of the ICV (sent here with TTL 64).
    lb1, lb2 = "192.0.2.11", "192.0.2.12"
    pair.start_keepalived("lb1", 100, conf_text=conf(100, unicast=(lb1, lb2)))
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    pair.start("lb2", 90, conf_text=conf(90, unicast=(lb2, lb1)))
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=5.0) is not None
    assert wait_for(lambda: _stats(pair, "lb2")["advert_rcvd"] >= 2, timeout=5.0) is not None
    assert pair.state("lb2") == "BACKUP" and pair.holders() == ["lb1"]
    assert _drops(_stats(pair, "lb2")) == {}
    pair.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: pair.has_vip("lb2"), timeout=3.0)
    print(f"unicast: keepalived SIGTERM -> pyvrrpd holds the VIP after {took} s")
    assert took is not None and took < SKEW_90 + SLACK
    pair.procs["lb1"].wait(timeout=5)
    # The restarted keepalived must accept pyvrrpd's unicast AH adverts (else it
    # would log an invalid HMAC) before it preempts.
    before = len(pair.log("lb1"))
    pair.start_keepalived("lb1", 100, conf_text=conf(100, unicast=(lb1, lb2)))
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=3.0) is not None
    assert "IPSEC-AH" not in pair.log("lb1")[before:]
    assert _drops(_stats(pair, "lb2")) == {}
