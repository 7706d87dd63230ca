"""The flood's protocol-51 kinds (pyvrrpd/lab/flood.py AH_KINDS) are AH junk.

They carry protocol 51, never take a following BACKUP's fast queue
(wire/bpf.py with the AH offset), and stay out of the default mix.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from pyvrrpd.lab.flood import AH_KINDS, DEFAULT_MIX, build_datagrams, parse_mix
from pyvrrpd.wire.bpf import AH_HEADER_LEN, FastPath, split_filter
from pyvrrpd.wire.vrrp import AuthType

from .test_wire_bpf import run_bpf

INJ = IPv4Address("192.0.2.66")
MASTER = IPv4Address("192.0.2.11")


def test_ah_kinds_are_protocol_51_and_wait_in_the_slow_queue() -> None:
    assert not set(AH_KINDS) & set(DEFAULT_MIX)
    mix = parse_mix("ah_junk=3,ah_garbage=1")
    grams = build_datagrams(INJ, mix=mix, count=200)
    assert all(g[9] == 51 for g in grams)
    path = FastPath(51, int(AuthType.AH), 1, src=MASTER)
    fast, slow = split_filter([path], offset=AH_HEADER_LEN)
    assert all(run_bpf(fast, g) == 0 and run_bpf(slow, g) != 0 for g in grams)
    # Without a followed master (a MASTER's own filter) well-shaped junk is
    # fast-queued: only the ICV, checked in userspace, tells it apart.
    fast_any, _ = split_filter([FastPath(51, int(AuthType.AH), 1)], offset=AH_HEADER_LEN)
    shaped = [g for g in grams if len(g) == 64 and g[20:22] == bytes([112, 4])]
    assert shaped and all(run_bpf(fast_any, g) != 0 for g in shaped)
