"""Unicast VRRP (keepalived 2.2.7 semantics): config, receive checks, send targets, core, filter.

keepalived.md 1.3 / 1.8 for the keywords, 2.10 rows 3, 11 and 13 for the
received-advert checks; the netns test (tests/netns/test_unicast.py) runs it
on a real LAN against keepalived.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

import pytest

from pyvrrpd.config.model import Config, ConfigError, UnicastPeer
from pyvrrpd.config.parser import parse_text
from pyvrrpd.core.actions import StateChanged
from pyvrrpd.core.events import PacketReceived, Started, TimerFired
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.io.vrrp_socket import SendTarget, _cmsgs
from pyvrrpd.shell.host.unicast import resolve_interfaces, send_target
from pyvrrpd.shell.instance import router_config
from pyvrrpd.wire.bpf import FastPath, split_filter
from pyvrrpd.wire.check import Accepted, DropReason, Expect, Peer, Rejected, check_packet
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert
from tests.unit.test_wire_bpf import run_bpf

ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
OTHER = IPv4Address("192.0.2.66")
VIP = IPv4Address("192.0.2.10")


def conf(body: str, glob: str = "") -> Config:
    return parse_text(
        f"global_defs {{\n{glob}\n}}\n"
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n"
        f" virtual_ipaddress {{\n  192.0.2.10\n }}\n{body}\n}}\n"
    )


def messages(config: Config) -> list[str]:
    return [d.message for d in config.warnings]


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        conf(text)
    return [d.message for d in exc.value.errors]


# --- config -------------------------------------------------------------------------------


def test_unicast_instance() -> None:
    inst = conf(
        "unicast_src_ip 192.0.2.11\nunicast_ttl 7\n"
        "unicast_peer {\n 192.0.2.12\n 192.0.2.13 min_ttl 2 max_ttl 250\n}"
    ).instances[0]
    assert inst.src_ip == ME
    assert inst.unicast_peer == (
        UnicastPeer(PEER),
        UnicastPeer(IPv4Address("192.0.2.13"), 2, 250),
    )
    assert inst.unicast_ttl == 7
    # A TTL bound on any peer turns the source check on (vrrp_data.c).
    assert inst.check_unicast_src
    assert inst.unicast_fault is None


def test_defaults_are_multicast() -> None:
    inst = conf("").instances[0]
    assert inst.unicast_peer == () and inst.src_ip is None
    assert inst.mcast_dst_ip == VRRP_GROUP and inst.unicast_ttl == 255
    assert not inst.check_unicast_src


def test_check_unicast_src_global_and_instance() -> None:
    peers = "unicast_peer {\n 192.0.2.12\n}"
    assert not conf(peers).instances[0].check_unicast_src
    assert conf(peers, "vrrp_check_unicast_src").instances[0].check_unicast_src
    assert conf(peers + "\ncheck_unicast_src").instances[0].check_unicast_src


def test_empty_peer_block_is_multicast_with_deprecation_warning() -> None:
    c = conf("unicast_src_ip 192.0.2.11\nunicast_peer {\n}")
    inst = c.instances[0]
    assert inst.unicast_peer == () and inst.unicast_fault is None
    assert inst.src_ip == ME  # still the advert source (keepalived's saddr)
    assert any("Defaulting to multicast" in m for m in messages(c))


def test_unicast_fault_no_peer() -> None:
    c = conf("unicast_fault_no_peer")
    assert c.instances[0].unicast_fault is not None
    assert not any("Defaulting to multicast" in m for m in messages(c))
    # ...and the core holds it in FAULT with that reason.
    vr = VirtualRouter(router_config(c.instances[0], c, mtu=1500))
    out = vr.handle(Started(ME), 0.0)
    assert vr.state is State.FAULT
    assert any(isinstance(a, StateChanged) and "unicast_fault_no_peer" in a.reason for a in out)


def test_mcast_group_and_source() -> None:
    c = conf("mcast_src_ip 192.0.2.11", "vrrp_mcast_group4 224.0.0.19")
    assert c.instances[0].mcast_dst_ip == IPv4Address("224.0.0.19")
    assert c.instances[0].src_ip == ME
    c = conf("mcast_dst_ip 224.0.0.20", "vrrp_mcast_group4 224.0.0.19")
    assert c.instances[0].mcast_dst_ip == IPv4Address("224.0.0.20")


def test_ignored_combinations_warn() -> None:
    c = conf("unicast_ttl 5")
    assert c.instances[0].unicast_ttl == 255
    assert any("unicast_ttl without unicast peers" in m for m in messages(c))
    c = conf("mcast_dst_ip 224.0.0.20\nunicast_peer {\n 192.0.2.12\n}")
    assert c.instances[0].mcast_dst_ip == VRRP_GROUP
    assert any("multicast destination specified with unicast" in m for m in messages(c))
    c = conf("unicast_peer {\n 192.0.2.12 min_ttl 30 max_ttl 4\n 192.0.2.13 foo 1\n}")
    assert len(c.instances[0].unicast_peer) == 2
    assert any("min_ttl 30 > max_ttl 4" in m for m in messages(c))
    assert any("unknown unicast_peer option 'foo'" in m for m in messages(c))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("unicast_src_ip 192.0.2.300", "unicast_src_ip must be an IPv4 address"),
        ("unicast_peer {\n 192.0.2.1222\n}", "unicast_peer must be an IPv4 address"),
        ("unicast_peer {\n 192.0.2.12 min_ttl\n}", "min_ttl needs a value"),
        ("unicast_peer {\n 192.0.2.12 max_ttl 300\n}", "max_ttl must be an integer 0..255"),
        ("unicast_ttl 256\nunicast_peer {\n 192.0.2.12\n}", "unicast_ttl must be an integer"),
        ("mcast_dst_ip 192.0.2.5", "not a multicast address"),
    ],
)
def test_bad_values_are_errors(body: str, needle: str) -> None:
    assert any(needle in m for m in errors(body)), errors(body)


def test_interface_may_be_omitted_with_unicast_src_ip() -> None:
    text = (
        "vrrp_instance VI_1 {\n virtual_router_id 51\n unicast_src_ip 192.0.2.11\n"
        " unicast_peer {\n  192.0.2.12\n }\n virtual_ipaddress {\n  192.0.2.10\n }\n}\n"
    )
    c = parse_text(text)
    assert c.instances[0].interface == ""
    with pytest.raises(ConfigError, match="has no 'interface'"):
        parse_text(text.replace("unicast_src_ip", "mcast_src_ip"))
    # The daemon finds it from the kernel's view of the addresses.
    lo = socket.if_nameindex()[0][1]
    # (Any interface will do here; a real loopback one is refused: test_splitbrain_fixes.)
    found = resolve_interfaces(
        c, lambda ifname, addr: ifname == lo and addr == ME, is_loopback=lambda n: False
    )
    assert found.instances[0].interface == lo
    missing = resolve_interfaces(c, lambda ifname, addr: False)
    assert "192.0.2.11" in (missing.instances[0].unicast_fault or "")


# --- receive checks -------------------------------------------------------------------------


def dgram(src: IPv4Address = PEER, dst: IPv4Address = ME, ttl: int = 255) -> bytes:
    payload = encode_advert(51, 100, [VIP], 1, int(AuthType.NONE), b"")
    return build_ipv4(src, dst, payload, ttl=ttl)


UNICAST = Expect(
    51,
    1,
    int(AuthType.NONE),
    b"",
    frozenset({VIP}),
    check_ttl=False,
    unicast=True,
    peers=(Peer(PEER),),
)


def test_unicast_skips_the_ttl_check_multicast_does_not() -> None:
    assert isinstance(check_packet(dgram(ttl=64), UNICAST), Accepted)
    multicast = Expect(51, 1, int(AuthType.NONE), b"", frozenset({VIP}))
    res = check_packet(dgram(dst=VRRP_GROUP, ttl=64), multicast)
    assert isinstance(res, Rejected) and res.reason is DropReason.IP_TTL_ERR


def test_wrong_cast_is_addr_list_err() -> None:
    res = check_packet(dgram(dst=VRRP_GROUP), UNICAST)
    assert isinstance(res, Rejected) and res.reason is DropReason.ADDR_LIST_ERR
    assert "Expected unicast packet but received multicast packet" in res.detail
    multicast = Expect(51, 1, int(AuthType.NONE), b"", frozenset({VIP}))
    res = check_packet(dgram(), multicast)
    assert isinstance(res, Rejected) and res.reason is DropReason.ADDR_LIST_ERR


def test_unicast_source_check() -> None:
    # Without check_unicast_src any source is accepted (keepalived).
    assert isinstance(check_packet(dgram(src=OTHER), UNICAST), Accepted)
    strict = Expect(
        51,
        1,
        int(AuthType.NONE),
        b"",
        frozenset({VIP}),
        check_ttl=False,
        unicast=True,
        peers=(Peer(PEER, 250, 255),),
        check_unicast_src=True,
    )
    res = check_packet(dgram(src=OTHER), strict)
    assert isinstance(res, Rejected) and res.reason is DropReason.NOT_UNICAST_PEER
    res = check_packet(dgram(ttl=64), strict)
    assert isinstance(res, Rejected) and res.reason is DropReason.IP_TTL_ERR
    assert isinstance(check_packet(dgram(ttl=254), strict), Accepted)


# --- core -----------------------------------------------------------------------------------


def unicast_router(**kw: object) -> VirtualRouter:
    base: dict[str, object] = {
        "name": "VI_1",
        "vrid": 51,
        "priority": 100,
        "vips": (VIP,),
        "unicast_peers": (Peer(PEER),),
    }
    base.update(kw)
    vr = VirtualRouter(RouterConfig(**base))  # type: ignore[arg-type]
    vr.handle(Started(ME), 0.0)
    return vr


def master(vr: VirtualRouter) -> None:
    deadline = vr.next_deadline()
    assert deadline is not None
    vr.handle(TimerFired(), deadline)
    assert vr.state is State.MASTER


def test_tie_break_compares_with_our_advert_source() -> None:
    """RFC 3768 6.4.3 with keepalived's saddr: unicast_src_ip, not the primary."""
    equal = PacketReceived(dgram(src=PEER))
    # Primary 192.0.2.11 < peer 192.0.2.12: the peer wins...
    vr = unicast_router()
    master(vr)
    vr.handle(equal, 10.0)
    assert vr.state is State.BACKUP
    # ...but our configured source 192.0.2.200 is higher: we stay MASTER.
    vr = unicast_router(src_ip=IPv4Address("192.0.2.200"))
    master(vr)
    vr.handle(equal, 10.0)
    assert vr.state is State.MASTER
    assert vr.status().master == IPv4Address("192.0.2.200")


def test_unicast_router_counts_multicast_adverts_as_addr_list_err() -> None:
    vr = unicast_router()
    vr.handle(PacketReceived(dgram(dst=VRRP_GROUP)), 1.0)
    assert vr.stats["addr_list_err"] == 1 and vr.stats["advert_rcvd"] == 0


# --- send targets ---------------------------------------------------------------------------


def test_send_target_from_config() -> None:
    c = conf(
        "unicast_src_ip 192.0.2.11\nunicast_ttl 9\nunicast_peer {\n 192.0.2.12\n 192.0.2.13\n}"
    )
    t = send_target(c.instances[0])
    assert t.dests == (PEER, IPv4Address("192.0.2.13")) and t.groups == ()
    assert t.src == ME and t.ttl == 9
    t = send_target(conf("", "vrrp_mcast_group4 224.0.0.19").instances[0])
    assert t.dests == (IPv4Address("224.0.0.19"),) and t.groups == t.dests and t.ttl == 255


def test_ancillary_data() -> None:
    """IP_PKTINFO only for a source other than the bound one; IP_TTL only for unicast."""
    assert _cmsgs(SendTarget(), VRRP_GROUP, 2, ME) == []
    assert _cmsgs(SendTarget((PEER,), ME, 255), PEER, 2, ME) == []
    cm = _cmsgs(SendTarget((PEER,), IPv4Address("192.0.2.20"), 3), PEER, 2, ME)
    assert cm[0][2] == struct.pack("=i4s4s", 2, IPv4Address("192.0.2.20").packed, bytes(4))
    assert cm[1][1] == socket.IP_TTL and cm[1][2] == struct.pack("=i", 3)
    # The kernel refuses TTL 0 on a datagram: sent as 1.
    assert _cmsgs(SendTarget((PEER,), None, 0), PEER, 2, ME)[0][2] == struct.pack("=i", 1)


# --- kernel filter --------------------------------------------------------------------------


def queue(paths: list[FastPath], pkt: bytes) -> str:
    fast, slow = split_filter(paths)
    f, s = run_bpf(fast, pkt), run_bpf(slow, pkt)
    assert (f != 0) != (s != 0)
    return "fast" if f else "slow"


def test_filter_fast_queues_unicast_adverts_from_peers_at_any_ttl() -> None:
    uni = FastPath(51, int(AuthType.NONE), 1, unicast=True, peers=(PEER,))
    assert queue([uni], dgram(ttl=64)) == "fast"
    assert queue([uni], dgram(src=OTHER)) == "slow"  # not a peer: slow queue, still read
    # Following the master: only its adverts.
    follows = FastPath(51, int(AuthType.NONE), 1, src=PEER, unicast=True, peers=(PEER,))
    assert queue([follows], dgram(ttl=200)) == "fast"
    assert queue([follows], dgram(src=OTHER)) == "slow"
    # A multicast router beside it still needs TTL 255.
    multi = FastPath(52, int(AuthType.NONE), 1)
    payload = encode_advert(52, 100, [VIP], 1, int(AuthType.NONE), b"")
    assert queue([uni, multi], build_ipv4(OTHER, VRRP_GROUP, payload, ttl=64)) == "slow"
    assert queue([uni, multi], build_ipv4(OTHER, VRRP_GROUP, payload)) == "fast"
