"""pyvrrpd.io.vrrp_socket and garp on a veth pair between two private namespaces (root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root: network namespaces", allow_module_level=True)

from _nshelp import Topology, in_netns, ip, two_namespaces

from pyvrrpd.io.errors import HostError
from pyvrrpd.io.garp import GarpSender
from pyvrrpd.io.vrrp_socket import VrrpSocket
from pyvrrpd.wire.arp import ETH_P_ARP, ArpPacket, parse_arp

pytestmark = pytest.mark.netns

VIP = IPv4Address("192.0.2.100")
VIP2 = IPv4Address("192.0.2.101")
# Any bytes will do: the kernel does not look inside the protocol-112 payload.
PAYLOAD_A = bytes.fromhex("213396020001c4b2c0000264") + b"\0" * 8
PAYLOAD_B = bytes.fromhex("213364020001ffffc0000264") + b"\0" * 8


@pytest.fixture
def topo() -> Iterator[Topology]:
    with two_namespaces() as t:
        yield t


def _open(topo: Topology, side: str) -> VrrpSocket:
    ns, ifname, addr = (
        (topo.ns_a, topo.if_a, topo.ip_a) if side == "a" else (topo.ns_b, topo.if_b, topo.ip_b)
    )
    with in_netns(ns):
        return VrrpSocket.open(ifname, topo.ifindex(side), IPv4Address(addr))


def test_vrrp_send_receive(topo: Topology) -> None:
    # A /32 VIP on A's interface must not become the advert's source.
    ip("-n", topo.ns_a, "addr", "add", f"{VIP}/32", "dev", topo.if_a)
    sa = _open(topo, "a")
    sb = _open(topo, "b")
    try:

        async def main() -> tuple[list[bytes], list[bytes], float]:
            loop = asyncio.get_running_loop()
            got_a: list[bytes] = []
            got_b: list[bytes] = []
            sa.attach(loop, got_a.append)
            sb.attach(loop, got_b.append)
            for _ in range(3):
                sa.send(PAYLOAD_A)
            sb.send(PAYLOAD_B)
            # A burst: all of it is drained, none lost.
            t0 = time.perf_counter()
            for _ in range(200):
                sa.send(PAYLOAD_A)
            per_send = (time.perf_counter() - t0) / 200
            for _ in range(100):
                if len(got_b) >= 203 and got_a:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            sa.detach()
            sb.detach()
            return got_a, got_b, per_send

        got_a, got_b, per_send = asyncio.run(main())
    finally:
        sa.close()
        sb.close()

    assert len(got_b) == 203
    d = got_b[0]
    ihl = (d[0] & 0x0F) * 4
    assert d[0] >> 4 == 4
    assert d[1] == 0xC0, f"TOS {d[1]:#x}"
    assert d[8] == 255, f"TTL {d[8]}"
    assert d[9] == 112
    assert socket.inet_ntoa(d[12:16]) == topo.ip_a  # primary, not the VIP
    assert socket.inet_ntoa(d[16:20]) == "224.0.0.18"
    assert d[ihl:] == PAYLOAD_A
    # Loop is off: A sees only B's advert, never its own.
    assert len(got_a) == 1
    assert socket.inet_ntoa(got_a[0][12:16]) == topo.ip_b
    assert got_a[0][20:] == PAYLOAD_B
    print(f"\nVrrpSocket.send: {per_send * 1e6:.1f} us per advert; 203/203 received")


def test_vrrp_open_errors(topo: Topology) -> None:
    with in_netns(topo.ns_a):
        with pytest.raises(HostError, match=r"^interface 'pvnope0' not found$"):
            VrrpSocket.open("pvnope0", 999, IPv4Address(topo.ip_a))
        with pytest.raises(HostError, match="is not a local address"):
            VrrpSocket.open(topo.if_a, topo.ifindex("a"), IPv4Address("192.0.2.77"))


def test_garp_frames(topo: Topology) -> None:
    mac_a = topo.mac("a")
    with in_netns(topo.ns_b):
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        cap.bind((topo.if_b, ETH_P_ARP))
        cap.settimeout(2)
        with in_netns(topo.ns_a):
            g = GarpSender.open(topo.if_a, mac_a)
        try:
            t0 = time.perf_counter()
            n = g.send([VIP, VIP2], repeat=3)
            dt = time.perf_counter() - t0
        finally:
            g.close()
        assert n == 6
        frames: list[ArpPacket] = []
        while len(frames) < 6:
            pkt = parse_arp(cap.recv(2048))
            if pkt is not None and pkt.spa in (VIP, VIP2):
                frames.append(pkt)
    finally:
        cap.close()
    # Interleaved like keepalived: each round sends every VIP once.
    assert [f.spa for f in frames] == [VIP, VIP2] * 3
    for f in frames:
        assert f.op == 1
        assert f.eth_dst == b"\xff" * 6 and f.eth_src == mac_a
        assert f.sha == mac_a
        assert f.spa == f.tpa
        assert f.tha == b"\xff" * 6
    print(f"\nGarpSender.send: 6 frames in {dt * 1e6:.0f} us")


def test_garp_open_errors(topo: Topology) -> None:
    with in_netns(topo.ns_a):
        with pytest.raises(HostError, match=r"^interface 'pvnope0' not found$"):
            GarpSender.open("pvnope0", b"\x02" * 6)
        with pytest.raises(HostError, match="MAC must be 6 bytes"):
            GarpSender.open(topo.if_a, b"\x02")
