"""VRRPv2 advert codec: golden packets, scapy as an independent oracle, round trips."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRP
from scapy.utils import checksum as scapy_checksum

from pyvrrpd.wire import vrrp
from pyvrrpd.wire.checksum import inet_checksum
from pyvrrpd.wire.vrrp import Advert, AuthType, decode_advert, encode_advert

DATA = Path(__file__).resolve().parent.parent / "data"
A = IPv4Address


def load_hex(name: str) -> bytes:
    lines = (DATA / name).read_text().splitlines()
    assert lines[0].startswith("#"), "golden files start with a provenance comment"
    return bytes.fromhex("".join(ln for ln in lines if not ln.startswith("#")))


KEEPALIVED = load_hex("golden_keepalived_227_advert.hex")
KA_PAYLOAD = KEEPALIVED[20:]
KA_VIPS = [A("10.77.0.100"), A("10.77.0.101")]


def test_constants() -> None:
    assert vrrp.VRRP_PROTO == 112
    assert A("224.0.0.18") == vrrp.VRRP_GROUP
    assert [int(a) for a in AuthType] == [0, 1, 2]
    assert vrrp.advert_length(0) == 16
    assert vrrp.advert_length(2) == 24


def test_encode_equals_keepalived_capture() -> None:
    assert KA_PAYLOAD.hex() == "21336402010193910a4d00640a4d00653132333435363738"
    assert encode_advert(51, 100, KA_VIPS, 1, AuthType.PASS, b"12345678") == KA_PAYLOAD


def test_decode_keepalived_capture() -> None:
    assert decode_advert(KA_PAYLOAD) == Advert(
        version=2,
        type=1,
        vrid=51,
        priority=100,
        auth_type=1,
        advert_int=1,
        checksum=0x9391,
        addresses=(A("10.77.0.100"), A("10.77.0.101")),
        auth_data=b"12345678",
    )


def test_keepalived_capture_dissected_by_scapy() -> None:
    pkt = IP(KEEPALIVED)
    assert (pkt.tos, pkt.ttl, pkt.proto, pkt.len, pkt.flags) == (0xC0, 255, 112, 44, 0)
    v = pkt[VRRP]
    assert (v.vrid, v.priority, v.ipcount, v.authtype, v.adv) == (51, 100, 2, 1, 1)
    assert v.addrlist == ["10.77.0.100", "10.77.0.101"]


def test_scapy_golden_no_auth() -> None:
    golden = load_hex("golden_scapy_vrrp_noauth.hex")
    ours = encode_advert(51, 150, [A("192.0.2.10"), A("192.0.2.11")])
    assert ours == golden
    adv = decode_advert(golden)
    assert adv is not None
    assert (adv.priority, adv.auth_type, adv.auth_data) == (150, 0, bytes(8))


def test_auth_data_padded_and_truncated() -> None:
    short = decode_advert(encode_advert(1, 100, [], auth_type=1, auth_data=b"abc"))
    long = decode_advert(encode_advert(1, 100, [], auth_type=1, auth_data=b"0123456789"))
    assert short is not None and short.auth_data == b"abc\x00\x00\x00\x00\x00"
    assert long is not None and long.auth_data == b"01234567"


def test_zero_addresses_and_priority_zero() -> None:
    raw = encode_advert(255, 0, [], advert_int=255)
    assert len(raw) == 16
    assert raw[:6] == bytes([0x21, 255, 0, 0, 0, 255])
    assert inet_checksum(raw) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vrid": 0}, "vrid"),
        ({"vrid": 256}, "vrid"),
        ({"priority": -1}, "priority"),
        ({"priority": 256}, "priority"),
        ({"addresses": [A("10.0.0.1")] * 256}, "address count"),
        ({"advert_int": 0}, "advert_int"),
        ({"advert_int": 256}, "advert_int"),
        ({"auth_type": 256}, "auth_type"),
    ],
)
def test_encode_validates(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"vrid": 1, "priority": 100, "addresses": []}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        encode_advert(**args)  # type: ignore[arg-type]


def test_255_addresses_allowed() -> None:
    addrs = [A(0x0A000000 + i) for i in range(255)]
    raw = encode_advert(1, 100, addrs)
    assert len(raw) == 8 + 4 * 255 + 8
    adv = decode_advert(raw)
    assert adv is not None and adv.addresses == tuple(addrs)


def test_decode_short_returns_none() -> None:
    assert decode_advert(b"") is None
    assert decode_advert(KA_PAYLOAD[:7]) is None
    assert decode_advert(KA_PAYLOAD[:-1]) is None  # count says 2 addrs: needs 24 bytes
    # A 36-byte CARP advert reads as count 7, i.e. 44 bytes: too short.
    assert decode_advert(bytes([0x21, 1, 0, 7]) + bytes(32)) is None


def test_decode_ignores_trailing_bytes() -> None:
    assert decode_advert(KA_PAYLOAD + b"\xee" * 5) == decode_advert(KA_PAYLOAD)


def test_decode_reports_without_validating() -> None:
    raw = bytearray(KA_PAYLOAD)
    raw[0] = 0x37  # version 3, type 7
    raw[6:8] = b"\x00\x00"
    adv = decode_advert(bytes(raw))
    assert adv is not None
    assert (adv.version, adv.type, adv.checksum) == (3, 7, 0)


# --- scapy as the independent oracle ---------------------------------------------------

ADDRS = st.lists(st.integers(0, 2**32 - 1).map(IPv4Address), max_size=20)
AUTH = st.binary(max_size=8)


def _scapy_vrrp(
    vrid: int,
    prio: int,
    addrs: list[IPv4Address],
    adv: int,
    auth_type: int,
    auth: bytes,
) -> VRRP:
    padded = auth.ljust(8, b"\x00")
    return VRRP(
        vrid=vrid,
        priority=prio,
        addrlist=[str(a) for a in addrs],
        adv=adv,
        authtype=auth_type,
        auth1=int.from_bytes(padded[:4], "big"),
        auth2=int.from_bytes(padded[4:], "big"),
    )


@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    addrs=ADDRS,
    adv=st.integers(1, 255),
    auth_type=st.integers(0, 2),
    auth=AUTH,
)
def test_encode_equals_scapy(
    vrid: int, prio: int, addrs: list[IPv4Address], adv: int, auth_type: int, auth: bytes
) -> None:
    ours = encode_advert(vrid, prio, addrs, adv, auth_type, auth)
    assert ours == bytes(_scapy_vrrp(vrid, prio, addrs, adv, auth_type, auth))
    # And scapy's dissection of our bytes gives the same fields and checksum.
    pkt = VRRP(ours)
    assert (pkt.version, pkt.type, pkt.vrid, pkt.priority) == (2, 1, vrid, prio)
    assert (pkt.ipcount, pkt.authtype, pkt.adv) == (len(addrs), auth_type, adv)
    assert pkt.addrlist == [str(a) for a in addrs]
    assert pkt.chksum == scapy_checksum(ours[:6] + b"\x00\x00" + ours[8:])


@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    addrs=ADDRS,
    adv=st.integers(1, 255),
    auth_type=st.integers(0, 2),
    auth=AUTH,
)
def test_decode_scapy_built(
    vrid: int, prio: int, addrs: list[IPv4Address], adv: int, auth_type: int, auth: bytes
) -> None:
    raw = bytes(_scapy_vrrp(vrid, prio, addrs, adv, auth_type, auth))
    assert decode_advert(raw) == Advert(
        version=2,
        type=1,
        vrid=vrid,
        priority=prio,
        auth_type=auth_type,
        advert_int=adv,
        checksum=int.from_bytes(raw[6:8], "big"),
        addresses=tuple(addrs),
        auth_data=auth.ljust(8, b"\x00"),
    )


@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    addrs=ADDRS,
    adv=st.integers(1, 255),
    auth_type=st.sampled_from(list(AuthType)),
    auth=AUTH,
)
def test_round_trip(
    vrid: int, prio: int, addrs: list[IPv4Address], adv: int, auth_type: int, auth: bytes
) -> None:
    raw = encode_advert(vrid, prio, addrs, adv, auth_type, auth)
    assert len(raw) == vrrp.advert_length(len(addrs))
    assert inet_checksum(raw) == 0
    adv_ = decode_advert(raw)
    assert adv_ is not None
    assert (adv_.version, adv_.type, adv_.vrid, adv_.priority) == (2, 1, vrid, prio)
    assert (adv_.advert_int, adv_.auth_type) == (adv, auth_type)
    assert adv_.addresses == tuple(addrs)
    assert adv_.auth_data == auth.ljust(8, b"\x00")
    re = encode_advert(
        adv_.vrid, adv_.priority, adv_.addresses, adv_.advert_int, adv_.auth_type, adv_.auth_data
    )
    assert re == raw


@given(st.binary(max_size=200))
def test_decode_never_raises(data: bytes) -> None:
    adv = decode_advert(data)
    if adv is not None:
        assert len(data) >= vrrp.advert_length(len(adv.addresses))
        assert len(adv.auth_data) == 8
