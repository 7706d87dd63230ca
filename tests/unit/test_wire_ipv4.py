"""IPv4 header parse/build, cross-checked against scapy's IP layer."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP

from pyvrrpd.wire.checksum import inet_checksum
from pyvrrpd.wire.ipv4 import IPv4Header, build_ipv4, parse_ipv4

SRC = IPv4Address("192.0.2.12")
DST = IPv4Address("224.0.0.18")


def test_build_defaults_match_keepalived_header() -> None:
    dgram = build_ipv4(SRC, DST, b"\x00" * 24, ident=1)
    # keepalived 2.2.7 capture: 45c0 002c 0001 0000 ff70 (research keepalived.md 2.7)
    assert dgram[:10] == bytes.fromhex("45c0002c00010000ff70")
    assert inet_checksum(dgram[:20]) == 0
    assert dgram[12:16] == SRC.packed
    assert dgram[16:20] == DST.packed


def test_build_checked_by_scapy() -> None:
    dgram = build_ipv4(SRC, DST, b"abcd", ttl=7, tos=0x10, proto=17, ident=0x1234)
    pkt = IP(dgram)
    assert (pkt.version, pkt.ihl, pkt.tos, pkt.len, pkt.id) == (4, 5, 0x10, 24, 0x1234)
    assert (pkt.flags, pkt.frag, pkt.ttl, pkt.proto) == (0, 0, 7, 17)
    assert (pkt.src, pkt.dst) == (str(SRC), str(DST))
    # scapy recomputes the checksum when it is cleared; it must equal ours.
    pkt.chksum = None
    assert bytes(IP(bytes(pkt)))[:20] == dgram[:20]


def test_parse_scapy_built_header_with_options() -> None:
    raw = bytes(IP(src=str(SRC), dst=str(DST), ttl=255, proto=112, options=b"\x94\x04\x00\x00"))
    hdr = parse_ipv4(raw + b"payload")
    assert hdr == IPv4Header(
        version=4,
        ihl_bytes=24,
        tos=0,
        total_length=24,
        ident=1,
        flags_frag=0,
        ttl=255,
        proto=112,
        checksum=int.from_bytes(raw[10:12], "big"),
        src=SRC,
        dst=DST,
    )


def test_parse_rejects_short_wrong_version_and_bad_ihl() -> None:
    good = build_ipv4(SRC, DST, b"")
    assert parse_ipv4(good) is not None
    assert parse_ipv4(good[:19]) is None
    assert parse_ipv4(b"\x65" + good[1:]) is None  # version 6
    assert parse_ipv4(b"\x44" + good[1:]) is None  # IHL 16 bytes
    assert parse_ipv4(b"\x46" + good[1:]) is None  # IHL 24 bytes but only 20 present


@given(st.binary(max_size=64))
def test_parse_never_raises(data: bytes) -> None:
    hdr = parse_ipv4(data)
    assert hdr is None or (hdr.version == 4 and 20 <= hdr.ihl_bytes <= len(data))
