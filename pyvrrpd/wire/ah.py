"""keepalived's IPsec-AH-style VRRPv2 authentication (``auth_type AH``), on the wire.

Owns: the bytes of an AH-protected advert (building one, splitting and
verifying a received one) and the anti-replay sequence counter. No sockets,
no clock.

RFC 2338 5.3.6.3 let VRRPv2 use the IP Authentication Header (RFC 2402) with
HMAC-MD5-96 (RFC 2403); RFC 3768 removed it. keepalived 2.2.7 still speaks its
own manual variant: no IPsec SA and no kernel involvement, the daemon writes
and checks the AH header itself. The format below was read from keepalived
2.2.7 (vrrp.c, vrrp_ipsecah.c/.h) and checked against a capture
(tests/data/golden_keepalived_227_ah_advert.hex)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  IPv4 header, 20 bytes: TOS 0xC0, ID != 0, protocol 51 (AH)   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | Next Hdr = 112|  Payload Len=4|          Reserved = 0         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Security Parameters Index = the sender's IPv4 source address|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 Sequence Number (1, 2, 3 ...)                 |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |        ICV: HMAC-MD5 truncated to 96 bits (12 bytes)          |
    |                                                               |
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  VRRPv2 message (RFC 3768 5.1), Auth Type 2, the 8 auth bytes |
    |  all zero, checksum over the VRRP message only                |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The ICV is HMAC-MD5 (RFC 2104) keyed with the 8-byte ``auth_pass`` (zero
padded, as for PASS) over the IP header, the AH header and the VRRP message,
with the mutable IP fields TOS, flags/fragment offset and header checksum
zeroed and the ICV field zeroed (RFC 2402 3.3.3.1). The TTL is part of the
MAC for multicast adverts (it must be 255 anyway) and zeroed when the
instance uses unicast peers. The IP identification is covered, so the
sender must choose it (a zero ID would be filled in by the kernel after the
MAC was computed); keepalived counts it up from 1.

One counter per instance is shared by sending and receiving
(``ipsecah_counter`` in keepalived): a sender puts counter + 1 on each advert;
a receiver accepts only a sequence number above the counter and then raises
the counter to it. So a BACKUP that takes over continues the old master's
numbering, and a restarted master (counter 0) has its adverts dropped as
replays until it has heard the peer's numbers again (keepalived behaves the
same; the group settles within a few advert intervals).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_PROTO

__all__ = [
    "AH_HEADER_LEN",
    "AH_PROTO",
    "ICV_LEN",
    "AhHeader",
    "AhSequence",
    "build_ah_datagram",
    "compute_icv",
    "parse_ah",
    "verify_icv",
]

# RFC 2402 2 / IANA: the AH protocol number.
AH_PROTO = 51
# RFC 2403 2: HMAC-MD5-96 keeps the first 96 bits of the MAC.
ICV_LEN = 12
# RFC 2402 2.2: Payload Len is the AH length in 32-bit words minus 2:
# (12 fixed + 12 ICV) / 4 - 2 = 4.
AH_PAYLOAD_LEN = 4
_AH = struct.Struct("!BBH4sI12s")
AH_HEADER_LEN = _AH.size  # 24
# keepalived stops counting at 0xFFFFFFFD (136 years of 1 s adverts).
_SEQ_LIMIT = 0xFFFFFFFD
_KEY_LEN = 8  # RFC 3768 5.3.10 / keepalived: auth_pass is 8 bytes, zero padded


@dataclass(frozen=True, slots=True)
class AhHeader:
    """A parsed AH header (RFC 2402 2); ``spi`` as the address it encodes."""

    next_header: int
    payload_len: int
    spi: IPv4Address
    seq: int
    icv: bytes


class AhSequence:
    """keepalived's per-instance anti-replay counter, shared by send and receive."""

    __slots__ = ("seq",)

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq

    def next_send(self) -> int:
        """The sequence number for the next advert we send (counter + 1)."""
        if self.seq <= _SEQ_LIMIT:
            self.seq += 1
        return self.seq

    def accept(self, seq: int) -> bool:
        """Anti-replay: True (and remember ``seq``) only if it is above the counter."""
        if seq > self.seq:
            self.seq = seq
            return True
        return False

    def __repr__(self) -> str:
        return f"AhSequence(seq={self.seq})"


def _key(auth_pass: bytes) -> bytes:
    return bytes(auth_pass[:_KEY_LEN]).ljust(_KEY_LEN, b"\x00")


def compute_icv(datagram: bytes, ihl: int, auth_pass: bytes, unicast: bool) -> bytes:
    """The 12-byte ICV of ``datagram`` (IP header of ``ihl`` bytes, AH, VRRP).

    Mutable IP fields and the ICV are zeroed first (module docstring); bytes
    past the IP total length are not covered.
    """
    hdr = bytearray(datagram[:ihl])
    hdr[1] = 0  # TOS
    hdr[6:8] = b"\x00\x00"  # flags + fragment offset
    hdr[10:12] = b"\x00\x00"  # header checksum
    if unicast:
        hdr[8] = 0  # TTL: routers on the way change it
    ah = bytearray(datagram[ihl : ihl + AH_HEADER_LEN])
    ah[12:24] = bytes(ICV_LEN)
    total = struct.unpack_from("!H", datagram, 2)[0]
    rest = datagram[ihl + AH_HEADER_LEN : total]
    mac = hmac.new(_key(auth_pass), bytes(hdr) + bytes(ah) + rest, hashlib.md5)
    return mac.digest()[:ICV_LEN]


def parse_ah(datagram: bytes, ihl: int) -> AhHeader | None:
    """The AH header after an IP header of ``ihl`` bytes, or None if it is cut short."""
    if len(datagram) < ihl + AH_HEADER_LEN:
        return None
    nxt, plen, _reserved, spi, seq, icv = _AH.unpack_from(datagram, ihl)
    return AhHeader(nxt, plen, IPv4Address(spi), seq, bytes(icv))


def verify_icv(datagram: bytes, ihl: int, auth_pass: bytes, unicast: bool) -> bool:
    """True if the AH ICV in ``datagram`` matches (constant-time compare)."""
    ah = parse_ah(datagram, ihl)
    if ah is None:
        return False
    return hmac.compare_digest(ah.icv, compute_icv(datagram, ihl, auth_pass, unicast))


def build_ah_datagram(
    src: IPv4Address,
    dst: IPv4Address,
    vrrp_payload: bytes,
    *,
    seq: int,
    ident: int,
    auth_pass: bytes,
    unicast: bool = False,
    ttl: int = 255,
) -> bytes:
    """A whole IPv4 datagram carrying ``vrrp_payload`` under AH, as keepalived sends it.

    ``vrrp_payload`` is the encoded VRRPv2 message (auth type 2, zero auth
    data). ``ident`` must not be 0 (the kernel would replace it after the
    MAC was computed). The IP header checksum is filled in (the kernel
    recomputes it for an IP_HDRINCL socket anyway).
    """
    if not 1 <= ident <= 0xFFFF:
        raise ValueError(f"IP identification must be 1..65535, got {ident}")
    ah = _AH.pack(VRRP_PROTO, AH_PAYLOAD_LEN, 0, src.packed, seq, bytes(ICV_LEN))
    # keepalived's vrrp_build_ip4(): TOS 0xC0, no DF, protocol 51. The ICV
    # is computed with the header checksum zeroed, so the finished header fits.
    unsigned = build_ipv4(
        src, dst, ah + vrrp_payload, ttl=ttl, tos=0xC0, proto=AH_PROTO, ident=ident
    )
    icv = compute_icv(unsigned, 20, auth_pass, unicast)
    return unsigned[: 20 + 12] + icv + vrrp_payload
