"""The chaos test's judge and plan, replayed on made-up timelines (no root, no lab)."""

from __future__ import annotations

import itertools
import socket
import struct

from pyvrrpd.lab.chaos_plan import GAP, KINDS, faults
from pyvrrpd.lab.chaos_rules import ABSENCE_BOUND, CONT_GRACE, RESTART_GRACE, Judge
from pyvrrpd.lab.vipwatch import parse_addrs

LB1 = {"lb1": "eth0"}
BOTH = {"lb1": "eth0", "lb2": "eth0"}
NONE: dict[str, str] = {}


def _run(j: Judge, holders: dict[str, str], t0: float, t1: float, step: float = 0.02) -> float:
    t = t0
    while t <= t1:
        j.sample(t, holders)
        t = round(t + step, 6)
    return t


def test_two_holders_is_a_violation_naming_the_fault_before_it() -> None:
    j = Judge(("lb1", "lb2"))
    _run(j, LB1, 0.0, 1.0)
    j.event(1.0, "lb1", "SIGUSR1", fault=True)
    j.event(1.1, "lb1", "daemon_exit", "signal SIGUSR1")
    _run(j, BOTH, 4.7, 5.0)
    _run(j, {"lb2": "eth0"}, 5.02, 5.1)
    [v] = j.violations
    assert v.rule == "two_holders" and v.start == 4.7 and v.end == 5.02
    assert v.fault is not None and v.fault.kind == "SIGUSR1"
    assert [e.kind for e in v.context] == ["SIGUSR1", "daemon_exit"]


def test_sigkilled_box_is_exempt_until_its_restart_has_started_up_plus_grace() -> None:
    j = Judge(("lb1", "lb2"))
    j.exempt(1.0, "lb1", "SIGKILL")
    j.impair(1.0, "lb1", "daemon")
    _run(j, BOTH, 4.7, 6.0)  # lb2 took over, lb1 keeps its stale VIP: allowed
    assert not j.violations
    j.restore(6.0, "lb1", "daemon")
    j.unexempt(6.0, "lb1", RESTART_GRACE)
    _run(j, BOTH, 6.02, 6.0 + RESTART_GRACE - 0.02)
    assert not j.violations
    _run(j, BOTH, 6.0 + RESTART_GRACE + 0.02, 7.0)
    assert [v.rule for v in j.violations] == ["two_holders"]


def test_sigstopped_box_is_exempt_until_sigcont_plus_grace() -> None:
    j = Judge(("lb1", "lb2"))
    j.exempt(1.0, "lb2", "SIGSTOP")
    _run(j, BOTH, 1.0, 3.0)
    j.unexempt(3.0, "lb2", CONT_GRACE)
    _run(j, BOTH, 3.02, 3.0 + CONT_GRACE - 0.02)
    assert not j.violations
    assert j.stats.exempt_double > 2.0
    _run(j, BOTH, 3.0 + CONT_GRACE + 0.02, 4.0)
    assert len(j.violations) == 1


def test_a_link_down_gives_no_exemption_but_is_named() -> None:
    j = Judge(("lb1", "lb2"))
    j.impair(1.0, "lb1", "link")
    _run(j, BOTH, 4.7, 4.8)
    [v] = j.violations
    assert "link/interface down on lb1" in v.detail


def test_absence_beyond_master_down_plus_half_a_second_while_a_box_is_able() -> None:
    j = Judge(("lb1", "lb2"))
    _run(j, LB1, 0.0, 1.0)
    _run(j, NONE, 1.02, 1.0 + ABSENCE_BOUND)
    assert not j.violations
    _run(j, NONE, 1.0 + ABSENCE_BOUND + 0.02, 6.0)
    _run(j, LB1, 6.02, 6.1)
    [v] = j.violations
    assert v.rule == "no_holder" and v.start == 1.02 and v.end == 6.02


def test_absence_clock_starts_when_a_box_becomes_able() -> None:
    j = Judge(("lb1", "lb2"))
    for lb in ("lb1", "lb2"):
        j.impair(0.5, lb, "haproxy")
    _run(j, NONE, 1.0, 10.0)  # nobody able: the rule is suspended
    assert not j.violations
    j.restore(10.0, "lb2", "haproxy")
    _run(j, NONE, 10.02, 10.0 + ABSENCE_BOUND - 0.02)
    assert not j.violations
    _run(j, NONE, 10.0 + ABSENCE_BOUND + 0.04, 15.0)
    assert [v.rule for v in j.violations] == ["no_holder"]


def test_one_able_box_is_enough_and_each_condition_counts() -> None:
    j = Judge(("lb1", "lb2"))
    j.impair(0.0, "lb1", "link")
    j.impair(0.0, "lb2", "stopped")
    j.restore(0.5, "lb2", "stopped")
    j.impair(0.5, "lb2", "addr")  # still unable: its primary address is gone
    _run(j, NONE, 1.0, 8.0)
    assert not j.violations
    j.restore(8.0, "lb2", "addr")
    _run(j, NONE, 8.02, 13.0)
    assert len(j.violations) == 1


def test_valid_advert_flood_suspends_absence_until_it_ends() -> None:
    j = Judge(("lb1", "lb2"))
    j.hold_absence(1.0)
    _run(j, NONE, 1.0, 9.0)
    j.release_absence(9.0)
    _run(j, NONE, 9.02, 9.0 + ABSENCE_BOUND - 0.02)
    assert not j.violations
    _run(j, NONE, 9.0 + ABSENCE_BOUND + 0.04, 14.0)
    assert len(j.violations) == 1


def test_end_state_needs_exactly_one_holder() -> None:
    j = Judge(("lb1", "lb2"))
    j.end_state(5.0, LB1, "end")
    assert not j.violations
    j.end_state(5.0, BOTH, "end")
    j.end_state(5.0, NONE, "end")
    assert [v.rule for v in j.violations] == ["end_state", "end_state"]


def test_plan_is_seeded_covers_every_kind_then_draws() -> None:
    a = list(itertools.islice(faults(1), 30))
    b = list(itertools.islice(faults(1), 30))
    c = list(itertools.islice(faults(2), 30))
    assert a == b and a != c
    assert sorted(f.kind for f in a[: len(KINDS)]) == sorted(KINDS)
    assert all(GAP[0] <= f.gap <= GAP[1] for f in a)
    assert all(f.hold > 0.4 for f in a if f.kind in ("stop", "haproxy", "link", "addr"))
    assert all(f.target == "lan" for f in a if f.kind == "flood")


def test_parse_addrs_reads_an_rtm_newaddr_dump() -> None:
    def attr(kind: int, val: bytes) -> bytes:
        raw = struct.pack("=HH", 4 + len(val), kind) + val
        return raw + b"\0" * (-len(raw) % 4)

    body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, 2)
    body += attr(1, socket.inet_aton("192.0.2.10")) + attr(2, socket.inet_aton("192.0.2.10"))
    body += attr(3, b"eth0\0")
    msg = struct.pack("=IHHII", 16 + len(body), 20, 2, 1, 0) + body
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + b"\0" * 4
    addrs, finished = parse_addrs(msg + done)
    assert addrs == {"192.0.2.10": "eth0"} and finished
