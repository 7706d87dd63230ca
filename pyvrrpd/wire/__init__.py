"""Wire formats: pure byte codecs for VRRPv2, IPv4 and gratuitous ARP.

Owns: converting between bytes and values, and validating received adverts
against configuration. Must not import socket, time, asyncio, subprocess or
any I/O layer: everything here is a pure function of its arguments.
"""

from pyvrrpd.wire.arp import ArpPacket, build_garp, parse_arp
from pyvrrpd.wire.check import Accepted, DropReason, Expect, Rejected, check_packet, peek_vrid
from pyvrrpd.wire.checksum import inet_checksum
from pyvrrpd.wire.ipv4 import IPv4Header, build_ipv4, parse_ipv4
from pyvrrpd.wire.vrrp import (
    VRRP_GROUP,
    VRRP_PROTO,
    Advert,
    AuthType,
    advert_length,
    decode_advert,
    encode_advert,
)

__all__ = [
    "VRRP_GROUP",
    "VRRP_PROTO",
    "Accepted",
    "Advert",
    "ArpPacket",
    "AuthType",
    "DropReason",
    "Expect",
    "IPv4Header",
    "Rejected",
    "advert_length",
    "build_garp",
    "build_ipv4",
    "check_packet",
    "decode_advert",
    "encode_advert",
    "inet_checksum",
    "parse_arp",
    "parse_ipv4",
    "peek_vrid",
]
