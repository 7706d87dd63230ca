"""Receive-side validation of VRRPv2 advertisements (RFC 3768 7.1).

Owns: the decision whether one received IPv4 datagram is an acceptable
advertisement for one configured virtual router, and the reason when it is
not. The checks run in keepalived's order (``vrrp_check_packet()``), so that
the first failing check, and therefore the counter a peer operator sees
incremented, matches keepalived. Drop reasons are named after keepalived's
stats keys where one exists. Pure functions: no sockets, no clock, no logging
(the caller logs ``Rejected.detail`` and counts ``Rejected.reason``).

keepalived's IPsec-AH-style auth (type 2, :mod:`pyvrrpd.wire.ah`): an
AH-protected advert arrives with IP protocol 51 and the AH header before the
VRRP message. The one side effect here is the AH anti-replay counter
(``Expect.ah_seq``), raised when an advert's ICV verifies, as keepalived does.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address

from pyvrrpd.wire.ah import AH_HEADER_LEN, AH_PROTO, AhSequence, parse_ah, verify_icv
from pyvrrpd.wire.checksum import inet_checksum
from pyvrrpd.wire.ipv4 import IPv4Header, parse_ipv4
from pyvrrpd.wire.vrrp import (
    AUTH_DATA_LEN,
    VRRP_FIXED_LEN,
    VRRP_PROTO,
    VRRP_TYPE_ADVERT,
    VRRP_VERSION,
    Advert,
    AuthType,
    advert_length,
    decode_advert,
)

__all__ = ["Accepted", "DropReason", "Expect", "Peer", "Rejected", "check_packet", "peek_vrid"]

# RFC 3768 5.2.3 / 7.1: a VRRP router MUST discard a packet whose TTL is not 255.
_REQUIRED_TTL = 255
_KNOWN_AUTH_TYPES = frozenset(int(a) for a in AuthType)


class DropReason(StrEnum):
    """Why a datagram was dropped. Values equal keepalived's stats keys where one exists."""

    NOT_IPV4_VRRP = "not_ipv4_vrrp"  # IP header unparsable, or protocol is not 112
    OWN_PACKET = "own_packet"  # sent by one of our own addresses (multicast loop)
    PACKET_LEN_ERR = "packet_len_err"
    IP_TTL_ERR = "ip_ttl_err"
    VERSION_ERR = "version_err"
    INVALID_AUTHTYPE = "invalid_authtype"
    AUTHTYPE_MISMATCH = "authtype_mismatch"
    AUTH_FAILURE = "auth_failure"
    ADVERT_INTERVAL_ERR = "advert_interval_err"
    INVALID_TYPE_RCVD = "invalid_type_rcvd"
    CHECKSUM_ERR = "checksum_err"
    VRID_MISMATCH = "vrid_mismatch"
    # keepalived counts a unicast instance receiving multicast (or the reverse)
    # as addr_list_err (vrrp.c check_packet, keepalived.md 2.10 row 11).
    ADDR_LIST_ERR = "addr_list_err"
    NOT_UNICAST_PEER = "not_unicast_peer"  # keepalived only logs it (2.10 row 13)


@dataclass(frozen=True, slots=True)
class Peer:
    """A `unicast_peer` and the TTL range its adverts must arrive with."""

    address: IPv4Address
    min_ttl: int = 0
    max_ttl: int = 255


@dataclass(frozen=True, slots=True)
class Expect:
    """What the local virtual router is configured with.

    ``auth_data`` is compared as 8 bytes (shorter values are zero-padded, as
    keepalived pads ``auth_pass``). ``local_ips`` are this host's addresses on
    the interface; a datagram from one of them is our own looped-back advert.
    ``check_ttl`` is False only for unicast peers, where keepalived skips the
    TTL check.

    ``unicast``: the instance has unicast peers, so it expects unicast
    destinations (multicast ones otherwise). ``check_unicast_src``: drop a
    unicast advert whose source is not one of ``peers`` or whose TTL is outside
    that peer's range (check_unicast_src, vrrp_check_unicast_src, or a
    min_ttl/max_ttl on a peer).
    """

    vrid: int
    advert_int: int
    auth_type: int
    auth_data: bytes
    vips: frozenset[IPv4Address]
    local_ips: frozenset[IPv4Address] = field(default_factory=frozenset)
    check_ttl: bool = True
    unicast: bool = False
    peers: tuple[Peer, ...] = ()
    check_unicast_src: bool = False
    # auth_type AH: the instance's anti-replay counter (wire.ah), shared with
    # the sender; None for other auth types.
    ah_seq: AhSequence | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The datagram passed every check.

    ``addr_list_ok`` is False when the advertised addresses differ from our
    VIPs; like keepalived 2.3.3+ this does not drop the packet (the caller
    warns and counts ``addr_list_err``).
    """

    src: IPv4Address
    ttl: int
    advert: Advert
    addr_list_ok: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """The datagram was dropped; ``detail`` is a one-line message for the log."""

    reason: DropReason
    src: IPv4Address | None
    detail: str


def _pad_auth(data: bytes) -> bytes:
    return bytes(data[:AUTH_DATA_LEN]).ljust(AUTH_DATA_LEN, b"\x00")


def _vrrp_part(ip: IPv4Header, datagram: bytes) -> bytes | None:
    """The VRRP message inside ``datagram``, or None if the IP lengths are inconsistent.

    Bytes beyond the IP total length are Ethernet minimum-frame padding and are
    ignored (keepalived 2.3.2+ does the same).
    """
    if ip.total_length > len(datagram) or ip.total_length < ip.ihl_bytes:
        return None
    return datagram[ip.ihl_bytes : ip.total_length]


def check_packet(datagram: bytes, expect: Expect) -> Accepted | Rejected:
    """Validate one received IPv4 datagram (IP header included) against ``expect``.

    Returns :class:`Accepted` or a :class:`Rejected` naming the first failed
    check. Never raises for any ``bytes`` input.
    """
    datagram = bytes(datagram)
    ip = parse_ipv4(datagram)
    if ip is None:
        return Rejected(DropReason.NOT_IPV4_VRRP, None, "unparsable IPv4 header")
    src = ip.src
    if ip.proto not in (VRRP_PROTO, AH_PROTO):
        return Rejected(
            DropReason.NOT_IPV4_VRRP, src, f"IP protocol {ip.proto} from {src}, expect 112"
        )
    if src in expect.local_ips:
        return Rejected(DropReason.OWN_PACKET, src, f"own advert from {src} looped back")
    mismatch = _ah_presence(ip, expect)
    if mismatch is not None:
        return mismatch

    # RFC 3768 7.1: the packet MUST contain the complete VRRP packet. Require the
    # exact length 8 + 4n + 8: CARP shares protocol 112 and its 36-byte adverts
    # carry a valid Internet checksum, only the length tells them apart.
    payload = _vrrp_part(ip, datagram)
    if payload is None:
        return Rejected(
            DropReason.PACKET_LEN_ERR,
            src,
            f"ip_tot_len mismatch against received length from {src}:"
            f" tot_len {ip.total_length}, header {ip.ihl_bytes}, received {len(datagram)}",
        )
    if ip.proto == AH_PROTO:
        payload = payload[AH_HEADER_LEN:]  # the VRRP message follows the AH header
    if len(payload) < VRRP_FIXED_LEN:
        return Rejected(
            DropReason.PACKET_LEN_ERR,
            src,
            f"vrrp packet from {src} too short, length {len(payload)}"
            f" and expect at least {advert_length(0)}",
        )
    # keepalived's expected_vrrp_pkt_len() counts the 8 auth bytes only for a
    # v2 header, so a well-formed VRRPv3 advert (8 + 4n, RFC 5798 5.1; no auth
    # field) passes the length check and is reported by the version check
    # below: the operator sees "wrong VRRP version", not a length error.
    version = payload[0] >> 4
    count = payload[3]
    expected_len = advert_length(count) if version == VRRP_VERSION else VRRP_FIXED_LEN + 4 * count
    if len(payload) != expected_len:
        size = "short" if len(payload) < expected_len else "long"
        return Rejected(
            DropReason.PACKET_LEN_ERR,
            src,
            f"vrrp packet from {src} too {size}, length {len(payload)} and expect {expected_len}",
        )
    # RFC 3768 7.1: MUST verify that the IP TTL is 255 (multicast only in keepalived).
    if expect.check_ttl and ip.ttl != _REQUIRED_TTL:
        return Rejected(
            DropReason.IP_TTL_ERR,
            src,
            f"invalid TTL from {src}. Received {ip.ttl} and expect {_REQUIRED_TTL}",
        )
    # RFC 3768 7.1: MUST verify the VRRP version is 2.
    if version != VRRP_VERSION:
        return Rejected(
            DropReason.VERSION_ERR,
            src,
            f"wrong VRRP version from {src}. Received {version} and expect {VRRP_VERSION}",
        )
    advert = decode_advert(payload)
    if advert is None:  # pragma: no cover - the exact length was checked above
        return Rejected(DropReason.PACKET_LEN_ERR, src, f"undecodable vrrp packet from {src}")
    # RFC 3768 7.1 / RFC 2338 5.3.6: the auth type MUST match and the method be performed.
    if advert.auth_type not in _KNOWN_AUTH_TYPES:
        return Rejected(
            DropReason.INVALID_AUTHTYPE,
            src,
            f"received an invalid auth type {advert.auth_type} from {src}",
        )
    if advert.auth_type != expect.auth_type:
        return Rejected(
            DropReason.AUTHTYPE_MISMATCH,
            src,
            f"received a {advert.auth_type} auth from {src}, expecting {expect.auth_type}",
        )
    # RFC 2338 5.3.6.2: simple text password, all 8 bytes compared (constant time).
    if advert.auth_type == AuthType.PASS and not hmac.compare_digest(
        advert.auth_data, _pad_auth(expect.auth_data)
    ):
        return Rejected(DropReason.AUTH_FAILURE, src, f"received an invalid passwd from {src}")
    if advert.auth_type == AuthType.AH:
        ah_failed = _check_ah(datagram, ip, expect)
        if ah_failed is not None:
            return ah_failed
    # RFC 3768 7.1: the Adver Interval MUST equal the locally configured one.
    if advert.advert_int != expect.advert_int:
        return Rejected(
            DropReason.ADVERT_INTERVAL_ERR,
            src,
            f"advertisement interval mismatch with {src}"
            f" mine={expect.advert_int} rcv'd={advert.advert_int}",
        )
    # RFC 3768 5.3.2: a packet with unknown type MUST be discarded.
    if advert.type != VRRP_TYPE_ADVERT:
        return Rejected(
            DropReason.INVALID_TYPE_RCVD,
            src,
            f"Invalid packet type from {src}. {advert.type} and expect {VRRP_TYPE_ADVERT}",
        )
    # RFC 3768 5.3.8 / 7.1: MUST verify the checksum over the whole VRRP message.
    if inet_checksum(payload) != 0:
        return Rejected(DropReason.CHECKSUM_ERR, src, f"Invalid VRRPv2 checksum from {src}")
    # RFC 3768 7.1: MUST verify that the VRID is configured on the receiving interface.
    if advert.vrid != expect.vrid:
        return Rejected(
            DropReason.VRID_MISMATCH,
            src,
            f"VRID mismatch from {src}. Received {advert.vrid} and expect {expect.vrid}",
        )
    # keepalived: a unicast instance takes only unicast adverts, a multicast
    # one only multicast ones (keepalived.md 2.10 row 11).
    if ip.dst.is_multicast == expect.unicast:
        want, got = ("uni", "multi") if expect.unicast else ("multi", "uni")
        return Rejected(
            DropReason.ADDR_LIST_ERR,
            src,
            f"Expected {want}cast packet but received {got}cast packet from {src}",
        )
    if expect.unicast and expect.check_unicast_src:
        rejected = _check_unicast_src(src, ip.ttl, expect.peers)
        if rejected is not None:
            return rejected
    # RFC 3768 7.1 (MAY): compare the address list. keepalived 2.3.3+ only warns,
    # so the mismatch is reported, not dropped. Count and membership both matter.
    addr_list_ok = len(advert.addresses) == len(expect.vips) and (
        frozenset(advert.addresses) == expect.vips
    )
    return Accepted(src=src, ttl=ip.ttl, advert=advert, addr_list_ok=addr_list_ok)


def _check_unicast_src(src: IPv4Address, ttl: int, peers: tuple[Peer, ...]) -> Rejected | None:
    """keepalived.md 2.10 row 13: the source must be a peer, the TTL in its range.

    keepalived 2.2.x ran this only when it also checked the VIP list; like
    2.3.3+ it runs for every advert here.
    """
    peer = next((p for p in peers if p.address == src), None)
    if peer is None:
        return Rejected(
            DropReason.NOT_UNICAST_PEER, src, f"unicast source address {src} not a unicast peer"
        )
    if not peer.min_ttl <= ttl <= peer.max_ttl:
        return Rejected(
            DropReason.IP_TTL_ERR,
            src,
            f"TTL {ttl} from {src} not in range {peer.min_ttl} - {peer.max_ttl}",
        )
    return None


def peek_vrid(datagram: bytes) -> int | None:
    """Return the VRID byte of a VRRP datagram, for demultiplexing to an instance.

    None when the IPv4 header is unparsable, the protocol is not 112 or 51
    (AH, whose header is skipped as keepalived's vrrp_get_header() does), or
    the datagram ends before the VRID byte. Nothing else is validated: the
    chosen instance runs :func:`check_packet`. Never raises for a ``bytes`` input.
    """
    datagram = bytes(datagram)
    ip = parse_ipv4(datagram)
    if ip is None or ip.proto not in (VRRP_PROTO, AH_PROTO):
        return None
    # RFC 3768 5.1: Virtual Rtr ID is the second byte of the VRRP message.
    offset = ip.ihl_bytes + 1 + (AH_HEADER_LEN if ip.proto == AH_PROTO else 0)
    if offset >= min(len(datagram), ip.total_length):
        return None
    return datagram[offset]


def _ah_presence(ip: IPv4Header, expect: Expect) -> Rejected | None:
    """keepalived.md 2.10 row 1: an AH header must be present exactly when we use AH."""
    has_ah = ip.proto == AH_PROTO
    if has_ah == (expect.auth_type == AuthType.AH):
        return None
    detail = (
        f"Received AH header but auth type not AH from {ip.src}"
        if has_ah
        else f"No AH header but auth type is AH from {ip.src}"
    )
    return Rejected(DropReason.AUTHTYPE_MISMATCH, ip.src, detail)


def _check_ah(datagram: bytes, ip: IPv4Header, expect: Expect) -> Rejected | None:
    """keepalived's vrrp_in_chk_ipsecah(): ICV, then SPI, then anti-replay.

    The anti-replay counter is raised only by an advert whose ICV and SPI are
    good, before the later checks run (keepalived's order).
    """
    src = ip.src
    ah = parse_ah(datagram, ip.ihl_bytes)
    if ah is None or ah.next_header != VRRP_PROTO:
        # keepalived: "an AH header for some other protocol": ignored, not counted.
        return Rejected(DropReason.NOT_IPV4_VRRP, src, f"AH from {src} does not carry VRRP")
    # The TTL is in the MAC only for multicast (routers decrement it on the way).
    if not verify_icv(datagram, ip.ihl_bytes, expect.auth_data, unicast=expect.unicast):
        return Rejected(
            DropReason.AUTH_FAILURE,
            src,
            f"IPSEC-AH: invalid IPSEC HMAC-MD5 value from {src}"
            " (fields changed in transit or wrong auth_pass)",
        )
    # keepalived: the SPI is the sender's source address.
    if ah.spi != src:
        return Rejected(
            DropReason.AUTH_FAILURE, src, f"IPSEC-AH: invalid SPI {ah.spi} from {src}, expect {src}"
        )
    if expect.ah_seq is not None and not expect.ah_seq.accept(ah.seq):
        return Rejected(
            DropReason.AUTH_FAILURE,
            src,
            f"IPSEC-AH: sequence number {ah.seq} from {src} already processed"
            f" (local {expect.ah_seq.seq}), packet dropped",
        )
    return None
