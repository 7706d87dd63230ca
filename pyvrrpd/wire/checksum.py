"""The Internet checksum (RFC 1071).

Owns: the one's-complement 16-bit checksum used by both the IPv4 header
(RFC 791 3.1) and the VRRPv2 message (RFC 3768 5.3.8). Pure function, no I/O.
"""

from __future__ import annotations

import struct

__all__ = ["inet_checksum"]


def inet_checksum(data: bytes) -> int:
    """Return the RFC 1071 checksum of ``data`` as an int in 0..0xFFFF.

    An odd-length input is padded with one zero byte (RFC 1071 4.1). Over a
    message whose checksum field already holds the right value the result is 0,
    which is how receivers verify it.
    """
    if len(data) % 2:
        data = data + b"\x00"
    # RFC 1071 4.1: sum the big-endian 16-bit words in a wide accumulator.
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    # RFC 1071 4.1: fold the carries back into the low 16 bits.
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
