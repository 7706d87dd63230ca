"""More than 255 VIPs in one instance (issue 5, last bullet of the list).

Before: the advert could not be encoded (one count byte, RFC 3768 5.3.5), the
whole action batch was lost, and the master held no VIPs and sent no adverts.
Now the config moves the excess to the excluded list with keepalived's
warning: all 300 addresses are installed on the master, 255 are advertised,
the backup stays BACKUP, and a SIGTERM hands all 300 over. The same holds
when the interface MTU, not the count byte, is the limit (keepalived's
(MTU - 50) / 4 addresses).
"""

from __future__ import annotations

import signal
from ipaddress import IPv4Address

import pytest

from tests.netns._pair import Pair, ip, wait_for

pytestmark = pytest.mark.netns

# Documentation ranges only: 250 from 198.51.100.0/24, the rest from 203.0.113.0/24.
ALL_VIPS = [IPv4Address("198.51.100.1") + i for i in range(250)] + [
    IPv4Address("203.0.113.1") + i for i in range(250)
]
VIP_SET = frozenset(ALL_VIPS)

CONF = """\
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass 1111
  }}
  virtual_ipaddress {{
{vips}
  }}
}}
"""


def conf(prio: int, n: int) -> str:
    return CONF.format(prio=prio, vips="\n".join(f"    {v}/32" for v in ALL_VIPS[:n]))


def installed(pair: Pair, host: str) -> int:
    """How many of our VIPs the kernel has on the host's eth0."""
    out = ip("-n", pair.ns(host), "-4", "-o", "addr", "show", "dev", "eth0").stdout
    found = {IPv4Address(line.split()[3].split("/")[0]) for line in out.splitlines()}
    return len(found & VIP_SET)


def stats(pair: Pair, host: str) -> dict[str, int]:
    got: dict[str, int] = pair.status(host)["stats"]  # type: ignore[assignment]
    return got


@pytest.mark.parametrize(
    ("n_vips", "mtu", "fits"),
    [(300, 1500, 255), (200, 600, 137)],
    ids=["300-vips-count-byte", "200-vips-mtu-600"],
)
def test_many_vips_installed_advertised_and_handed_over(
    pair: Pair, n_vips: int, mtu: int, fits: int
) -> None:
    for host in ("lb1", "lb2"):
        ip("-n", pair.ns(host), "link", "set", "eth0", "mtu", str(mtu))
    pair.start("lb1", 150, conf_text=conf(150, n_vips))
    took = wait_for(lambda: pair.state("lb1") == "MASTER", timeout=8.0)
    assert took is not None, f"lb1 state: {pair.state('lb1')}"
    assert wait_for(lambda: installed(pair, "lb1") == n_vips, timeout=5.0) is not None, (
        f"lb1 has {installed(pair, 'lb1')} of {n_vips} VIPs"
    )
    # The warning keepalived gives (the config's, located, or the MTU check's at start).
    assert f"exceeds maximum/space available in packet (max {fits} addresses)" in pair.log("lb1")

    pair.start("lb2", 100, conf_text=conf(100, n_vips))
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=5.0) is not None
    first = stats(pair, "lb2")["advert_rcvd"]
    # Adverts keep coming (one a second): lb2 hears them and stays BACKUP, past
    # its Master_Down_Interval (3.61 s), with none of the VIPs.
    assert wait_for(lambda: stats(pair, "lb2")["advert_rcvd"] >= first + 4, timeout=6.0)
    assert pair.state("lb2") == "BACKUP" and pair.state("lb1") == "MASTER"
    assert installed(pair, "lb2") == 0 and installed(pair, "lb1") == n_vips
    s2 = stats(pair, "lb2")
    # Both split the list the same way: the advertised VIPs match exactly.
    assert s2["addr_list_err"] == 0 and s2["packet_len_err"] == 0
    assert stats(pair, "lb1")["advert_sent"] >= 5

    pair.signal("lb1", signal.SIGTERM)
    assert pair.procs["lb1"].wait(timeout=10.0) == 0
    took = wait_for(lambda: installed(pair, "lb2") == n_vips, timeout=5.0)
    print(f"SIGTERM hand-over of {n_vips} VIPs: {took} s")
    assert took is not None, f"lb2 has {installed(pair, 'lb2')} of {n_vips} VIPs"
    assert pair.state("lb2") == "MASTER"
    assert installed(pair, "lb1") == 0
    assert stats(pair, "lb2")["pri_zero_rcvd"] == 1
