"""use_vmac in a real kernel: the VIP answers ARP with the RFC 3768 virtual MAC, and the MAC moves.

Both boxes run `use_vmac` for VRID 51 (MAC 00:00:5e:00:01:33). From `inj` an
ARP request for the VIP gets exactly one answer, from the virtual MAC; the
adverts on the wire carry it as their source. After the master stops, the VIP
answers from the other box with the same MAC, and the stopped box's vmac is
gone with its base interface's ARP switches put back. A vmac left by a killed
daemon is adopted and removed on the next stop; an interface of ours' name that
is not a macvlan is left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._nshelp import in_netns
from tests.netns._pair import VIP, VIP2, Pair, ip, pair_lan, wait_for

pytestmark = pytest.mark.netns

VMAC = "00:00:5e:00:01:33"  # RFC 3768 7.3, VRID 51

CONF = """\
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  use_vmac{name}
  authentication {{
    auth_type PASS
    auth_pass 1111
  }}
  virtual_ipaddress {{
    {vip}/24
  }}
}}
"""


def start(pair: Pair, host: str, prio: int, name: str = "") -> None:
    pair.start(
        host, prio, conf_text=CONF.format(prio=prio, vip=VIP, name=f" {name}" if name else "")
    )


def link_mac(pair: Pair, host: str, ifname: str) -> str | None:
    out = ip("-n", pair.ns(host), "-o", "link", "show", "dev", ifname, check=False)
    if out.returncode != 0:
        return None
    words = out.stdout.split()
    return words[words.index("link/ether") + 1]


def vip_on(pair: Pair, host: str, ifname: str) -> bool:
    out = ip("-n", pair.ns(host), "-4", "-o", "addr", "show", "dev", ifname, check=False).stdout
    return f" {VIP}/" in out


def sysctl(pair: Pair, host: str, key: str) -> str:
    with in_netns(pair.ns(host)), open(f"/proc/sys/net/ipv4/conf/{key}") as f:
        return f.read().strip()


def capture(pair: Pair, ethertype: int, dev: str = "eth0", timeout: float = 0.0) -> socket.socket:
    """A packet socket on inj's `dev` for `ethertype` (non-blocking unless `timeout`)."""
    with in_netns(pair.ns("inj")):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        s.bind((dev, ethertype))
    except OSError:
        s.close()
        raise
    s.settimeout(timeout)
    return s


def frames(s: socket.socket, wait: float) -> Iterator[bytes]:
    """Frames received on `s` (which has a timeout) for `wait` seconds."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            yield s.recv(2048)
        except TimeoutError:
            continue


def arp_answers(
    pair: Pair, wait: float = 0.5, vip: str = VIP, dev: str = "eth0", src: str = "192.0.2.66"
) -> list[str]:
    """Sender MACs of every ARP reply to one request for `vip` sent from inj."""
    s = capture(pair, 0x0806, dev, timeout=0.05)
    try:
        mine = s.getsockname()[4]
        request = (
            b"\xff" * 6
            + mine
            + b"\x08\x06"
            + bytes.fromhex("0001080006040001")
            + mine
            + socket.inet_aton(src)
            + b"\0" * 6
            + socket.inet_aton(vip)
        )
        s.send(request)
        seen: list[str] = []
        for frame in frames(s, wait):
            # An ARP reply (op 2) whose sender protocol address is the VIP.
            if frame[20:22] == b"\x00\x02" and frame[28:32] == socket.inet_aton(vip):
                seen.append(frame[22:28].hex(":"))
        return seen
    finally:
        s.close()


def arp_capture(pair: Pair) -> socket.socket:
    return capture(pair, 0x0806)


_garps_seen: dict[int, set[tuple[str, str]]] = {}


def garp_senders(s: socket.socket) -> set[tuple[str, str]]:
    """(Ethernet source, ARP sender MAC) of the gratuitous ARPs for the VIP seen so far."""
    seen = _garps_seen.setdefault(s.fileno(), set())
    while True:
        try:
            frame = s.recv(2048)
        except BlockingIOError:
            return set(seen)
        vip = socket.inet_aton(VIP)
        if frame[20:22] == b"\x00\x01" and frame[28:32] == vip and frame[38:42] == vip:
            seen.add((frame[6:12].hex(":"), frame[22:28].hex(":")))


def advert_source(pair: Pair, timeout: float = 3.0) -> tuple[str, str] | None:
    """(source MAC, source IP) of the next VRRP advert seen on inj's eth0."""
    s = capture(pair, 0x0800, timeout=0.2)
    try:
        for frame in frames(s, timeout):
            if len(frame) >= 34 and frame[23] == 112:
                src_ip = socket.inet_ntoa(frame[26:30])
                return frame[6:12].hex(":"), src_ip
        return None
    finally:
        s.close()


def igmp_capture(pair: Pair) -> socket.socket:
    return capture(pair, 0x0800)


def igmp_sources(s: socket.socket) -> set[str]:
    """Source MACs of the IGMP frames queued on a capture socket."""
    out: set[str] = set()
    while True:
        try:
            frame = s.recv(2048)
        except BlockingIOError:
            return out
        if len(frame) > 23 and frame[23] == 2:  # IPPROTO_IGMP
            out.add(frame[6:12].hex(":"))


def test_vip_answers_arp_with_virtual_mac_and_the_mac_moves(pair: Pair) -> None:
    start(pair, "lb1", 150)
    assert wait_for(lambda: vip_on(pair, "lb1", "vrrp.51"), timeout=6.0) is not None
    igmp = igmp_capture(pair)
    start(pair, "lb2", 100)
    assert wait_for(lambda: link_mac(pair, "lb2", "vrrp.51") == VMAC, timeout=5.0) is not None
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=5.0) is not None
    # The vmac is a private macvlan on eth0 on both boxes; VIP only on the master's.
    for host in ("lb1", "lb2"):
        detail = ip("-n", pair.ns(host), "-d", "-o", "link", "show", "dev", "vrrp.51").stdout
        assert "vrrp.51@eth0" in detail and "macvlan mode private" in detail, detail
        assert sysctl(pair, host, "vrrp.51/arp_ignore") == "1"
        assert sysctl(pair, host, "eth0/arp_ignore") == "1"
        assert sysctl(pair, host, "eth0/arp_filter") == "1"
    assert not vip_on(pair, "lb1", "eth0") and not vip_on(pair, "lb2", "vrrp.51")

    # The backup's IGMP report for 224.0.0.18 leaves from eth0, never with the
    # virtual MAC (a switch would learn the VIP's MAC behind the backup).
    lb2_mac = link_mac(pair, "lb2", "eth0")
    seen: set[str] = set()

    def heard_lb2() -> bool:
        seen.update(igmp_sources(igmp))
        return lb2_mac in seen

    assert wait_for(heard_lb2, timeout=3.0) is not None
    time.sleep(0.3)  # stragglers of the same burst
    seen |= igmp_sources(igmp)
    igmp.close()
    assert VMAC not in seen
    # Adverts carry the virtual MAC and the base interface's primary address.
    assert advert_source(pair) == (VMAC, "192.0.2.11")
    # Exactly one ARP answer for the VIP, from the virtual MAC (not lb1's eth0).
    assert wait_for(lambda: arp_answers(pair) == [VMAC], timeout=3.0, step=0.1) is not None

    garps = arp_capture(pair)
    pair.signal("lb1", signal.SIGTERM)
    assert pair.procs["lb1"].wait(timeout=5.0) == 0
    assert wait_for(lambda: vip_on(pair, "lb2", "vrrp.51"), timeout=3.0) is not None
    assert pair.state("lb2") == "MASTER"
    # The new master's gratuitous ARPs come from the virtual MAC too.
    assert wait_for(lambda: bool(garp_senders(garps)), timeout=2.0, step=0.05) is not None
    time.sleep(0.2)
    assert garp_senders(garps) == {(VMAC, VMAC)}
    garps.close()
    assert advert_source(pair) == (VMAC, "192.0.2.12")
    assert wait_for(lambda: arp_answers(pair) == [VMAC], timeout=3.0, step=0.1) is not None
    # The stopped box removed its vmac and put its ARP switches back, quietly.
    assert link_mac(pair, "lb1", "vrrp.51") is None
    assert [line for line in pair.log("lb1").splitlines() if '"level": "error"' in line] == []
    assert sysctl(pair, "lb1", "eth0/arp_ignore") == "0"
    assert sysctl(pair, "lb1", "eth0/arp_filter") == "0"
    tables = subprocess.run(
        ["ip", "netns", "exec", pair.ns("lb1"), "nft", "list", "tables"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    assert "pyvrrpd_vmac" not in tables


def test_leftover_vmac_adopted_and_foreign_name_left_alone(pair: Pair) -> None:
    # Someone else's interface holds the name we are told to use: not ours, not a
    # macvlan. keepalived ignores the configured name and uses vrrp.51.
    ip("-n", pair.ns("lb1"), "link", "add", "vmac51", "type", "veth", "peer", "name", "other")
    start(pair, "lb1", 150, name="vmac51")
    assert wait_for(lambda: vip_on(pair, "lb1", "vrrp.51"), timeout=6.0) is not None
    assert link_mac(pair, "lb1", "vmac51") is not None  # still there
    assert "already exists as a non VMAC interface" in pair.log("lb1")

    # A crash leaves the vmac (and its VIP) behind ...
    pair.signal("lb1", signal.SIGKILL)
    pair.procs["lb1"].wait(timeout=5.0)
    assert link_mac(pair, "lb1", "vrrp.51") == VMAC
    # ... the next start adopts it instead of making a second one ...
    start(pair, "lb1", 150, name="vmac51")
    assert wait_for(lambda: pair.state("lb1") == "MASTER", timeout=6.0) is not None
    assert "Found matching interface vrrp.51" in pair.log("lb1")
    names = ip("-n", pair.ns("lb1"), "-o", "link", "show").stdout
    assert names.count("00:00:5e:00:01:33") == 1, names
    # Deleted under the running daemon, it is made again (keepalived does too).
    ip("-n", pair.ns("lb1"), "link", "del", "vrrp.51")
    assert wait_for(lambda: link_mac(pair, "lb1", "vrrp.51") == VMAC, timeout=3.0) is not None
    # ... and a clean stop removes it; the foreign interface stays.
    pair.signal("lb1", signal.SIGTERM)
    assert pair.procs["lb1"].wait(timeout=5.0) == 0
    assert link_mac(pair, "lb1", "vrrp.51") is None
    assert link_mac(pair, "lb1", "vmac51") is not None


SYSCTLS = (
    "all/rp_filter",
    "default/rp_filter",
    "eth0/rp_filter",
    "eth0/arp_ignore",
    "eth0/arp_filter",
    "vrrp.51/arp_ignore",
    "vrrp.51/accept_local",
    "vrrp.51/rp_filter",
    "vrrp.51/promote_secondaries",
)


def test_keepalived_peer_same_mac_same_switches(pair: Pair) -> None:
    """keepalived 2.2.7 with use_vmac as the master, pyvrrpd as the backup: the
    MAC moves with the VIP across the two daemons, and both set the same sysctls."""
    if not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed (apt-get install keepalived)")
    # A non-zero all.rp_filter (Debian's default is 2 via systemd) exercises the
    # rp_filter juggling on both boxes alike.
    for host in ("lb1", "lb2"):
        with in_netns(pair.ns(host)):
            for key in ("all/rp_filter", "default/rp_filter", "eth0/rp_filter"):
                with open(f"/proc/sys/net/ipv4/conf/{key}", "w") as f:
                    f.write("2\n")
    pair.start_keepalived("lb1", 150, conf_text=CONF.format(prio=150, vip=VIP, name=""))
    assert wait_for(lambda: vip_on(pair, "lb1", "vrrp.51"), timeout=8.0) is not None
    start(pair, "lb2", 100)
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", timeout=5.0) is not None
    assert wait_for(lambda: arp_answers(pair) == [VMAC], timeout=3.0, step=0.1) is not None
    theirs = {k: sysctl(pair, "lb1", k) for k in SYSCTLS}
    ours = {k: sysctl(pair, "lb2", k) for k in SYSCTLS}
    print(f"sysctls, keepalived box: {theirs}")
    assert ours == theirs
    # Two master-down intervals: pyvrrpd keeps following keepalived's vmac adverts.
    assert wait_for(lambda: vip_on(pair, "lb2", "vrrp.51"), timeout=4.0) is None

    pair.signal("lb1", signal.SIGTERM)
    assert wait_for(lambda: vip_on(pair, "lb2", "vrrp.51"), timeout=3.0) is not None
    assert wait_for(lambda: arp_answers(pair) == [VMAC], timeout=3.0, step=0.1) is not None
    assert pair.procs["lb1"].wait(timeout=5.0) == 0
    assert link_mac(pair, "lb1", "vrrp.51") is None

    # The other pairing: keepalived as the backup follows pyvrrpd's vmac adverts
    # (they reach its vmac, which has the same MAC) and never claims the VIP.
    pair.start_keepalived("lb1", 50, conf_text=CONF.format(prio=50, vip=VIP, name=""))
    assert wait_for(lambda: link_mac(pair, "lb1", "vrrp.51") == VMAC, timeout=5.0) is not None
    assert wait_for(lambda: vip_on(pair, "lb1", "vrrp.51"), timeout=5.0) is None
    assert vip_on(pair, "lb2", "vrrp.51") and pair.procs["lb1"].poll() is None


def test_xmit_base_sends_adverts_from_the_base_mac(pair: Pair) -> None:
    conf = CONF.format(prio=150, vip=VIP, name="").replace("use_vmac", "use_vmac\n  vmac_xmit_base")
    pair.start("lb1", 150, conf_text=conf)
    assert wait_for(lambda: vip_on(pair, "lb1", "vrrp.51"), timeout=6.0) is not None
    assert advert_source(pair) == (link_mac(pair, "lb1", "eth0"), "192.0.2.11")
    assert wait_for(lambda: arp_answers(pair) == [VMAC], timeout=3.0, step=0.1) is not None


def test_per_address_use_vmac_on_another_interface(tmp_path: Path) -> None:
    """`use_vmac` on one `virtual_ipaddress` line: that address gets a vmac on its own
    device; the instance (no use_vmac) keeps its adverts and other VIPs on eth0."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    conf = CONF.format(prio=150, vip=VIP, name="").replace("  use_vmac\n", "")
    conf = conf.replace(f"{VIP}/24\n", f"{VIP}/24\n    {VIP2}/24 dev eth1 use_vmac\n")
    with pair_lan(tmp_path, lans=2) as pair:
        try:
            pair.start("lb1", 150, conf_text=conf)
            assert wait_for(lambda: pair.state("lb1") == "MASTER", timeout=6.0) is not None
            detail = ip("-n", pair.ns("lb1"), "-d", "-o", "link", "show", "dev", "vrrp.51").stdout
            assert "vrrp.51@eth1" in detail and VMAC in detail, detail
            out = ip("-n", pair.ns("lb1"), "-4", "-o", "addr", "show", "dev", "vrrp.51").stdout
            assert f" {VIP2}/" in out and vip_on(pair, "lb1", "eth0")
            lb1_eth0 = link_mac(pair, "lb1", "eth0")
            assert advert_source(pair) == (lb1_eth0, "192.0.2.11")
            assert arp_answers(pair) == [lb1_eth0]
            answers = arp_answers(pair, vip=VIP2, dev="eth1", src="198.51.100.66")
            assert answers == [VMAC]
            pair.signal("lb1", signal.SIGTERM)
            assert pair.procs["lb1"].wait(timeout=5.0) == 0
            assert link_mac(pair, "lb1", "vrrp.51") is None
        finally:
            print(f"--- lb1 log ---\n{pair.log('lb1')[-3000:]}")


def test_base_interface_appearing_later_gets_its_vmac(pair: Pair) -> None:
    """With dynamic_interfaces, an instance whose interface is missing waits in FAULT;
    when the interface appears its vmac is made and the instance runs."""
    conf = "global_defs {\n  dynamic_interfaces\n}\n" + CONF.format(
        prio=150, vip=VIP, name=""
    ).replace("interface eth0", "interface eth5")
    pair.start("lb1", 150, conf_text=conf)
    assert wait_for(lambda: pair.state("lb1") == "FAULT", timeout=5.0) is not None
    ns = pair.ns("lb1")
    ip("-n", ns, "link", "add", "eth5", "type", "veth", "peer", "name", "eth6")
    ip("-n", ns, "addr", "add", "203.0.113.1/24", "dev", "eth5")
    ip("-n", ns, "link", "set", "eth6", "up")
    ip("-n", ns, "link", "set", "eth5", "up")
    assert wait_for(lambda: link_mac(pair, "lb1", "vrrp.51") == VMAC, timeout=3.0) is not None
    assert wait_for(lambda: vip_on(pair, "lb1", "vrrp.51"), timeout=6.0) is not None
    detail = ip("-n", ns, "-d", "-o", "link", "show", "dev", "vrrp.51").stdout
    assert "vrrp.51@eth5" in detail
