"""RFC 1071 checksum: known vectors and agreement with scapy's implementation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from scapy.utils import checksum as scapy_checksum

from pyvrrpd.wire.checksum import inet_checksum


def test_empty_is_all_ones() -> None:
    assert inet_checksum(b"") == 0xFFFF


def test_rfc1071_worked_example() -> None:
    # RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (after folding).
    assert inet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2


def test_odd_length_is_padded_with_zero() -> None:
    assert inet_checksum(b"\x12\x34\x56") == inet_checksum(b"\x12\x34\x56\x00")


def test_message_with_its_checksum_verifies_to_zero() -> None:
    data = bytes.fromhex("2133640201010000") + bytes.fromhex("0a4d00640a4d0065") + b"12345678"
    csum = inet_checksum(data)
    assert csum == 0x9391  # the keepalived 2.2.7 capture (research keepalived.md 2.7)
    filled = data[:6] + csum.to_bytes(2, "big") + data[8:]
    assert inet_checksum(filled) == 0


@given(st.binary(max_size=2000))
def test_matches_scapy(data: bytes) -> None:
    assert inet_checksum(data) == scapy_checksum(data)
