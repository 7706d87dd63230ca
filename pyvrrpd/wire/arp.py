"""Gratuitous ARP frames (RFC 826; RFC 3768 8.2; RFC 5227 3).

Owns: building the Ethernet + ARP frame a new master broadcasts for each
virtual IPv4 address, and parsing such frames back (tests, lab captures). The
frame is what keepalived sends: an ARP *request* with sender and target IP both
set to the VIP and target hardware address ff:ff:ff:ff:ff:ff. No sockets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

__all__ = [
    "ARPOP_REPLY",
    "ARPOP_REQUEST",
    "BROADCAST_MAC",
    "ETH_P_ARP",
    "GARP_FRAME_LEN",
    "ArpPacket",
    "build_garp",
    "parse_arp",
]

BROADCAST_MAC = b"\xff" * 6
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2

# Ethernet II header: destination, source, ethertype.
_ETH = struct.Struct("!6s6sH")
# RFC 826: htype, ptype, hlen, plen, op, sha, spa, tha, tpa (Ethernet/IPv4 sizes).
_ARP = struct.Struct("!HHBBH6s4s6s4s")
GARP_FRAME_LEN = _ETH.size + _ARP.size  # 14 + 28 = 42


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP frame. MACs are 6-byte ``bytes``."""

    eth_dst: bytes
    eth_src: bytes
    htype: int
    ptype: int
    hlen: int
    plen: int
    op: int
    sha: bytes
    spa: IPv4Address
    tha: bytes
    tpa: IPv4Address

    @property
    def is_gratuitous(self) -> bool:
        """RFC 5227 3: sender and target protocol addresses are the same."""
        return self.spa == self.tpa


def build_garp(mac: bytes, ip: IPv4Address) -> bytes:
    """Return the 42-byte gratuitous ARP request announcing ``ip`` at ``mac``.

    RFC 3768 8.2: on becoming master, broadcast a gratuitous ARP request for
    each virtual address. Raises ValueError if ``mac`` is not 6 bytes.
    """
    if len(mac) != 6:
        raise ValueError(f"MAC address must be 6 bytes, got {len(mac)}")
    eth = _ETH.pack(BROADCAST_MAC, bytes(mac), ETH_P_ARP)
    arp = _ARP.pack(
        ARPHRD_ETHER,
        ETH_P_IP,
        6,
        4,
        ARPOP_REQUEST,
        bytes(mac),
        ip.packed,
        BROADCAST_MAC,  # keepalived's choice; RFC 5227 would use zeros
        ip.packed,
    )
    return eth + arp


def parse_arp(frame: bytes) -> ArpPacket | None:
    """Parse an Ethernet II frame carrying an Ethernet/IPv4 ARP packet.

    Returns None when the frame is shorter than 42 bytes, the ethertype is not
    ARP, or the ARP packet is not Ethernet/IPv4 (hlen 6, plen 4). Trailing
    padding is ignored. Never raises for a ``bytes`` input.
    """
    if len(frame) < GARP_FRAME_LEN:
        return None
    eth_dst, eth_src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if hlen != 6 or plen != 4:
        return None
    return ArpPacket(
        eth_dst=eth_dst,
        eth_src=eth_src,
        htype=htype,
        ptype=ptype,
        hlen=hlen,
        plen=plen,
        op=op,
        sha=sha,
        spa=IPv4Address(spa),
        tha=tha,
        tpa=IPv4Address(tpa),
    )
