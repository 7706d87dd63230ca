"""Malformed and hostile adverts from a third host: dropped, counted, no flap, no crash."""

from __future__ import annotations

import os
import socket
import time
from ipaddress import IPv4Address

import pytest

from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert
from tests.netns._nshelp import in_netns
from tests.netns._pair import Pair, wait_for

pytestmark = pytest.mark.netns

INJ = IPv4Address("192.0.2.66")
VIP = IPv4Address("192.0.2.10")


def good(prio: int = 200, **kw: object) -> bytes:
    return encode_advert(
        51,
        prio,
        [VIP],
        int(kw.get("advert_int", 1)),  # type: ignore[call-overload]
        int(kw.get("auth_type", AuthType.PASS)),  # type: ignore[call-overload]
        kw.get("auth", b"1111"),  # type: ignore[arg-type]
    )


def with_checksum_broken(payload: bytes) -> bytes:
    return payload[:6] + bytes([payload[6] ^ 0xFF]) + payload[7:]


# (expected counter, datagram). Each would, if accepted, take the VIP away
# from lb1 (priority 255-ish or priority 0 from "the master").
HOSTILE: list[tuple[str, bytes]] = [
    ("ip_ttl_err", build_ipv4(INJ, VRRP_GROUP, good(254), ttl=64)),
    ("auth_failure", build_ipv4(INJ, VRRP_GROUP, good(254, auth=b"hacked"))),
    ("auth_failure", build_ipv4(INJ, VRRP_GROUP, good(0, auth=b"hacked"))),
    ("authtype_mismatch", build_ipv4(INJ, VRRP_GROUP, good(254, auth_type=0, auth=b""))),
    ("advert_interval_err", build_ipv4(INJ, VRRP_GROUP, good(254, advert_int=3))),
    ("checksum_err", build_ipv4(INJ, VRRP_GROUP, with_checksum_broken(good(254)))),
    ("packet_len_err", build_ipv4(INJ, VRRP_GROUP, good(254)[:-5])),
    # A CARP advert (ucarp/pfSense) shares protocol 112 and the group: 36 bytes.
    ("packet_len_err", build_ipv4(INJ, VRRP_GROUP, bytes([0x21, 51, 0, 7, 0, 1]) + bytes(30))),
    # A VRRPv3 advert (RFC 5798: 8 + 4n bytes, no auth field): a version error,
    # as in keepalived; a v3 header with the v2 length is a length error.
    ("version_err", build_ipv4(INJ, VRRP_GROUP, bytes([0x31]) + good(254)[1:-8])),
]


def send_raw(ns: str, datagrams: list[bytes]) -> None:
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(str(INJ)))
        for d in datagrams:
            s.sendto(d, (str(VRRP_GROUP), 0))
    finally:
        s.close()


def test_hostile_packets_are_dropped_and_counted(pair: Pair) -> None:
    pair.start("lb1", 100)
    pair.start("lb2", 90)
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=8.0) is not None
    before = {h: pair.status(h)["stats"] for h in ("lb1", "lb2")}
    send_raw(pair.ns("inj"), [d for _, d in HOSTILE] * 3)
    # Random garbage with our protocol number too.
    send_raw(pair.ns("inj"), [build_ipv4(INJ, VRRP_GROUP, os.urandom(n)) for n in range(0, 60, 3)])
    time.sleep(0.3)
    # Over the following master-down interval nothing moves.
    assert wait_for(lambda: pair.holders() != ["lb1"], timeout=4.0) is None
    for host in ("lb1", "lb2"):
        assert pair.procs[host].poll() is None, f"{host} died"
        st = pair.status(host)
        stats = st["stats"]
        assert isinstance(stats, dict)
        for reason in {r for r, _ in HOSTILE}:
            expected = 3 * sum(1 for r, _ in HOSTILE if r == reason)
            assert stats[reason] - before[host][reason] >= expected, (host, reason, stats)  # type: ignore[index]
        assert "Traceback" not in pair.log(host)
    assert pair.status("lb1")["state"] == "MASTER"
    # No transition since the injection started (lb2 may have been master for a
    # moment at start-up if it won the race to its first timer).
    after = {h: pair.status(h)["stats"] for h in ("lb1", "lb2")}
    assert after["lb1"]["release_master"] == before["lb1"]["release_master"]  # type: ignore[index]
    assert after["lb2"]["become_master"] == before["lb2"]["become_master"]  # type: ignore[index]
