"""Receive checks (RFC 3768 7.1 in keepalived's order): one test per drop reason, fuzzing."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.utils import checksum as scapy_checksum

from pyvrrpd.wire.check import (
    Accepted,
    DropReason,
    Expect,
    Rejected,
    check_packet,
    peek_vrid,
)
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert

A = IPv4Address
DATA = Path(__file__).resolve().parent.parent / "data"
PEER = A("192.0.2.12")
ME = A("192.0.2.11")
VIPS = (A("192.0.2.100"), A("192.0.2.101"))
EXPECT = Expect(
    vrid=51,
    advert_int=1,
    auth_type=AuthType.PASS,
    auth_data=b"secret\x00\x00",
    vips=frozenset(VIPS),
    local_ips=frozenset({ME}),
)


def forge(
    ver_type: int = 0x21,
    vrid: int = 51,
    prio: int = 100,
    count: int | None = None,
    auth_type: int = 1,
    adv: int = 1,
    addrs: tuple[IPv4Address, ...] = VIPS,
    auth: bytes = b"secret\x00\x00",
    csum: int | None = None,
) -> bytes:
    """A VRRP payload with arbitrary field values; checksum computed by scapy unless given."""
    n = len(addrs) if count is None else count
    body = b"".join(a.packed for a in addrs) + auth
    head = struct.pack("!BBBBBB", ver_type, vrid, prio, n, auth_type, adv)
    if csum is None:
        csum = scapy_checksum(head + b"\x00\x00" + body)
    return head + struct.pack("!H", csum) + body


def dgram(payload: bytes, ttl: int = 255, src: IPv4Address = PEER) -> bytes:
    return build_ipv4(src, VRRP_GROUP, payload, ttl=ttl)


def rejected(datagram: bytes, expect: Expect = EXPECT) -> Rejected:
    res = check_packet(datagram, expect)
    assert isinstance(res, Rejected), res
    return res


def accepted(datagram: bytes, expect: Expect = EXPECT) -> Accepted:
    res = check_packet(datagram, expect)
    assert isinstance(res, Accepted), res
    return res


# --- accepted packets -----------------------------------------------------------------


def test_valid_advert_accepted() -> None:
    res = accepted(dgram(forge()))
    assert res.src == PEER
    assert res.ttl == 255
    assert res.addr_list_ok is True
    assert (res.advert.vrid, res.advert.priority, res.advert.addresses) == (51, 100, VIPS)


def test_keepalived_golden_datagram_accepted() -> None:
    lines = (DATA / "golden_keepalived_227_advert.hex").read_text().splitlines()
    raw = bytes.fromhex("".join(ln for ln in lines if not ln.startswith("#")))
    expect = Expect(
        vrid=51,
        advert_int=1,
        auth_type=AuthType.PASS,
        auth_data=b"12345678",
        vips=frozenset({A("10.77.0.100"), A("10.77.0.101")}),
    )
    res = accepted(raw, expect)
    assert res.src == A("10.77.0.1")
    assert res.addr_list_ok
    assert res.advert.auth_data == b"12345678"


def test_scapy_built_datagram_accepted() -> None:
    pkt = IP(src=str(PEER), dst="224.0.0.18", ttl=255, tos=0xC0) / VRRP(
        vrid=51,
        priority=200,
        addrlist=[str(a) for a in VIPS],
        authtype=1,
        auth1=int.from_bytes(b"secr", "big"),
        auth2=int.from_bytes(b"et\x00\x00", "big"),
    )
    res = accepted(bytes(pkt))
    assert res.advert.priority == 200


def test_short_password_in_expect_is_zero_padded() -> None:
    expect = Expect(51, 1, AuthType.PASS, b"secret", frozenset(VIPS))
    accepted(dgram(forge()), expect)


def test_auth_none_ignores_auth_data() -> None:
    # RFC 3768 5.3.10: with no authentication the field is ignored on reception.
    expect = Expect(51, 1, AuthType.NONE, b"", frozenset(VIPS))
    accepted(dgram(forge(auth_type=0, auth=b"garbage!")), expect)


def test_priority_zero_accepted() -> None:
    assert accepted(dgram(forge(prio=0))).advert.priority == 0


def test_trailing_ethernet_padding_accepted() -> None:
    # One VIP: 20 + 20 = 40 bytes of IP, padded to the 46-byte Ethernet minimum.
    vip = (VIPS[0],)
    raw = dgram(forge(addrs=vip)) + b"\x00" * 6
    res = accepted(raw, Expect(51, 1, AuthType.PASS, b"secret", frozenset(vip)))
    assert res.advert.addresses == vip


def test_ip_options_skipped() -> None:
    payload = forge()
    header = bytes(
        IP(src=str(PEER), dst="224.0.0.18", ttl=255, proto=112, options=b"\x94\x04\x00\x00")
    )
    hdr = bytearray(header)
    hdr[2:4] = struct.pack("!H", len(header) + len(payload))
    res = accepted(bytes(hdr) + payload)
    assert res.advert.vrid == 51


def test_addr_list_mismatch_accepted_but_flagged() -> None:
    res = accepted(dgram(forge(addrs=(VIPS[0], A("192.0.2.200")))))
    assert res.addr_list_ok is False
    assert accepted(dgram(forge(addrs=(VIPS[0],)))).addr_list_ok is False
    assert accepted(dgram(forge(addrs=(*VIPS, A("192.0.2.1"))))).addr_list_ok is False


def test_addr_list_order_does_not_matter_but_duplicates_do() -> None:
    assert accepted(dgram(forge(addrs=VIPS[::-1]))).addr_list_ok is True
    # keepalived compares the count too ("expected 2 VIPs but received 3").
    assert accepted(dgram(forge(addrs=(*VIPS, VIPS[0])))).addr_list_ok is False


def test_ttl_not_checked_when_disabled() -> None:
    expect = Expect(51, 1, AuthType.PASS, b"secret", frozenset(VIPS), check_ttl=False)
    assert accepted(dgram(forge(), ttl=64), expect).ttl == 64


# --- one test per drop reason ---------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"\x45" * 19, b"\x65" + bytes(39), b"\x4f" + bytes(39)])
def test_unparsable_ip(raw: bytes) -> None:
    res = rejected(raw)
    assert res.reason is DropReason.NOT_IPV4_VRRP
    assert res.src is None


def test_wrong_protocol() -> None:
    res = rejected(build_ipv4(PEER, VRRP_GROUP, forge(), proto=17))
    assert (res.reason, res.src) == (DropReason.NOT_IPV4_VRRP, PEER)


def test_own_packet() -> None:
    res = rejected(dgram(forge(), src=ME))
    assert (res.reason, res.src) == (DropReason.OWN_PACKET, ME)


def test_truncated_vrrp() -> None:
    res = rejected(dgram(forge()[:-4]))
    assert res.reason is DropReason.PACKET_LEN_ERR
    assert "too short" in res.detail
    assert "length 20 and expect 24" in res.detail


def test_too_long_vrrp() -> None:
    res = rejected(dgram(forge() + b"\x00" * 4))
    assert res.reason is DropReason.PACKET_LEN_ERR
    assert "too long, length 28 and expect 24" in res.detail


def test_shorter_than_fixed_header() -> None:
    res = rejected(dgram(forge()[:5]))
    assert res.reason is DropReason.PACKET_LEN_ERR


def test_ip_total_length_beyond_received() -> None:
    res = rejected(dgram(forge())[:-1])  # the IP header still claims the full length
    assert res.reason is DropReason.PACKET_LEN_ERR
    assert "ip_tot_len" in res.detail


def test_ip_total_length_below_header() -> None:
    raw = bytearray(dgram(forge()))
    raw[2:4] = struct.pack("!H", 12)
    assert rejected(bytes(raw)).reason is DropReason.PACKET_LEN_ERR


def test_carp_packet_rejected_by_length() -> None:
    # OpenBSD/ucarp CARP advert (ucarp src/ip_carp.h): ver 2, type 1, vhid, advskew,
    # authlen 7, pad, advbase, cksum, counter[8], md[20]: 36 bytes, same protocol 112.
    head = struct.pack("!BBBBBB", 0x21, 51, 0, 7, 0, 1)
    tail = bytes(range(8)) + bytes(range(100, 120))
    carp = head + struct.pack("!H", scapy_checksum(head + b"\x00\x00" + tail)) + tail
    assert len(carp) == 36
    assert scapy_checksum(carp) == 0  # read as VRRP its checksum verifies
    res = rejected(dgram(carp), Expect(51, 1, AuthType.NONE, b"", frozenset(VIPS)))
    assert res.reason is DropReason.PACKET_LEN_ERR
    assert "length 36 and expect 44" in res.detail


def test_vrrpv3_advert_is_a_version_error_not_a_length_error() -> None:
    # keepalived's expected_vrrp_pkt_len() leaves out the auth bytes for v3 (8 + 4n).
    raw = bytes(
        IP(src=str(PEER), dst="224.0.0.18", ttl=255) / VRRPv3(vrid=51, addrlist=["192.0.2.100"])
    )
    res = rejected(raw)
    assert res.reason is DropReason.VERSION_ERR
    assert res.detail == "wrong VRRP version from 192.0.2.12. Received 3 and expect 2"


def test_version_3_header_with_v2_length_is_a_length_error() -> None:
    # As keepalived: a v3 header is expected to be 8 + 4n bytes long.
    res = rejected(dgram(forge(ver_type=0x31)))
    assert res.reason is DropReason.PACKET_LEN_ERR
    assert "length 24 and expect 16" in res.detail


def test_bad_ttl() -> None:
    res = rejected(dgram(forge(), ttl=64))
    assert res.reason is DropReason.IP_TTL_ERR
    assert res.detail == "invalid TTL from 192.0.2.12. Received 64 and expect 255"


def test_version_3() -> None:
    res = rejected(dgram(forge(ver_type=0x31)[:-8]))
    assert res.reason is DropReason.VERSION_ERR
    assert "Received 3 and expect 2" in res.detail


def test_invalid_auth_type() -> None:
    res = rejected(dgram(forge(auth_type=7)))
    assert res.reason is DropReason.INVALID_AUTHTYPE


def test_auth_type_mismatch() -> None:
    res = rejected(dgram(forge(auth_type=0, auth=bytes(8))))
    assert res.reason is DropReason.AUTHTYPE_MISMATCH
    assert res.detail == "received a 0 auth from 192.0.2.12, expecting 1"


def test_wrong_password() -> None:
    res = rejected(dgram(forge(auth=b"secreT\x00\x00")))
    assert res.reason is DropReason.AUTH_FAILURE
    assert res.detail == "received an invalid passwd from 192.0.2.12"


def test_password_compares_all_eight_bytes() -> None:
    res = rejected(dgram(forge(auth=b"secret\x00X")))
    assert res.reason is DropReason.AUTH_FAILURE


def test_wrong_advert_interval() -> None:
    res = rejected(dgram(forge(adv=2)))
    assert res.reason is DropReason.ADVERT_INTERVAL_ERR
    assert "mine=1 rcv'd=2" in res.detail


def test_wrong_type() -> None:
    res = rejected(dgram(forge(ver_type=0x22)))
    assert res.reason is DropReason.INVALID_TYPE_RCVD


def test_bad_checksum() -> None:
    good = forge()
    bad = forge(csum=int.from_bytes(good[6:8], "big") ^ 0x0100)
    res = rejected(dgram(bad))
    assert res.reason is DropReason.CHECKSUM_ERR
    assert res.detail == "Invalid VRRPv2 checksum from 192.0.2.12"


def test_wrong_vrid() -> None:
    res = rejected(dgram(forge(vrid=52)))
    assert res.reason is DropReason.VRID_MISMATCH


# --- order of the checks (keepalived's vrrp_check_packet) --------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (dgram(forge()[:-1], ttl=1, src=ME), DropReason.OWN_PACKET),
        (dgram(forge(ver_type=0x31)[:-1], ttl=1), DropReason.PACKET_LEN_ERR),
        (dgram(forge(ver_type=0x31, csum=0)[:-8], ttl=1), DropReason.IP_TTL_ERR),
        (dgram(forge(ver_type=0x31, auth_type=9)[:-8]), DropReason.VERSION_ERR),
        (dgram(forge(auth_type=9, adv=5)), DropReason.INVALID_AUTHTYPE),
        (dgram(forge(auth=b"x" * 8, adv=5)), DropReason.AUTH_FAILURE),
        (dgram(forge(adv=5, ver_type=0x22)), DropReason.ADVERT_INTERVAL_ERR),
        (dgram(forge(ver_type=0x22, csum=0)), DropReason.INVALID_TYPE_RCVD),
        (dgram(forge(vrid=9, csum=0)), DropReason.CHECKSUM_ERR),
    ],
    ids=lambda v: v.value if isinstance(v, DropReason) else "",
)
def test_first_failing_check_wins(raw: bytes, reason: DropReason) -> None:
    """Each packet also fails every later check; the earliest one must be reported."""
    assert rejected(raw).reason is reason


def test_reason_values_are_keepalived_stat_keys() -> None:
    assert {r.value for r in DropReason} == {
        "packet_len_err",
        "ip_ttl_err",
        "version_err",
        "invalid_authtype",
        "authtype_mismatch",
        "auth_failure",
        "advert_interval_err",
        "invalid_type_rcvd",
        "checksum_err",
        "vrid_mismatch",
        "not_ipv4_vrrp",
        "own_packet",
        "addr_list_err",  # unicast instance got multicast, or the reverse
        "not_unicast_peer",  # keepalived only logs it
    }


# --- peek_vrid --------------------------------------------------------------------------


def test_peek_vrid() -> None:
    assert peek_vrid(dgram(forge(vrid=77))) == 77
    assert peek_vrid(dgram(forge(vrid=77)[:2])) == 77
    assert peek_vrid(dgram(forge()[:1])) is None
    assert peek_vrid(build_ipv4(PEER, VRRP_GROUP, forge(), proto=17)) is None
    assert peek_vrid(b"\x45\x00") is None


# --- fuzzing ----------------------------------------------------------------------------


@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert isinstance(check_packet(data, EXPECT), Accepted | Rejected)
    vrid = peek_vrid(data)
    assert vrid is None or 0 <= vrid <= 255


@given(
    st.binary(max_size=100).map(lambda b: b"\x45" + b),
)
def test_ipv4_looking_bytes_never_raise(data: bytes) -> None:
    assert isinstance(check_packet(data, EXPECT), Accepted | Rejected)


VALID = dgram(forge())


@given(
    flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(VALID)),
    extra=st.binary(max_size=16),
)
def test_mutated_datagrams_never_raise(
    flips: list[tuple[int, int]], cut: int, extra: bytes
) -> None:
    raw = bytearray(VALID)
    for pos, value in flips:
        raw[pos] = value
    data = bytes(raw[:cut]) + extra
    res = check_packet(data, EXPECT)
    assert isinstance(res, Accepted | Rejected)
    if isinstance(res, Accepted):
        # Whatever survived every check re-encodes to the same VRRP bytes
        # (the checksum field may be the other one's-complement zero).
        ihl = (data[0] & 0x0F) * 4
        total = int.from_bytes(data[2:4], "big")
        payload = data[ihl:total]
        a = res.advert
        again = encode_advert(
            a.vrid, a.priority, a.addresses, a.advert_int, a.auth_type, a.auth_data
        )
        assert again[:6] + again[8:] == payload[:6] + payload[8:]
        assert res.ttl == 255
        assert a.vrid == EXPECT.vrid
