"""Gratuitous ARP on takeover as keepalived sends it: 5 at once, 5 more after garp_master_delay."""

from __future__ import annotations

import socket
import time
from ipaddress import IPv4Address

import pytest

from pyvrrpd.wire.arp import parse_arp
from tests.netns._nshelp import in_netns
from tests.netns._pair import Pair, wait_for

pytestmark = pytest.mark.netns

VIP = IPv4Address("192.0.2.10")


def test_garp_bursts_on_becoming_master(pair: Pair) -> None:
    with in_netns(pair.ns("inj")):
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    try:
        cap.bind(("eth0", 0))
        cap.settimeout(0.1)
        pair.start("lb1", 100, extra="  garp_master_delay 2")
        t_end = time.monotonic() + 3.7 + 2 + 1.5
        seen: list[float] = []
        while time.monotonic() < t_end:
            try:
                frame = cap.recv(2048)
            except TimeoutError:
                continue
            arp = parse_arp(frame)
            if arp is not None and arp.op == 1 and arp.spa == VIP and arp.tpa == VIP:
                assert arp.tha == b"\xff" * 6
                assert arp.eth_dst == b"\xff" * 6
                seen.append(time.monotonic())
    finally:
        cap.close()
    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=1.0) is not None
    assert len(seen) == 10, seen
    first, second = seen[:5], seen[5:]
    assert first[-1] - first[0] < 0.1
    gap = second[0] - first[0]
    print(f"GARP: 5 frames in {first[-1] - first[0]:.4f} s, second burst {gap:.3f} s later")
    assert 1.8 < gap < 2.5
