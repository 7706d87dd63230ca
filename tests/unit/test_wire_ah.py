"""auth_type AH on the wire: keepalived 2.2.7's golden adverts, scapy as an oracle, the checks."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.ipsec import AH
from scapy.layers.vrrp import VRRP

from pyvrrpd.wire.ah import (
    AH_HEADER_LEN,
    AhSequence,
    build_ah_datagram,
    compute_icv,
    parse_ah,
    verify_icv,
)
from pyvrrpd.wire.check import Accepted, DropReason, Expect, Rejected, check_packet, peek_vrid
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import AuthType, encode_advert
from tests.unit.test_wire_vrrp import load_hex

A = IPv4Address
GOLDEN = load_hex("golden_keepalived_227_ah_advert.hex")
KA_FIRST, KA_STOP, KA_UNICAST = GOLDEN[:64], GOLDEN[64:128], GOLDEN[128:]
KA_SRC, VIP = A("192.0.2.11"), A("192.0.2.10")
KEY = b"secret"


def expect(**kw: object) -> Expect:
    base: dict[str, object] = {
        "vrid": 51,
        "advert_int": 1,
        "auth_type": int(AuthType.AH),
        "auth_data": KEY,
        "vips": frozenset({VIP}),
        "ah_seq": AhSequence(),
    }
    base.update(kw)
    return Expect(**base)  # type: ignore[arg-type]


def test_golden_layout() -> None:
    assert len(GOLDEN) == 3 * 64
    ah = parse_ah(KA_FIRST, 20)
    assert ah is not None
    assert (ah.next_header, ah.payload_len, ah.spi, ah.seq) == (112, 4, KA_SRC, 1)
    assert parse_ah(KA_STOP, 20).seq == 4  # type: ignore[union-attr]
    # VRRP header: auth type 2, the 8 auth bytes zero (keepalived copies no password).
    vrrp = KA_FIRST[20 + AH_HEADER_LEN :]
    assert vrrp[4] == AuthType.AH and vrrp[-8:] == bytes(8)


def test_golden_icv_verifies_with_the_padded_key_only() -> None:
    for pkt in (KA_FIRST, KA_STOP):
        assert verify_icv(pkt, 20, KEY, unicast=False)
        assert verify_icv(pkt, 20, b"secret\0\0", unicast=False)
        assert not verify_icv(pkt, 20, b"secreT", unicast=False)
        # Multicast: the TTL is covered, so zeroing it (unicast rule) breaks the MAC.
        assert not verify_icv(pkt, 20, KEY, unicast=True)


@pytest.mark.parametrize(
    ("pkt", "prio", "seq", "ident"), [(KA_FIRST, 100, 1, 1), (KA_STOP, 0, 4, 4)]
)
def test_we_build_keepalived_bytes(pkt: bytes, prio: int, seq: int, ident: int) -> None:
    payload = encode_advert(51, prio, [VIP], 1, AuthType.AH, b"")
    assert payload == pkt[44:]
    ours = build_ah_datagram(KA_SRC, A("224.0.0.18"), payload, seq=seq, ident=ident, auth_pass=KEY)
    assert ours == pkt


def test_scapy_decodes_our_datagram() -> None:
    payload = encode_advert(7, 200, [A("198.51.100.10"), A("198.51.100.11")], 3, AuthType.AH)
    dgram = build_ah_datagram(
        A("198.51.100.2"), A("224.0.0.18"), payload, seq=77, ident=9, auth_pass=b"k"
    )
    pkt = IP(dgram)
    assert (pkt.proto, pkt.tos, pkt.ttl, pkt.id, pkt.len) == (51, 0xC0, 255, 9, len(dgram))
    ah = pkt[AH]
    assert (ah.nh, ah.payloadlen, ah.spi, ah.seq) == (112, 4, int(A("198.51.100.2")), 77)
    assert len(ah.icv) == 12
    v = VRRP(bytes(ah.payload))
    assert (v.vrid, v.priority, v.authtype, v.adv, v.ipcount) == (7, 200, 2, 3, 2)
    assert pkt.chksum == IP(bytes(IP(dgram[:20]))).chksum  # header checksum valid


def test_ident_zero_is_refused() -> None:
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        build_ah_datagram(KA_SRC, A("224.0.0.18"), b"", seq=1, ident=0, auth_pass=KEY)


def test_mutable_fields_are_outside_the_mac() -> None:
    mutated = bytearray(KA_FIRST)
    mutated[1] = 0x10  # TOS
    mutated[6] = 0x40  # DF
    mutated[10:12] = b"\xbe\xef"  # header checksum
    assert verify_icv(bytes(mutated), 20, KEY, unicast=False)
    for offset in (4, 12, 16, 27, 45, 63):  # ID, src, dst, seq, VRID, auth bytes
        bad = bytearray(KA_FIRST)
        bad[offset] ^= 1
        assert not verify_icv(bytes(bad), 20, KEY, unicast=False), offset


def test_golden_unicast_advert() -> None:
    # keepalived zeroes the TTL in the ICV of a unicast advert (here sent with TTL 64).
    assert KA_UNICAST[8] == 64
    assert verify_icv(KA_UNICAST, 20, KEY, unicast=True)
    assert not verify_icv(KA_UNICAST, 20, KEY, unicast=False)
    ours = build_ah_datagram(
        KA_SRC,
        A("192.0.2.12"),
        KA_UNICAST[44:],
        seq=1,
        ident=1,
        auth_pass=KEY,
        unicast=True,
        ttl=64,
    )
    assert ours == KA_UNICAST


def test_unicast_leaves_the_ttl_out() -> None:
    payload = encode_advert(51, 100, [VIP], 1, AuthType.AH)
    peer = A("192.0.2.12")
    dgram = bytearray(
        build_ah_datagram(KA_SRC, peer, payload, seq=5, ident=5, auth_pass=KEY, unicast=True)
    )
    dgram[8] = 61  # decremented on the way
    assert verify_icv(bytes(dgram), 20, KEY, unicast=True)
    assert compute_icv(bytes(dgram), 20, KEY, True) == bytes(dgram[32:44])
    got = check_packet(bytes(dgram), expect(unicast=True, check_ttl=False))
    # The AH part passed; only pyvrrpd's unicast-source rules may still apply.
    assert not (isinstance(got, Rejected) and got.reason is DropReason.AUTH_FAILURE)


def test_check_accepts_keepalived_and_tracks_the_sequence() -> None:
    seq = AhSequence()
    exp = expect(ah_seq=seq)
    got = check_packet(KA_FIRST, exp)
    assert isinstance(got, Accepted), got
    assert (got.src, got.advert.priority, got.addr_list_ok) == (KA_SRC, 100, True)
    assert seq.seq == 1
    # keepalived's anti-replay: the same (or an older) number is dropped as auth_failure.
    again = check_packet(KA_FIRST, exp)
    assert isinstance(again, Rejected) and again.reason is DropReason.AUTH_FAILURE
    assert "already processed" in again.detail
    assert isinstance(check_packet(KA_STOP, exp), Accepted)
    assert seq.seq == 4
    # Our next advert continues the numbering (counter shared with the sender).
    assert seq.next_send() == 5


def test_wrong_key_is_auth_failure_and_leaves_the_counter() -> None:
    seq = AhSequence()
    got = check_packet(KA_FIRST, expect(auth_data=b"other", ah_seq=seq))
    assert isinstance(got, Rejected) and got.reason is DropReason.AUTH_FAILURE
    assert "HMAC-MD5" in got.detail
    assert seq.seq == 0


def test_spi_must_be_the_source() -> None:
    payload = encode_advert(51, 100, [VIP], 1, AuthType.AH)
    dgram = bytearray(
        build_ah_datagram(A("192.0.2.12"), A("224.0.0.18"), payload, seq=1, ident=1, auth_pass=KEY)
    )
    dgram[24:28] = KA_SRC.packed  # SPI of another box, MAC recomputed to match
    dgram[32:44] = compute_icv(bytes(dgram), 20, KEY, False)
    got = check_packet(bytes(dgram), expect())
    assert isinstance(got, Rejected) and got.reason is DropReason.AUTH_FAILURE
    assert "SPI" in got.detail


def test_ah_presence_must_match_the_config() -> None:
    # keepalived.md 2.10 row 1: AH received by a PASS instance, and the reverse.
    got = check_packet(KA_FIRST, expect(auth_type=int(AuthType.PASS), ah_seq=None))
    assert isinstance(got, Rejected) and got.reason is DropReason.AUTHTYPE_MISMATCH
    assert "Received AH header but auth type not AH" in got.detail
    plain = build_ipv4(KA_SRC, A("224.0.0.18"), encode_advert(51, 100, [VIP], 1, 1, KEY))
    got = check_packet(plain, expect())
    assert isinstance(got, Rejected) and got.reason is DropReason.AUTHTYPE_MISMATCH
    assert "No AH header but auth type is AH" in got.detail


def test_vrrp_auth_type_inside_ah_must_be_ah() -> None:
    payload = encode_advert(51, 100, [VIP], 1, AuthType.NONE)
    dgram = build_ah_datagram(KA_SRC, A("224.0.0.18"), payload, seq=1, ident=1, auth_pass=KEY)
    got = check_packet(dgram, expect())
    assert isinstance(got, Rejected) and got.reason is DropReason.AUTHTYPE_MISMATCH


def test_ah_for_another_protocol_and_short_packets() -> None:
    other = bytearray(KA_FIRST)
    other[20] = 6  # AH carrying TCP
    got = check_packet(bytes(other), expect())
    assert isinstance(got, Rejected) and got.reason is DropReason.NOT_IPV4_VRRP
    cut = bytearray(KA_FIRST[:40])
    cut[2:4] = (40).to_bytes(2, "big")
    got = check_packet(bytes(cut), expect())
    assert isinstance(got, Rejected) and got.reason is DropReason.PACKET_LEN_ERR
    assert peek_vrid(bytes(cut)) is None


def test_peek_vrid_skips_the_ah_header() -> None:
    assert peek_vrid(KA_FIRST) == 51


def test_sequence_counter() -> None:
    s = AhSequence()
    assert [s.next_send(), s.next_send()] == [1, 2]
    assert not s.accept(2) and s.accept(3) and s.seq == 3
    top = AhSequence(0xFFFFFFFE)
    assert top.next_send() == 0xFFFFFFFE  # keepalived stops counting there


def test_router_counts_and_follows_keepalived_ah() -> None:
    from pyvrrpd.core.events import PacketReceived, Started
    from pyvrrpd.core.router import RouterConfig, VirtualRouter
    from pyvrrpd.core.state import State

    vr = VirtualRouter(
        RouterConfig(
            name="VI_1",
            vrid=51,
            priority=90,
            vips=(VIP,),
            auth_type=int(AuthType.AH),
            auth_data=b"secret\0\0",
        )
    )
    assert vr.ah_seq is not None
    vr.handle(Started(A("192.0.2.12")), 0.0)
    vr.handle(PacketReceived(KA_FIRST), 0.5)
    assert vr.state is State.BACKUP and vr.master_ip == KA_SRC
    vr.handle(PacketReceived(KA_FIRST), 0.6)  # replayed
    vr.handle(PacketReceived(KA_STOP), 0.7)  # priority 0, seq 4
    assert (vr.stats["advert_rcvd"], vr.stats["auth_failure"], vr.stats["pri_zero_rcvd"]) == (
        2,
        1,
        1,
    )
    # Our first advert as the new master continues keepalived's numbering.
    assert vr.ah_seq.next_send() == 5
    plain = VirtualRouter(RouterConfig(name="VI_2", vrid=51, vips=(VIP,)))
    assert plain.ah_seq is None
    plain.handle(Started(A("192.0.2.12")), 0.0)
    plain.handle(PacketReceived(KA_FIRST), 0.5)
    assert plain.stats["authtype_mismatch"] == 1


@given(st.binary(max_size=120), st.integers(0, 63))
def test_check_never_raises_on_mangled_ah(junk: bytes, cut: int) -> None:
    # Any bytes after keepalived's IP header (protocol 51), or its advert cut anywhere.
    for dgram in (KA_FIRST[:20] + junk, KA_FIRST[: 20 + cut]):
        for exp in (expect(), expect(unicast=True, check_ttl=False)):
            assert isinstance(check_packet(dgram, exp), (Accepted, Rejected))
        peek_vrid(dgram)
    flipped = bytearray(KA_FIRST)
    flipped[cut] ^= 0xFF
    assert isinstance(check_packet(bytes(flipped), expect()), (Accepted, Rejected))
