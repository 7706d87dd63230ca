"""IPv4 header parsing and building (RFC 791 3.1).

Owns: the fixed 20-byte IPv4 header as a value object, a tolerant parser for
datagrams handed over by a raw socket, and a builder used by tests and packet
injectors (the daemon itself lets the kernel build its IP headers). Options
are skipped over, never interpreted. No sockets, no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from pyvrrpd.wire.checksum import inet_checksum

__all__ = ["IPV4_MIN_HEADER", "IPv4Header", "build_ipv4", "parse_ipv4"]

# RFC 791 3.1: version/IHL, TOS, total length, identification, flags+fragment
# offset, TTL, protocol, header checksum, source, destination.
_HDR = struct.Struct("!BBHHHBBH4s4s")
IPV4_MIN_HEADER = _HDR.size  # 20


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """A parsed IPv4 header. ``ihl_bytes`` is the header length in bytes (IHL * 4)."""

    version: int
    ihl_bytes: int
    tos: int
    total_length: int
    ident: int
    flags_frag: int
    ttl: int
    proto: int
    checksum: int
    src: IPv4Address
    dst: IPv4Address


def parse_ipv4(datagram: bytes) -> IPv4Header | None:
    """Parse the IPv4 header at the start of ``datagram``.

    Returns None when the buffer is shorter than 20 bytes, the version is not
    4, or the header length (IHL * 4) is below 20 or beyond the buffer. The
    header checksum is reported, not verified (the kernel already did that).
    Never raises for a ``bytes`` input.
    """
    if len(datagram) < IPV4_MIN_HEADER:
        return None
    vihl, tos, total_length, ident, flags_frag, ttl, proto, csum, src, dst = _HDR.unpack_from(
        datagram
    )
    version = vihl >> 4
    ihl_bytes = (vihl & 0x0F) * 4
    if version != 4 or ihl_bytes < IPV4_MIN_HEADER or ihl_bytes > len(datagram):
        return None
    return IPv4Header(
        version=version,
        ihl_bytes=ihl_bytes,
        tos=tos,
        total_length=total_length,
        ident=ident,
        flags_frag=flags_frag,
        ttl=ttl,
        proto=proto,
        checksum=csum,
        src=IPv4Address(src),
        dst=IPv4Address(dst),
    )


def build_ipv4(
    src: IPv4Address,
    dst: IPv4Address,
    payload: bytes,
    ttl: int = 255,
    tos: int = 0xC0,
    proto: int = 112,
    ident: int = 0,
) -> bytes:
    """Return an IPv4 datagram (20-byte header, no options) carrying ``payload``.

    Defaults match what keepalived puts on the wire for an advert: TOS 0xC0
    (precedence "internetwork control"), TTL 255 (RFC 3768 5.2.3), protocol
    112, DF not set. The header checksum is filled in (RFC 791 3.1).
    """
    total_length = IPV4_MIN_HEADER + len(payload)
    if total_length > 0xFFFF:
        raise ValueError(f"payload too long for IPv4: {len(payload)} bytes")
    fields = (0x45, tos, total_length, ident, 0, ttl, proto)
    header = _HDR.pack(*fields, 0, src.packed, dst.packed)
    header = _HDR.pack(*fields, inet_checksum(header), src.packed, dst.packed)
    return header + payload
