"""The flood's datagrams are what their labels say, judged by the daemon's own checks."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address

import pytest

from pyvrrpd.lab.flood import DEFAULT_MIX, KINDS, Target, build_datagrams, parse_mix
from pyvrrpd.lab.floodmeasure import longest_gap
from pyvrrpd.wire.check import Accepted, Expect, check_packet, peek_vrid
from pyvrrpd.wire.ipv4 import parse_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType

SRC = IPv4Address("192.0.2.66")
TARGET = Target()
EXPECT = Expect(
    vrid=TARGET.vrid,
    advert_int=TARGET.advert_int,
    auth_type=AuthType.PASS,
    auth_data=TARGET.auth_pass,
    vips=frozenset(TARGET.vips),
    local_ips=frozenset({IPv4Address("192.0.2.11")}),
)


def verdicts(kind: str) -> Counter[str]:
    """What the master's checks make of 60 datagrams of ``kind``."""
    out: Counter[str] = Counter()
    for d in build_datagrams(SRC, TARGET, {kind: 1}, count=60):
        ip = parse_ipv4(d)
        assert ip is not None and ip.src == SRC and ip.dst == VRRP_GROUP and ip.proto == 112
        if peek_vrid(d) != TARGET.vrid:
            out["unknown_vrid"] += 1
            continue
        r = check_packet(d, EXPECT)
        if isinstance(r, Accepted):
            assert r.advert.priority < TARGET.master_priority
            out["accepted"] += 1
        else:
            out[str(r.reason)] += 1
    return out


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("wrong_pass", {"auth_failure"}),
        ("unknown_vrid", {"unknown_vrid"}),
        ("bad_checksum", {"checksum_err"}),
        ("truncated", {"packet_len_err"}),
        ("lower_prio", {"accepted"}),
    ],
)
def test_each_kind_is_classified_as_labelled(kind: str, expected: set[str]) -> None:
    assert set(verdicts(kind)) == expected


@pytest.mark.parametrize("kind", ["version3", "garbage"])
def test_malformed_kinds_are_never_accepted(kind: str) -> None:
    v = verdicts(kind)
    assert v and "accepted" not in v


def test_default_mix_has_every_kind_equally() -> None:
    assert set(DEFAULT_MIX) == set(KINDS)
    datagrams = build_datagrams(SRC, count=7 * 20)
    assert len(datagrams) == 140
    assert len(set(datagrams)) > 100  # varied, not one packet repeated


def test_parse_mix() -> None:
    assert parse_mix("all") == dict(DEFAULT_MIX)
    assert parse_mix("wrong_pass=3,garbage") == {"wrong_pass": 3, "garbage": 1}
    with pytest.raises(ValueError, match="unknown flood kind"):
        parse_mix("wrong_password")
    with pytest.raises(ValueError, match="no packets"):
        parse_mix("garbage=0")


def test_longest_gap_counts_the_gaps_that_overlap_the_window() -> None:
    stamps = [0.0, 1.0, 2.0, 4.5, 5.0, 9.0]
    # Flood from 1.5 to 4.8: gaps 1->2 (1.0), 2->4.5 (2.5), 4.5->5 (0.5).
    assert longest_gap(stamps, 1.5, 4.8) == 2.5
    # The gap spanning the end counts too.
    assert longest_gap(stamps, 5.5, 6.0) == 4.0
    assert longest_gap([1.0], 0.0, 2.0) is None
