"""Gratuitous ARP frames, checked field by field with scapy's Ether/ARP dissectors."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether

from pyvrrpd.wire.arp import ArpPacket, build_garp, parse_arp

MAC = bytes.fromhex("020000aabbcc")
VIP = IPv4Address("192.0.2.100")


def test_garp_frame_bytes() -> None:
    frame = build_garp(MAC, VIP)
    assert len(frame) == 42
    assert frame == bytes.fromhex(
        "ffffffffffff 020000aabbcc 0806"  # Ethernet: broadcast, our MAC, ARP
        " 0001 0800 06 04 0001"  # htype Ethernet, ptype IPv4, hlen, plen, op request
        " 020000aabbcc c0000264"  # sender: our MAC, the VIP
        " ffffffffffff c0000264"  # target: broadcast MAC, the VIP
    )


def test_garp_dissected_by_scapy() -> None:
    pkt = Ether(build_garp(MAC, VIP))
    assert pkt.dst == "ff:ff:ff:ff:ff:ff"
    assert pkt.src == "02:00:00:aa:bb:cc"
    assert pkt.type == 0x0806
    arp = pkt[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)
    assert arp.hwsrc == "02:00:00:aa:bb:cc"
    assert arp.psrc == arp.pdst == "192.0.2.100"
    assert arp.hwdst == "ff:ff:ff:ff:ff:ff"


def test_parse_own_garp() -> None:
    assert parse_arp(build_garp(MAC, VIP)) == ArpPacket(
        eth_dst=b"\xff" * 6,
        eth_src=MAC,
        htype=1,
        ptype=0x0800,
        hlen=6,
        plen=4,
        op=1,
        sha=MAC,
        spa=VIP,
        tha=b"\xff" * 6,
        tpa=VIP,
    )


def test_parse_scapy_reply_with_padding() -> None:
    frame = bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / ARP(op=2, hwsrc="02:00:00:00:00:01", psrc="192.0.2.1", pdst="192.0.2.2")
    )
    frame += bytes(18)  # padded to the 60-byte Ethernet minimum
    arp = parse_arp(frame)
    assert arp is not None
    assert (arp.op, arp.spa, arp.tpa) == (2, IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"))
    assert arp.sha == bytes.fromhex("020000000001")
    assert not arp.is_gratuitous
    garp = parse_arp(build_garp(MAC, VIP))
    assert garp is not None and garp.is_gratuitous


def test_parse_rejects_non_arp() -> None:
    frame = build_garp(MAC, VIP)
    assert parse_arp(frame[:41]) is None
    assert parse_arp(frame[:12] + b"\x08\x00" + frame[14:]) is None  # IPv4 ethertype
    assert parse_arp(frame[:18] + b"\x08" + frame[19:]) is None  # hlen 8


def test_build_rejects_bad_mac() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        build_garp(b"\x00" * 5, VIP)


@given(st.binary(min_size=6, max_size=6), st.integers(0, 2**32 - 1).map(IPv4Address))
def test_round_trip(mac: bytes, ip: IPv4Address) -> None:
    arp = parse_arp(build_garp(mac, ip))
    assert arp is not None
    assert (arp.sha, arp.eth_src, arp.spa, arp.tpa, arp.op) == (mac, mac, ip, ip, 1)


@given(st.binary(max_size=80))
def test_parse_never_raises(data: bytes) -> None:
    arp = parse_arp(data)
    assert arp is None or (arp.hlen, arp.plen) == (6, 4)
