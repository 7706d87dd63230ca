"""The kernel filter that splits received traffic into a fast and a slow queue.

A small classic-BPF interpreter (the kernel's semantics: a load past the end
ends the program with 0) runs both programs on real adverts, hostile packets
and random bytes. Every packet must land in exactly one queue, and only
packets that look like our own routers' adverts in the fast one.
"""

from __future__ import annotations

import random
import struct
from ipaddress import IPv4Address

import pytest

from pyvrrpd.wire.ah import build_ah_datagram
from pyvrrpd.wire.bpf import AH_HEADER_LEN, BpfInsn, FastPath, assemble, split_filter
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert

SRC = IPv4Address("192.0.2.11")
VIPS = [IPv4Address("192.0.2.10")]
PATHS = [
    FastPath(51, int(AuthType.PASS), 1, b"1111".ljust(8, b"\0")),
    FastPath(52, int(AuthType.NONE), 2),
]


class _Abort(Exception):
    pass


def run_bpf(prog: list[BpfInsn], pkt: bytes) -> int:
    """Classic BPF as the kernel runs it on a raw socket (packet = IPv4 datagram)."""
    a = x = 0
    mem = [0] * 16
    pc = 0

    def load(off: int, size: int) -> int:
        if off < 0 or off + size > len(pkt):
            raise _Abort
        return int.from_bytes(pkt[off : off + size], "big")

    try:
        while True:
            i = prog[pc]
            pc += 1
            cls, code = i.code & 0x07, i.code
            if cls == 0x00:  # LD
                mode, size = code & 0xE0, {0x00: 4, 0x08: 2, 0x10: 1}[code & 0x18]
                if mode == 0x80:
                    a = len(pkt)
                elif mode == 0x20:
                    a = load(i.k, size)
                elif mode == 0x40:
                    a = load(x + i.k, size)
                elif mode == 0x60:
                    a = mem[i.k]
                else:
                    a = i.k
            elif cls == 0x01:  # LDX
                mode = code & 0xE0
                if mode == 0xA0:
                    x = 4 * (load(i.k, 1) & 0x0F)
                elif mode == 0x60:
                    x = mem[i.k]
                else:
                    x = i.k
            elif cls == 0x02:
                mem[i.k] = a
            elif cls == 0x04:  # ALU
                src = x if code & 0x08 else i.k
                op = code & 0xF0
                a = {0x00: a + src, 0x60: a << src}[op] & 0xFFFFFFFF
            elif cls == 0x05:  # JMP
                src = x if code & 0x08 else i.k
                op = code & 0xF0
                cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src}[op]
                pc += i.jt if cond else i.jf
            elif cls == 0x06:
                return i.k
            elif cls == 0x07:
                if code & 0xF8 == 0x80:
                    a = x
                else:
                    x = a
    except _Abort:
        return 0


FAST, SLOW = split_filter(PATHS)


def queue(pkt: bytes) -> str:
    f, s = run_bpf(FAST, pkt), run_bpf(SLOW, pkt)
    assert (f != 0) != (s != 0), f"packet in {'both' if f else 'neither'} queues: {pkt.hex()}"
    return "fast" if f else "slow"


def advert(vrid: int = 51, prio: int = 100, auth: bytes = b"1111", **kw: int) -> bytes:
    payload = encode_advert(
        vrid,
        prio,
        VIPS,
        kw.get("advert_int", 1),
        kw.get("auth_type", int(AuthType.PASS)),
        auth,
    )
    return build_ipv4(SRC, VRRP_GROUP, payload, ttl=kw.get("ttl", 255))


def test_our_adverts_take_the_fast_queue() -> None:
    assert queue(advert()) == "fast"
    assert queue(advert(prio=0)) == "fast"  # resignations too
    assert queue(advert(52, auth=b"", auth_type=0, advert_int=2)) == "fast"


@pytest.mark.parametrize(
    "pkt",
    [
        advert(auth=b"hacked"),
        advert(auth=b"1112"),
        advert(53),
        advert(ttl=64),
        advert(advert_int=3),
        advert(auth_type=0, auth=b""),
        advert(52, auth=b"1111"),  # right VRID, wrong auth type
        bytes([0x45]) + advert()[1:19],  # truncated IPv4 header
        advert()[:-5],  # password cut off
        advert()[:24],
        b"",
    ],
)
def test_everything_else_takes_the_slow_queue(pkt: bytes) -> None:
    assert queue(pkt) == "slow"


def test_version_3_and_other_types_are_slow() -> None:
    pkt = bytearray(advert())
    pkt[20] = 0x31
    assert queue(bytes(pkt)) == "slow"
    pkt[20] = 0x22
    assert queue(bytes(pkt)) == "slow"


def test_ip_options_move_the_vrrp_header() -> None:
    # IHL 6: four bytes of options (NOP NOP NOP EOL) before the VRRP message.
    plain = advert()
    hdr = bytearray(plain[:20])
    hdr[0] = 0x46
    struct.pack_into("!H", hdr, 2, len(plain) + 4)
    assert queue(bytes(hdr) + b"\x01\x01\x01\x00" + plain[20:]) == "fast"


def test_random_bytes_land_in_exactly_one_queue() -> None:
    rng = random.Random(5)
    good = advert()
    for _ in range(3000):
        n = rng.randrange(0, 80)
        pkt = bytes(rng.randrange(256) for _ in range(n))
        queue(pkt)
        # Mutations of a real advert: every byte position, any value.
        mutated = bytearray(good)
        mutated[rng.randrange(len(good))] = rng.randrange(256)
        queue(bytes(mutated))


def test_assembles_to_sock_filter_array() -> None:
    code = assemble(FAST)
    assert len(code) == 8 * len(FAST)
    assert struct.unpack_from("=HBBI", code, 0) == (FAST[0].code, FAST[0].jt, FAST[0].jf, 0)


def test_too_many_routers_for_one_program_is_an_error() -> None:
    many = [FastPath(v, int(AuthType.PASS), 1, b"pw") for v in range(1, 256)]
    with pytest.raises(ValueError):
        split_filter(many)


def test_a_backup_fast_queues_only_its_master() -> None:
    fast, slow = split_filter([FastPath(51, int(AuthType.PASS), 1, b"1111", IPv4Address(SRC))])

    def q(pkt: bytes) -> str:
        f, s = run_bpf(fast, pkt), run_bpf(slow, pkt)
        assert (f != 0) != (s != 0)
        return "fast" if f else "slow"

    assert q(advert()) == "fast"
    other = advert()
    other = other[:12] + IPv4Address("192.0.2.66").packed + other[16:]
    assert q(other) == "slow"  # right password, wrong sender: waits behind nothing


# --------------------------------------------------------------- AH (offset)

AH_PATHS = [FastPath(51, int(AuthType.AH), 1), FastPath(52, int(AuthType.AH), 2)]


def ah_advert(vrid: int = 51, **kw: int) -> bytes:
    payload = encode_advert(vrid, 100, VIPS, kw.get("advert_int", 1), AuthType.AH, b"")
    pkt = build_ah_datagram(
        SRC, VRRP_GROUP, payload, seq=1, ident=1, auth_pass=b"1111", ttl=kw.get("ttl", 255)
    )
    return pkt


def test_ah_filter_fast_queues_only_our_ah_adverts() -> None:
    fast, slow = split_filter(AH_PATHS, offset=AH_HEADER_LEN)

    def q(pkt: bytes) -> str:
        f, s = run_bpf(fast, pkt), run_bpf(slow, pkt)
        assert (f != 0) != (s != 0), pkt.hex()
        return "fast" if f else "slow"

    good = ah_advert()
    assert q(good) == "fast"
    assert q(ah_advert(52, advert_int=2)) == "fast"
    assert q(ah_advert(53)) == "slow"  # a VRID we do not serve
    assert q(ah_advert(advert_int=3)) == "slow"
    assert q(ah_advert(ttl=64)) == "slow"
    not_vrrp = bytearray(good)
    not_vrrp[20] = 6  # AH next header: TCP
    assert q(bytes(not_vrrp)) == "slow"
    # Protocol-51 junk as a flood sends it: random bytes after an IP header.
    rng = random.Random(51)
    for _ in range(2000):
        junk = good[:20] + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        q(junk)
        mutated = bytearray(good)
        mutated[rng.randrange(len(good))] = rng.randrange(256)
        q(bytes(mutated))
    # The plain (offset 0) program never fast-queues an AH datagram, and the
    # AH program never a plain advert: the VRRP header is 24 bytes apart.
    assert run_bpf(split_filter(AH_PATHS)[0], good) == 0
    plain = advert(auth=b"", auth_type=int(AuthType.AH))
    assert q(plain) == "slow"


def test_ah_backup_fast_queues_only_its_master() -> None:
    path = FastPath(51, int(AuthType.AH), 1, src=SRC)
    fast, _slow = split_filter([path], offset=AH_HEADER_LEN)
    good = ah_advert()
    assert run_bpf(fast, good) != 0
    other = good[:12] + IPv4Address("192.0.2.66").packed + good[16:]
    assert run_bpf(fast, other) == 0
