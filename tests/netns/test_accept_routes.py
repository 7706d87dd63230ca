"""no_accept drop rules and virtual_routes in a real kernel lab (issue 6 item 7).

lb1 (priority 150, `no_accept`) and lb2 (priority 100, `accept`) share the
VIP and a virtual route. What a client sees: while lb1 is master a TCP
connect from `inj` to the VIP gets no answer at all (nftables drops it, as
keepalived's table does); once lb2 (accept mode on) holds the VIP the same
connect is answered (a RST: nothing listens, the host is reachable). The
`keepalived` nft table exists on lb1 only while it needs it and is gone
after it stops; the virtual route is on the master only and moves with the VIP.
"""

from __future__ import annotations

import errno
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._nshelp import in_netns
from tests.netns._pair import VIP, Pair, ip, logged_pair_lan, wait_for

pytestmark = pytest.mark.netns

ROUTE = "203.0.113.0/24"

CONF = """\
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  {accept}
  virtual_ipaddress {{
    {vip}/24
  }}
  virtual_routes {{
    {route} via 192.0.2.66 dev eth0
  }}
}}
"""


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Pair]:
    if shutil.which("nft") is None:
        pytest.skip("needs the nft command (package nftables)")
    with logged_pair_lan(tmp_path) as p:
        yield p


def start(lan: Pair, host: str, prio: int, accept: str) -> None:
    conf = CONF.format(prio=prio, accept=accept, vip=VIP, route=ROUTE)
    lan.start(host, prio, conf_text=conf)


def connect(lan: Pair, timeout: float = 0.5) -> str:
    """'answered' (connected or refused) or 'silent' (no reply: dropped)."""
    with in_netns(lan.ns("inj")):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect((VIP, 9))
        except ConnectionRefusedError:
            return "answered"
        except (TimeoutError, OSError) as exc:
            if isinstance(exc, TimeoutError) or exc.errno in (errno.EHOSTUNREACH, errno.ETIMEDOUT):
                return "silent"
            raise
        return "answered"
    finally:
        s.close()


def nft_vips(lan: Pair, host: str) -> str | None:
    """The `keepalived` table's vips set on `host`, or None if there is no table."""
    out = subprocess.run(
        ["ip", "netns", "exec", lan.ns(host), "nft", "list", "set", "ip", "keepalived", "vips"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout if out.returncode == 0 else None


def has_route(lan: Pair, host: str) -> bool:
    out = ip("-n", lan.ns(host), "-4", "route", "show", ROUTE).stdout
    return "proto keepalived" in out


def test_no_accept_drops_traffic_to_the_vip_and_routes_follow_the_master(lan: Pair) -> None:
    start(lan, "lb1", 150, "no_accept")
    start(lan, "lb2", 100, "accept")
    assert wait_for(lambda: lan.holders() == ["lb1"], 8) is not None, "lb1 never held the VIP"
    assert wait_for(lambda: has_route(lan, "lb1"), 2) is not None, "no virtual route on lb1"
    assert not has_route(lan, "lb2")

    # lb1 is master with accept mode off: the VIP is there but says nothing.
    vips = nft_vips(lan, "lb1")
    assert vips is not None and VIP in vips
    assert nft_vips(lan, "lb2") is None  # accept mode: no table at all
    assert connect(lan) == "silent"

    # A tracked route deleted behind the master's back is put back.
    ip("-n", lan.ns("lb1"), "route", "del", ROUTE)
    assert wait_for(lambda: has_route(lan, "lb1"), 2) is not None, "route not reinstated"
    assert lan.state("lb1") == "MASTER"

    # lb1 stops: the VIP, the route and the whole table go with it.
    lan.signal("lb1", signal.SIGTERM)
    lan.procs["lb1"].wait(timeout=10)
    assert nft_vips(lan, "lb1") is None, "nft table left behind after stop"
    assert not has_route(lan, "lb1")
    assert wait_for(lambda: lan.holders() == ["lb2"], 5) is not None, "lb2 never took over"
    assert wait_for(lambda: has_route(lan, "lb2"), 2) is not None, "route did not move to lb2"
    # lb2 accepts: the same connect is answered (refused: nothing listens on port 9).
    assert wait_for(lambda: connect(lan) == "answered", 3, step=0.1) is not None

    # lb1 comes back, preempts, and drops again; lb2 has let go of the route.
    start(lan, "lb1", 150, "no_accept")
    assert wait_for(lambda: lan.holders() == ["lb1"], 8) is not None, "lb1 did not preempt"
    assert wait_for(lambda: not has_route(lan, "lb2") and has_route(lan, "lb1"), 3) is not None
    assert wait_for(lambda: connect(lan) == "silent", 3, step=0.1) is not None


SRC_CONF = """\
vrrp_instance VI_1 {{
  interface {ifname}
  virtual_router_id 51
  priority {prio}
  advert_int 1
  {extra}
  virtual_ipaddress {{
    {vip}/24
  }}
}}
"""


def test_track_src_ip_faults_while_the_source_address_is_missing(lan: Pair) -> None:
    ns = lan.ns("lb1")
    ip("-n", ns, "addr", "add", "192.0.2.21/24", "dev", "eth0")
    lb1 = SRC_CONF.format(
        ifname="eth0", prio=150, vip=VIP, extra="mcast_src_ip 192.0.2.21\n  track_src_ip"
    )
    lan.start("lb1", 150, conf_text=lb1)
    lan.start("lb2", 100, conf_text=SRC_CONF.format(ifname="eth0", prio=100, vip=VIP, extra=""))
    assert wait_for(lambda: lan.holders() == ["lb1"], 8) is not None, "lb1 never held the VIP"
    ip("-n", ns, "addr", "del", "192.0.2.21/24", "dev", "eth0")
    assert wait_for(lambda: lan.state("lb1") == "FAULT", 3) is not None
    # Its priority-0 advert cannot leave from the vanished address either
    # (ENETUNREACH), so lb2 waits out its Master_Down_Interval (3.61 s).
    assert wait_for(lambda: lan.holders() == ["lb2"], 5) is not None
    ip("-n", ns, "addr", "add", "192.0.2.21/24", "dev", "eth0")
    assert wait_for(lambda: lan.holders() == ["lb1"], 8) is not None, "lb1 did not come back"


def test_a_missing_interface_waits_in_fault_without_dynamic_interfaces(lan: Pair) -> None:
    # keepalived 2.2.7 exits here; pyvrrpd starts and waits (README, differences).
    conf = SRC_CONF.format(ifname="vrrp9", prio=100, vip=VIP, extra="")
    proc = lan.start("lb1", 100, conf_text=conf)
    assert wait_for(lambda: lan.state("lb1") == "FAULT", 10) is not None
    assert "interface missing" in lan.status("lb1")["fault_reasons"]  # type: ignore[operator]
    assert "interface vrrp9 does not exist" in lan.log("lb1")
    assert proc.poll() is None and not lan.has_vip("lb1")


STATIC_CONF = """\
global_defs {
  dynamic_interfaces
}
static_ipaddress {
  198.51.100.5/24 dev eth0
}
static_routes {
  203.0.113.0/24 via 198.51.100.1 dev eth0
}
static_rules {
  from 198.51.100.5 table 100 priority 100
}
""" + SRC_CONF.format(ifname="eth0", prio=100, vip=VIP, extra="")


def test_static_routes_live_as_long_as_the_daemon(lan: Pair) -> None:
    ns = lan.ns("lb1")

    def state() -> tuple[bool, bool, bool]:
        addr = " 198.51.100.5/24 " in ip("-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").stdout
        route = "proto keepalived" in ip("-n", ns, "-4", "route", "show", ROUTE).stdout
        rule = "198.51.100.5 lookup 100" in ip("-n", ns, "-4", "rule", "show").stdout
        return addr, route, rule

    lan.start("lb1", 100, conf_text=STATIC_CONF)
    assert wait_for(lambda: state() == (True, True, True), 5) is not None, state()
    ip("-n", ns, "route", "del", ROUTE)
    ip("-n", ns, "rule", "del", "from", "198.51.100.5", "table", "100", "priority", "100")
    assert wait_for(lambda: state() == (True, True, True), 2) is not None, "not reinstated"
    lan.signal("lb1", signal.SIGTERM)
    lan.procs["lb1"].wait(timeout=10)
    assert state() == (False, False, False)


STRICT_CONF = """\
global_defs {{
  vrrp_strict
}}
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass 1111
  }}
  virtual_ipaddress {{
    {vip}/24
  }}
}}
"""


def test_strict_pair_with_keepalived_drops_on_both_masters(lan: Pair) -> None:
    """vrrp_strict on both boxes: both drop the authentication, elect, and as
    master each drops traffic to the VIP (keepalived with its own table)."""
    lan.start("lb1", 150, conf_text=STRICT_CONF.format(prio=150, vip=VIP))
    lan.start_keepalived("lb2", 100, conf_text=STRICT_CONF.format(prio=100, vip=VIP))
    assert wait_for(lambda: lan.holders() == ["lb1"], 8) is not None, "lb1 never held the VIP"
    assert connect(lan) == "silent"
    vips = nft_vips(lan, "lb1")
    assert vips is not None and VIP in vips
    lan.signal("lb1", signal.SIGTERM)
    lan.procs["lb1"].wait(timeout=10)
    assert wait_for(lambda: lan.holders() == ["lb2"], 5) is not None, "keepalived never took over"
    vips = nft_vips(lan, "lb2")
    assert vips is not None and VIP in vips  # keepalived's own table, same shape
    assert connect(lan) == "silent"
