"""A BACKUP's per-packet log lines keepalived 2.2.7 also logs (vrrp.c vrrp_state_backup()).

The core says when: a preempting BACKUP discarding a lower-priority advert
(RFC 3768 6.4.2) and a BACKUP hearing priority 0 (Master_Down_Timer =
Skew_Time). The shell logs them with keepalived's text, rate-limited, since
a peer can send one per packet.
"""

from __future__ import annotations

from structlog.testing import capture_logs

from pyvrrpd.core.actions import LowerPriorityDiscarded, MasterSeen, PriorityZeroHeard
from pyvrrpd.core.events import Started
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.shell.executor import PER_PACKET_EVERY, Executor
from pyvrrpd.shell.ops.katext import keepalived_text
from tests.unit.test_core_router import ME, PEER, advert, cfg
from tests.unit.test_shell_ratelimit_faults import Clock, events, fake_instance


def backup(**kw: object) -> VirtualRouter:
    vr = VirtualRouter(cfg(**kw))
    vr.handle(Started(ME), 0.0)
    assert vr.state is State.BACKUP
    return vr


def test_preempting_backup_discards_a_lower_priority_advert() -> None:
    vr = backup()
    deadline = vr.next_deadline()
    assert vr.handle(advert(50), 1.0) == [LowerPriorityDiscarded(PEER, 50)]
    assert vr.next_deadline() == deadline  # the timer runs on: we preempt
    assert vr.master_ip is None


def test_no_discard_line_when_following() -> None:
    # nopreempt, or a preempt_delay still running: keepalived follows the
    # lower master silently, and so do we.
    assert backup(preempt=False).handle(advert(50), 1.0) == [MasterSeen(PEER, 50)]
    assert backup(preempt_delay=10.0).handle(advert(50), 1.0) == [MasterSeen(PEER, 50)]
    # An equal or higher priority is a master to follow, not a discard.
    assert backup().handle(advert(100), 1.0) == [MasterSeen(PEER, 100)]


def test_priority_zero_is_reported_and_arms_skew_time() -> None:
    vr = backup()
    vr.handle(advert(150), 1.0)
    assert vr.handle(advert(0), 2.0) == [PriorityZeroHeard(PEER)]
    assert vr.next_deadline() == 2.0 + vr.skew_time
    assert vr.master_ip is None


def test_keepalived_wording() -> None:
    lower = {"instance": "VI_1", "src": "192.0.2.12", "priority": 50}
    assert keepalived_text("lower_priority_advert", lower) == (
        "(VI_1) received lower priority (50) advert from 192.0.2.12 - discarding"
    )
    zero = {"instance": "VI_1", "src": "192.0.2.12"}
    assert keepalived_text("priority_0_advert", zero) == (
        "(VI_1) Backup received priority 0 advertisement"
    )


def test_a_flood_of_lower_priority_or_priority_zero_adverts_is_a_few_lines() -> None:
    clock = Clock()
    ex = Executor({}, clock=clock)
    inst = fake_instance()
    with capture_logs() as logs:
        for _ in range(10_000):  # 10 s of a peer flooding both kinds
            ex.run(inst, [LowerPriorityDiscarded(PEER, 50), PriorityZeroHeard(PEER)])
            clock.now += 0.001
    lower = events(logs, "lower_priority_advert")
    zero = events(logs, "priority_0_advert")
    for lines in (lower, zero):
        assert 1 <= len(lines) <= 1 + 10.0 / PER_PACKET_EVERY
        assert lines[0]["instance"] == "VI_1" and lines[0]["src"] == str(PEER)
        assert lines[-1]["suppressed"] >= 4_000  # the summary says how many were folded
    assert lower[0]["priority"] == 50
