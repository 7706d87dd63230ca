"""VRRPv2 advertisement codec (RFC 3768 5; auth types from RFC 2338 5.3.6).

Owns: the byte layout of a VRRPv2 message, encoding an advertisement to send
and decoding one that was received. Validation of a received packet against
local configuration lives in :mod:`pyvrrpd.wire.check`; this module only
converts between bytes and values. No sockets, no clock.

RFC 3768 5.1, packet format (the IP header is not part of the payload)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Auth Type   |   Adver Int   |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                         IP Address (1)                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                            .                                  |
    |                            .                                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                         IP Address (n)                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     Authentication Data (1)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     Authentication Data (2)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The message is always ``8 + 4n + 8`` bytes long. The checksum covers the whole
VRRP message with the checksum field zeroed, and there is no pseudo-header
(RFC 3768 5.3.8).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from pyvrrpd.wire.checksum import inet_checksum

__all__ = [
    "AUTH_DATA_LEN",
    "VRRP_FIXED_LEN",
    "VRRP_GROUP",
    "VRRP_PROTO",
    "VRRP_TYPE_ADVERT",
    "VRRP_VERSION",
    "Advert",
    "AuthType",
    "advert_length",
    "decode_advert",
    "encode_advert",
]

# RFC 3768 5.2.4: IANA protocol number for VRRP.
VRRP_PROTO = 112
# RFC 3768 5.2.2: the IPv4 multicast group adverts are sent to.
VRRP_GROUP = IPv4Address("224.0.0.18")
# RFC 3768 5.3.1: this is version 2.
VRRP_VERSION = 2
# RFC 3768 5.3.2: the only defined type.
VRRP_TYPE_ADVERT = 1
# RFC 3768 5.3.10: the authentication data field is always 8 bytes.
AUTH_DATA_LEN = 8

# RFC 3768 5.1: the 8 fixed bytes before the address list.
_FIXED = struct.Struct("!BBBBBBH")
VRRP_FIXED_LEN = _FIXED.size  # 8


class AuthType(IntEnum):
    """RFC 2338 5.3.6 auth types. RFC 3768 keeps only NONE (1 and 2 are "reserved"),
    but keepalived still sends PASS, so we speak it for interoperability."""

    NONE = 0
    PASS = 1  # RFC 2338 5.3.6.2: simple text password, 8 bytes zero-padded
    AH = 2  # RFC 2338 5.3.6.3: IP Authentication Header (not implemented here)


@dataclass(frozen=True, slots=True)
class Advert:
    """A decoded VRRPv2 message. ``len(addresses)`` is the Count IP Addrs byte."""

    version: int
    type: int
    vrid: int
    priority: int
    auth_type: int
    advert_int: int
    checksum: int
    addresses: tuple[IPv4Address, ...]
    auth_data: bytes


def advert_length(count: int) -> int:
    """RFC 3768 5.1: the exact length of a VRRPv2 message with ``count`` addresses."""
    return VRRP_FIXED_LEN + 4 * count + AUTH_DATA_LEN


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")


def encode_advert(
    vrid: int,
    priority: int,
    addresses: Sequence[IPv4Address],
    advert_int: int = 1,
    auth_type: int = 0,
    auth_data: bytes = b"",
) -> bytes:
    """Build the VRRPv2 payload of an advertisement (RFC 3768 7.2), checksum included.

    ``auth_data`` is zero-padded or truncated to 8 bytes (keepalived pads a
    short ``auth_pass`` with zeros). Raises ValueError for a VRID outside
    1..255 (RFC 3768 5.3.3), priority outside 0..255 (5.3.4), more than 255
    addresses (5.3.5, one count byte), an advert interval outside 1..255
    seconds (5.3.7) or an auth type that does not fit in a byte.
    """
    _check_range("vrid", vrid, 1, 255)
    _check_range("priority", priority, 0, 255)
    _check_range("address count", len(addresses), 0, 255)
    _check_range("advert_int", advert_int, 1, 255)
    _check_range("auth_type", auth_type, 0, 255)
    # RFC 3768 5.3.1/5.3.2: version in the high nibble, type in the low one.
    ver_type = (VRRP_VERSION << 4) | VRRP_TYPE_ADVERT
    body = b"".join(IPv4Address(a).packed for a in addresses)
    auth = bytes(auth_data[:AUTH_DATA_LEN]).ljust(AUTH_DATA_LEN, b"\x00")
    fixed = (ver_type, vrid, priority, len(addresses), auth_type, advert_int)
    # RFC 3768 5.3.8: checksum computed with the checksum field set to zero.
    csum = inet_checksum(_FIXED.pack(*fixed, 0) + body + auth)
    return _FIXED.pack(*fixed, csum) + body + auth


def decode_advert(payload: bytes) -> Advert | None:
    """Decode a VRRPv2 message (the IP payload).

    Returns None when ``payload`` is shorter than the ``8 + 4n + 8`` bytes its
    count byte implies. Longer input is decoded (trailing bytes ignored); the
    exact-length rule is enforced by :func:`pyvrrpd.wire.check.check_packet`.
    Nothing is validated here: any version, type or checksum is reported as
    read. Never raises for a ``bytes`` input.
    """
    if len(payload) < VRRP_FIXED_LEN:
        return None
    ver_type, vrid, priority, count, auth_type, advert_int, csum = _FIXED.unpack_from(payload)
    end = advert_length(count)
    if len(payload) < end:
        return None
    addr_end = VRRP_FIXED_LEN + 4 * count
    addresses = tuple(
        IPv4Address(payload[off : off + 4]) for off in range(VRRP_FIXED_LEN, addr_end, 4)
    )
    return Advert(
        version=ver_type >> 4,
        type=ver_type & 0x0F,
        vrid=vrid,
        priority=priority,
        auth_type=auth_type,
        advert_int=advert_int,
        checksum=csum,
        addresses=addresses,
        auth_data=bytes(payload[addr_end:end]),
    )
